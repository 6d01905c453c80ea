"""How big and how costly one step of a calculation would be, decided before the step runs.

Size: an integer result over MAX_INT_BITS (about 3900 decimal digits) is refused; it is estimated from
the operands (bits of the base times the exponent for **, the sum of bit lengths for *; for perm(n, k) the
smaller of k * log2(n) and lgamma, comb(n, k) as perm(n, m) / m! with m = min(k, n - k), so a huge n with a
small k passes: perm(n, 1) is n).

Cost: every step is charged to a `Meter` before it runs, in work units of roughly a nanosecond of
CPython's integer code (estimates from above). With d(x) the number of 30-bit digits CPython stores:
a product costs d(a) * d(b), a division twice that, gcd and lcm d(each) times d(the running result),
a power and factorial, comb and perm the square of their result's digits, a modular power
bits(exp) * (2 * d(mod)**2 + STEP) (one squaring and one reduction per exponent bit), int-to-text the
square of its digits. The units add up over the whole expression, so many cheap
terms are refused as surely as one costly term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Number = int | float

MAX_INT_BITS = 13_000
"""About 3900 decimal digits: below Python's 4300-digit int-to-str limit."""
WORK_BUDGET = 5e6
"""Work units one expression may use in all (a few milliseconds)."""
STEP = 100
"""Work units of one pass of a C loop over exponent bits, beyond its digit arithmetic."""
DIGIT_BITS = 30
LOG2_10 = math.log2(10)
BEYOND_BITS = 2.0**1000
"""A size in bits past any limit: what the estimates below give where a float could not hold the true one."""


class CalculatorError(ValueError):
    """A short message for the model: why the expression was refused or failed."""


@dataclass
class Meter:
    """The work units spent so far by one evaluation, and its budget."""

    budget: float = WORK_BUDGET
    spent: float = 0.0

    def charge(self, units: float, what: str) -> None:
        """Count a step before it runs; refuse it when the expression would then exceed the budget."""
        total = self.spent + units
        if total > self.budget:
            alone = "" if units > self.budget else f" ({_duration(total)} in all with the steps before it)"
            raise CalculatorError(
                f"refused {what}: it would need about {_duration(units)} of computation{alone}, "
                f"over the calculator's limit of {_duration(self.budget)} per expression"
            )
        self.spent = total


def _duration(units: float) -> str:
    seconds = units * 1e-9
    if seconds >= 1:
        return f"{seconds:.3g} s" if seconds < 1e6 else f"{seconds:.2g} s"
    return f"{max(seconds * 1000, 0.001):.3g} ms"


def digits(x: Number) -> int:
    """30-bit digits of an int (1 for a float: its arithmetic is constant time)."""
    return abs(x).bit_length() // DIGIT_BITS + 1 if isinstance(x, int) else 1


def digits_of_bits(bits: float) -> float:
    return bits / DIGIT_BITS + 1


def check_bits(bits: float, what: str = "result") -> None:
    if bits > MAX_INT_BITS:
        count = math.ceil(bits / LOG2_10)
        about = "more than" if bits >= BEYOND_BITS else "about"
        raise CalculatorError(
            f"the {what} would have {about} {_approx(count)} digits, over the limit of "
            f"{int(MAX_INT_BITS / LOG2_10)} digits"
        )


def _approx(count: float) -> str:
    if count < 1e6:
        return f"{int(count):,}"
    return f"{count:.3g}"


_LGAMMA_EXACT = 2**40
"""Below this, lgamma's rounding error (relative to lgamma itself) is far under a bit of a difference of two."""


def _bounded(x: int) -> float:
    return float(x) if x.bit_length() < 1000 else BEYOND_BITS


def log2_factorial(n: int) -> float:
    """log2(n!); BEYOND_BITS where n is too large for a float (n! > 2**n there)."""
    if n.bit_length() >= 1000:
        return BEYOND_BITS
    return math.lgamma(n + 1) / math.log(2)


def log2_perm(n: int, k: int) -> float:
    """log2(n! / (n - k)!) for 0 <= k <= n, from above (or BEYOND_BITS).

    n**k bounds it; where that is over the size limit and n is small enough for lgamma to tell the two
    factorials apart, the lgamma difference is used (it matters when k is near n). For a larger n, n**k is
    within a few percent of the truth while k <= n / 2, and both are far over the limit when k is larger.
    """
    if k == 0:
        return 0.0
    upper = min(_bounded(k) * math.log2(n), BEYOND_BITS)
    if upper <= MAX_INT_BITS or n >= _LGAMMA_EXACT:
        return upper
    return (math.lgamma(n + 1) - math.lgamma(n - k + 1)) / math.log(2)


def log2_comb(n: int, k: int) -> float:
    """log2 of C(n, k) for 0 <= k <= n, from above while it is within the size limit."""
    m = min(k, n - k)
    if m > MAX_INT_BITS:
        return _bounded(m)  # C(n, m) >= 2**m for m <= n / 2
    return max(log2_perm(n, m) - log2_factorial(m), 0.0)


# ---------------------------------------------------------------- costs of single steps


def add_cost(a: Number, b: Number) -> float:
    return digits(a) + digits(b)


def mul_cost(a: Number, b: Number) -> float:
    return digits(a) * digits(b)


def div_cost(a: Number, b: Number) -> float:
    return 2 * digits(a) * digits(b)


def power_cost(exp: int, result_bits: float) -> float:
    """base ** exp by repeated squaring: the last squarings, on numbers near the result's size, dominate."""
    return digits_of_bits(result_bits) ** 2 + STEP * exp.bit_length()


def modpow_cost(base: int, exp: int, mod: int) -> float:
    """pow(base, exp, mod): one squaring and one reduction modulo `mod` per bit of the exponent.

    A negative exponent first inverts the base (an extended gcd, quadratic in the digits).
    """
    d = digits(mod)
    inverse = d * d if exp < 0 else 0
    return abs(exp).bit_length() * (2 * d * d + STEP) + div_cost(base, mod) + inverse


def result_cost(result_bits: float, loop_steps: int = 0) -> float:
    """A function whose work is about the square of its result's digits (factorial, comb, perm)."""
    return digits_of_bits(result_bits) ** 2 + STEP * loop_steps


def text_cost(value: int) -> float:
    """Converting an int to decimal text is quadratic in its digits."""
    return float(digits(value)) ** 2


def args_cost(args: list[Number]) -> float:
    """The default: reading each argument once (ints converted to floats, compared, copied)."""
    return float(sum(digits(a) for a in args)) + 1


def square_cost(x: Number) -> float:
    """isqrt: quadratic in the digits."""
    return float(digits(x)) ** 2


def combine_cost(args: list[Number], running_digits: float | None = None) -> float:
    """gcd, lcm of many numbers: each is combined with the running result, quadratically in their digits.

    The running result of gcd is at most the largest argument; that of lcm grows, so the caller gives its bound.
    """
    sizes = [digits(a) for a in args] or [1]
    running = max(sizes) if running_digits is None else running_digits
    return float(sum(sizes)) * running + 1
