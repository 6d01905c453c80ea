"""Arithmetic through an AST whitelist, with no eval: the calculator's evaluator (stdlib only).

Allowed: int and float literals, + - * / // % **, unary + and -, parentheses, the constants
pi, e, tau and inf, and the math functions in FUNCTIONS. Anything else (names, attributes,
strings, calls to other things, comprehensions, lambdas...) is refused before anything runs.

Bombs: before each step runs, its guard refuses a result that would be too big and charges the
step's estimated cost to the expression's budget (calc_limits.py); the input is capped at
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

from lector.tools.calc_limits import (
    MAX_INT_BITS,
    WORK_BUDGET,
    CalculatorError,
    Meter,
    Number,
    add_cost,
    args_cost,
    check_bits,
    combine_cost,
    digits_of_bits,
    div_cost,
    log2_comb,
    log2_factorial,
    log2_perm,
    modpow_cost,
    mul_cost,
    power_cost,
    result_cost,
    square_cost,
    text_cost,
)

MAX_EXPRESSION = 2000
MAX_NODES = 400
MAX_ARGS = 100

Guard = Callable[..., float]
"""Checks a step's operands before it runs: raises CalculatorError, or returns its cost in work units."""

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def _power(base: Number, exp: Number) -> Number:
    if isinstance(base, int) and isinstance(exp, int) and exp < 0 and base == 0:
        raise CalculatorError("division by zero (0 to a negative power)")
    result = base**exp
    if isinstance(result, complex):
        raise CalculatorError("the result is a complex number (a negative number to a fractional power)")
    return result


def _guard_power(base: Number, exp: Number) -> float:
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        bits = float(exp) * math.log2(abs(base))
        check_bits(bits)
        return power_cost(exp, bits)
    return 1.0


def _guard_multiply(a: Number, b: Number) -> float:
    if isinstance(a, int) and isinstance(b, int):
        check_bits(float(a.bit_length() + b.bit_length() - 1))
    return mul_cost(a, b)


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


BINARY_OPS: dict[type[ast.operator], tuple[Callable[[Any, Any], Number], Guard]] = {
    ast.Add: (operator.add, add_cost),
    ast.Sub: (operator.sub, add_cost),
    ast.Mult: (operator.mul, _guard_multiply),
    ast.Div: (_divide, div_cost),
    ast.FloorDiv: (_floordiv, div_cost),
    ast.Mod: (_mod, div_cost),
    ast.Pow: (_power, _guard_power),
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


def _factorial(x: Number) -> int:
    return math.factorial(_int_arg(x, "factorial"))


def _guard_factorial(x: Number) -> float:
    n = _int_arg(x, "factorial")
    bits = log2_factorial(n)
    check_bits(bits, "result of factorial()")
    return result_cost(bits, n)


def _comb(n: Number, k: Number) -> int:
    return math.comb(_int_arg(n, "comb"), _int_arg(k, "comb"))


def _guard_comb(n: Number, k: Number) -> float:
    n, k = _int_arg(n, "comb"), _int_arg(k, "comb")
    m = min(k, n - k)
    if m <= 0:
        return result_cost(0)
    bits = log2_comb(n, m)
    check_bits(bits, "result of comb()")
    return result_cost(bits, m)


def _perm(n: Number, k: Number | None = None) -> int:
    n = _int_arg(n, "perm")
    return math.perm(n, n if k is None else _int_arg(k, "perm"))


def _guard_perm(n: Number, k: Number | None = None) -> float:
    n = _int_arg(n, "perm")
    k = n if k is None else _int_arg(k, "perm")
    if not 0 < k <= n:
        return result_cost(0)
    bits = log2_perm(n, k)
    check_bits(bits, "result of perm()")
    return result_cost(bits, k)


def _pow(base: Number, exp: Number, mod: Number | None = None) -> Number:
    if mod is None:
        return _power(base, exp)
    return pow(int(base), int(exp), int(mod))


def _guard_pow(base: Number, exp: Number, mod: Number | None = None) -> float:
    if mod is None:
        return _guard_power(base, exp)
    if not (isinstance(base, int) and isinstance(exp, int) and isinstance(mod, int)):
        raise CalculatorError("pow() with a modulus needs whole numbers")
    if mod == 0:
        raise CalculatorError("pow() modulus is zero")
    return modpow_cost(base, exp, mod)


def _lcm(*xs: Number) -> int:
    """The running lcm is checked after each argument: its size is unknown before the gcds are."""
    result = 1
    for x in xs:
        result = math.lcm(result, _int_arg(abs(x), "lcm"))
        check_bits(float(result.bit_length()), "result of lcm()")
    return result


def _guard_lcm(*xs: Number) -> float:
    ints = [_int_arg(abs(x), "lcm") for x in xs]
    bits = min(float(sum(i.bit_length() for i in ints)), MAX_INT_BITS)  # a larger one is refused on the way
    return combine_cost(list(ints), digits_of_bits(bits))


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
}  # fmt: skip
GUARDS: dict[str, Guard] = {
    "factorial": _guard_factorial,
    "comb": _guard_comb,
    "perm": _guard_perm,
    "pow": _guard_pow,
    "lcm": _guard_lcm,
    "gcd": lambda *xs: combine_cost(list(xs)),
    "isqrt": square_cost,
}
"""Functions whose cost or result size depends on their arguments; the others cost `args_cost`."""

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


