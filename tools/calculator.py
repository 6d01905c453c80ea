"""The calculator tool: arithmetic through an AST whitelist, with no eval.

Allowed: int and float literals, + - * / // % **, unary + and -, parentheses, the constants
pi, e, tau and inf, and the math functions in FUNCTIONS. Anything else (names, attributes,
strings, calls to other things, comprehensions, lambdas...) is refused before anything runs.

Bombs: the size of every integer result is estimated before it is computed (bits of the base
times the exponent for **, lgamma for factorial/comb/perm, the sum of bit lengths for *), and a
result over MAX_INT_BITS (about 4000 decimal digits) is refused at once; the input is capped at
MAX_EXPRESSION characters and MAX_NODES syntax nodes.

Output: integers exactly; floats rounded to 15 significant digits, then printed as Python's
repr, so 0.1 + 0.2 gives 0.3 rather than 0.30000000000000004 (a double holds 15-17 digits, and
the last ones are noise the model would copy). Errors come back as one short line.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from lector.tools.base import ToolResult, tool

MAX_EXPRESSION = 2000
MAX_NODES = 400
MAX_INT_BITS = 13_000
"""About 3900 decimal digits: below Python's 4300-digit int-to-str limit."""
MAX_ARGS = 100
LOG2_10 = math.log2(10)

Number = int | float


class CalculatorError(ValueError):
    """A short message for the model: why the expression was refused or failed."""


CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def _check_bits(bits: float, what: str = "result") -> None:
    if bits > MAX_INT_BITS:
        digits = math.ceil(bits / LOG2_10)
        raise CalculatorError(
            f"the {what} would have about {_approx(digits)} digits, over the limit of "
            f"{int(MAX_INT_BITS / LOG2_10)} digits"
        )


def _approx(digits: float) -> str:
    if digits < 1e6:
        return f"{int(digits):,}"
    return f"{digits:.3g}"


def _power(base: Number, exp: Number) -> Number:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        _check_bits(float(exp) * math.log2(abs(base)))
    elif isinstance(base, int) and isinstance(exp, int) and exp < 0 and base == 0:
        raise CalculatorError("division by zero (0 to a negative power)")
    result = base**exp
    if isinstance(result, complex):
        raise CalculatorError("the result is a complex number (a negative number to a fractional power)")
    return result


def _multiply(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int):
        _check_bits(float(a.bit_length() + b.bit_length() - 1))
    return a * b


def _divide(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("modulo by zero")
    return a % b


BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: _divide,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _power,
}
OP_HINTS: dict[type[ast.operator], str] = {
    ast.BitXor: "'^' is not supported; write ** for powers",
    ast.LShift: "bit shifts are not supported",
    ast.RShift: "bit shifts are not supported",
    ast.BitAnd: "bitwise operators are not supported",
    ast.BitOr: "bitwise operators are not supported",
    ast.MatMult: "'@' is not supported",
}


def _int_arg(x: Number, fn: str, low: int = 0) -> int:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if not isinstance(x, int) or x < low:
        raise CalculatorError(f"{fn}() needs a whole number >= {low}")
    return x


def _log2_factorial(n: int) -> float:
    return math.lgamma(n + 1) / math.log(2)


def _factorial(x: Number) -> int:
    n = _int_arg(x, "result of factorial()")
    _check_bits(_log2_factorial(n), "result of factorial()")
    return math.factorial(n)


def _comb(n: Number, k: Number) -> int:
    n, k = _int_arg(n, "comb"), _int_arg(k, "comb")
    m = min(k, n - k)
    if m > 0:  # C(n, m) <= n**m / m!
        _check_bits(m * math.log2(n) - _log2_factorial(m), "result of comb()")
    return math.comb(n, k)


def _perm(n: Number, k: Number | None = None) -> int:
    n = _int_arg(n, "perm")
    k = n if k is None else _int_arg(k, "perm")
    if 0 < k <= n:  # n! / (n-k)! <= n**k
        _check_bits(min(k * math.log2(n), _log2_factorial(n)), "result of perm()")
    return math.perm(n, k)


def _pow(base: Number, exp: Number, mod: Number | None = None) -> Number:
    if mod is None:
        return _power(base, exp)
    if not all(isinstance(v, int) for v in (base, exp, mod)):
        raise CalculatorError("pow() with a modulus needs whole numbers")
    if mod == 0:
        raise CalculatorError("pow() modulus is zero")
    return pow(int(base), int(exp), int(mod))


def _lcm(*xs: Number) -> int:
    ints = [_int_arg(abs(x), "lcm") for x in xs]
    _check_bits(float(sum(i.bit_length() for i in ints)))
    return math.lcm(*ints)


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or abs(ndigits) > 400:
        raise CalculatorError("round() needs a whole number of digits between -400 and 400")
    return round(x, ndigits)