_OP_NAMES: dict[type[ast.operator], str] = {
    ast.Add: "the addition", ast.Sub: "the subtraction", ast.Mult: "the multiplication",
    ast.Div: "the division", ast.FloorDiv: "the division", ast.Mod: "the modulo", ast.Pow: "the power",
}  # fmt: skip


def _step_name(name: str, args: list[Number]) -> str:
    if name == "pow" and len(args) == 3:
        return (
            f"pow() with a modulus (a {abs(int(args[1])).bit_length():,}-bit exponent and a "
            f"{abs(int(args[2])).bit_length():,}-bit modulus)"
        )
    return f"{name}()"


class _Evaluation:
    """One evaluation: walks the checked tree, charging each step to the meter before it runs."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def value(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Expression):
            return self.value(node.body)
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)  # checked by _check_shape
            return node.value
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise CalculatorError(f"{node.id} is a function; call it, e.g. {node.id}(2)")
        if isinstance(node, ast.UnaryOp):
            value = self.value(node.operand)
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise CalculatorError(f"{type(node).__name__} is not allowed in a calculation")

    def binary(self, node: ast.BinOp) -> Number:
        left, right = self.value(node.left), self.value(node.right)
        run, guard = BINARY_OPS[type(node.op)]
        self.meter.charge(guard(left, right), _OP_NAMES[type(node.op)])
        return run(left, right)

    def call(self, node: ast.Call) -> Number:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        args = [self.value(a) for a in node.args]
        try:
            guard = GUARDS.get(name)
            cost = args_cost(args) if guard is None else guard(*args)
            self.meter.charge(cost, _step_name(name, args))
            return FUNCTIONS[name](*args)
        except TypeError as exc:
            raise CalculatorError(f"{name}(): {exc}") from None
        except ValueError as exc:
            if isinstance(exc, CalculatorError):
                raise
            raise CalculatorError(f"{name}() is not defined for these arguments ({exc})") from None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse(expression: str) -> ast.Expression:
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > MAX_EXPRESSION:
        raise CalculatorError(
            f"the expression is too long ({len(expression)} characters; the limit is {MAX_EXPRESSION})"
        )
    text = expression.translate(_UNICODE_OPERATORS).strip()
    if not text:
        raise CalculatorError("the expression is empty")
    if not text.isascii() and not _encodable(text):
        raise CalculatorError("the expression holds an invalid character (a lone surrogate, such as \\ud800)")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise CalculatorError("the expression could not be parsed (too deeply nested or malformed)") from None
    _check_shape(tree)
    return tree


def evaluate(expression: str, budget: float = WORK_BUDGET) -> Number:
    """The value of an arithmetic expression. Raises CalculatorError with a short reason.

    `budget`: work units the whole expression may use, including turning an integer result into text.
    """
    tree = _parse(expression)
    meter = Meter(budget)
    try:
        result = _Evaluation(meter).value(tree)
        if isinstance(result, int):
            check_bits(float(result.bit_length()))
            meter.charge(text_cost(result), "writing out the result")
        return result
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


def format_number(value: Number) -> str:
    """Integers exactly; floats rounded to 15 significant digits (see the module docstring)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(f"{value:.15g}"))


def calculate(expression: str, budget: float = WORK_BUDGET) -> str:
    """The expression's value as text (what the calculator tool answers). Raises CalculatorError."""
    return format_number(evaluate(expression, budget))