def _minmax(fn: Callable[..., Number], name: str) -> Callable[..., Number]:
    def call(*xs: Number) -> Number:
        if not xs:
            raise CalculatorError(f"{name}() needs at least one number")
        return fn(xs)

    return call


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt, "cbrt": math.cbrt, "exp": math.exp, "expm1": math.expm1,
    "log": _log, "ln": math.log, "log10": math.log10, "log2": math.log2, "log1p": math.log1p,
    "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "asin": math.asin, "acos": math.acos, "atan": math.atan, "atan2": math.atan2,
    "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "asinh": math.asinh, "acosh": math.acosh, "atanh": math.atanh,
    "degrees": math.degrees, "radians": math.radians, "hypot": math.hypot,
    "floor": math.floor, "ceil": math.ceil, "trunc": math.trunc, "abs": abs, "round": _round,
    "fabs": math.fabs, "copysign": math.copysign, "fmod": math.fmod, "remainder": math.remainder,
    "factorial": _factorial, "comb": _comb, "perm": _perm, "gcd": math.gcd, "lcm": _lcm,
    "isqrt": math.isqrt, "pow": _pow, "gamma": math.gamma, "lgamma": math.lgamma,
    "erf": math.erf, "erfc": math.erfc,
    "min": _minmax(min, "min"), "max": _minmax(max, "max"),
}

_UNICODE_OPERATORS = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-", "·": "*"})


def _check_shape(tree: ast.AST) -> None:
    """Refuse any syntax outside the whitelist, before evaluating anything."""
    for count, node in enumerate(ast.walk(tree), 1):
        if count > MAX_NODES:
            raise CalculatorError(f"the expression is too complex (over {MAX_NODES} parts)")
        check = _NODE_CHECKS.get(type(node))
        if check is not None:
            check(node)
        elif not isinstance(node, ast.Expression | ast.Load | ast.operator | ast.unaryop):
            raise CalculatorError(f"{type(node).__name__} is not allowed in a calculation")


def _check_constant(node: ast.Constant) -> None:
    if isinstance(node.value, bool) or not isinstance(node.value, int | float):
        raise CalculatorError(f"only numbers are allowed, not {type(node.value).__name__} values")


def _check_name(node: ast.Name) -> None:
    if node.id not in CONSTANTS and node.id not in FUNCTIONS:
        raise CalculatorError(f"unknown name {node.id!r}; " + _known_names())


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise CalculatorError("only the math functions can be called; " + _known_names())
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise CalculatorError("functions take plain positional arguments only")
    if len(node.args) > MAX_ARGS:
        raise CalculatorError(f"too many arguments (over {MAX_ARGS})")


def _check_binop(node: ast.BinOp) -> None:
    if type(node.op) not in BINARY_OPS:
        raise CalculatorError(OP_HINTS.get(type(node.op), "unsupported operator"))


def _check_unaryop(node: ast.UnaryOp) -> None:
    if not isinstance(node.op, ast.UAdd | ast.USub):
        raise CalculatorError("only unary + and - are supported")


_NODE_CHECKS: dict[type[ast.AST], Callable[[Any], None]] = {
    ast.Constant: _check_constant,
    ast.Name: _check_name,
    ast.Call: _check_call,
    ast.BinOp: _check_binop,
    ast.UnaryOp: _check_unaryop,
}


def _known_names() -> str:
    constants = ", ".join(CONSTANTS)
    return f"use numbers, + - * / // % **, {constants} and math functions such as sqrt, log, sin"


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # checked by _check_shape
        return node.value
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"{node.id} is a function; call it, e.g. {node.id}(2)")
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        return BINARY_OPS[type(node.op)](left, right)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        args = [_eval(a) for a in node.args]
        try:
            return FUNCTIONS[name](*args)
        except TypeError as exc:
            raise CalculatorError(f"{name}(): {exc}") from None
        except ValueError as exc:
            if isinstance(exc, CalculatorError):
                raise
            raise CalculatorError(f"{name}() is not defined for these arguments ({exc})") from None
    raise CalculatorError(f"{type(node).__name__} is not allowed in a calculation")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression. Raises CalculatorError with a short reason."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > MAX_EXPRESSION:
        raise CalculatorError(
            f"the expression is too long ({len(expression)} characters; the limit is {MAX_EXPRESSION})"
        )
    text = expression.translate(_UNICODE_OPERATORS).strip()
    if not text:
        raise CalculatorError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise CalculatorError("the expression could not be parsed (too deeply nested or malformed)") from None
    _check_shape(tree)
    try:
        result = _eval(tree)
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except RecursionError:
        raise CalculatorError("the expression is too deeply nested") from None
    except (ValueError, ArithmeticError) as exc:
        raise CalculatorError(str(exc) or type(exc).__name__) from None
    if isinstance(result, int):
        _check_bits(float(result.bit_length()))
    return result


def format_number(value: Number) -> str:
    """Integers exactly; floats rounded to 15 significant digits (see the module docstring)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(f"{value:.15g}"))


@tool(timeout=5.0)
def calculator(expression: str) -> ToolResult | str:
    """Evaluate an arithmetic expression exactly (integers) or to 15 significant digits (decimals).

    Supports + - * / // % ** and parentheses, the constants pi, e, tau, inf, and math functions
    such as sqrt, sin, cos, tan, log(x, base), log10, log2, exp, floor, ceil, factorial, comb,
    abs, round, min, max, hypot, degrees, radians. Angles are in radians.

    Args:
        expression: the expression to evaluate, e.g. "2**10 + sqrt(16) * (3 - 1.5)".
    """
    try:
        return format_number(evaluate(expression))
    except CalculatorError as exc:
        return ToolResult.failure(f"Error: {exc}")
