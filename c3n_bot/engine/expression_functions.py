"""Values, operators and whitelisted functions of the flow expression language."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import TypeAlias, TypeGuard

Value: TypeAlias = int | float | bool | str | None
Number: TypeAlias = int | float
Function: TypeAlias = Callable[[Sequence[Value]], Value]
Env: TypeAlias = Mapping[str, Value]
Evaluator: TypeAlias = Callable[[Env], Value]

# round(x, n) accepts 0 <= n <= MAX_DIGITS; anything else gives null.
MAX_DIGITS = 15
_HALF = Fraction(1, 2)


def is_number(value: object) -> TypeGuard[Number]:
    """True for int and float values; booleans are not numbers here."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def clean(value: object) -> Value:
    """An environment value as the language sees it: NaN, infinities and other types are null."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _finite(value: Number) -> Value:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _exact(value: Number) -> Fraction:
    # Floats count as the decimal they print as, so round(2.675, 2) is 2.68, not 2.67.
    return Fraction(value) if isinstance(value, int) else Fraction(float.__repr__(value))


def _to_value(value: Fraction, integral: bool) -> Value:
    if integral and value.denominator == 1:
        return value.numerator
    try:
        return _finite(float(value))
    except OverflowError:
        return None


def half_up(value: Fraction) -> int:
    """Round to an integer, halves toward +infinity: 2.5 -> 3, -2.5 -> -2, 30.857 -> 31."""
    return math.floor(value + _HALF)


# --- operators -------------------------------------------------------------------------


def _arithmetic(apply: Callable[[Number, Number], Number]) -> Callable[[Value, Value], Value]:
    def run(a: Value, b: Value) -> Value:
        if is_number(a) and is_number(b):
            try:
                return _finite(apply(a, b))
            except OverflowError:
                return None
        return None

    return run


def divide(a: Value, b: Value) -> Value:
    """a / b; an exact quotient of two integers stays an integer; by zero is null."""
    if is_number(a) and is_number(b) and b != 0:
        try:
            if isinstance(a, int) and isinstance(b, int):
                return _to_value(Fraction(a, b), integral=True)
            return _finite(a / b)
        except (OverflowError, ZeroDivisionError):
            return None
    return None


def negate(a: Value) -> Value:
    """-a for a number; null otherwise."""
    return -a if is_number(a) else None


def truthy(value: Value) -> bool:
    """Whether a condition holds: only `true` does; null, numbers and strings do not."""
    return value is True


def equal(a: Value, b: Value) -> bool:
    """Equality: null equals only null, numbers compare numerically, no cross-type matches."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def not_equal(a: Value, b: Value) -> bool:
    """The negation of `equal` (so `x != null` tests that x is present)."""
    return not equal(a, b)


def _order(a: Value, b: Value) -> int | None:
    if is_number(a) and is_number(b):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def _ordering(accept: frozenset[int]) -> Callable[[Value, Value], bool]:
    def test(a: Value, b: Value) -> bool:
        return _order(a, b) in accept

    return test


COMPARISONS: dict[str, Callable[[Value, Value], bool]] = {
    "==": equal,
    "!=": not_equal,
    "<": _ordering(frozenset({-1})),
    "<=": _ordering(frozenset({-1, 0})),
    ">": _ordering(frozenset({1})),
    ">=": _ordering(frozenset({0, 1})),
}
# Arithmetic on two numbers; null for null, booleans, strings, overflow.
ARITHMETIC: dict[str, Callable[[Value, Value], Value]] = {
    "+": _arithmetic(operator.add),
    "-": _arithmetic(operator.sub),
    "*": _arithmetic(operator.mul),
    "/": divide,
}


def chain(first: Evaluator, rest: Sequence[tuple[str, Evaluator]]) -> Evaluator:
    """A left-associative chain of arithmetic: first op1 x1 op2 x2 ..."""
    steps = tuple((ARITHMETIC[op], operand) for op, operand in rest)

    def run(env: Env) -> Value:
        value = first(env)
        for apply, operand in steps:
            value = apply(value, operand(env))
        return value

    return run


def coalesce(args: Sequence[Evaluator]) -> Evaluator:
    """The first argument that is not null (later ones are not evaluated)."""

    def run(env: Env) -> Value:
        for arg in args:
            if (value := arg(env)) is not None:
                return value
        return None

    return run


# --- functions -------------------------------------------------------------------------


def _numbers(args: Sequence[Value]) -> list[Number] | None:
    """The non-null arguments when they are all numbers; None when any is another type."""
    numbers: list[Number] = []
    for value in args:
        if is_number(value):
            numbers.append(value)
        elif value is not None:
            return None
    return numbers


def _all_int(numbers: Sequence[Number]) -> bool:
    return all(isinstance(n, int) for n in numbers)


def _exact_sum(numbers: Sequence[Number]) -> Fraction:
    if _all_int(numbers):
        return Fraction(sum(numbers))
    return sum((_exact(n) for n in numbers), Fraction(0))


def fn_sum(args: Sequence[Value]) -> Value:
    """Sum of the non-null numbers; null when all are null or any is not a number."""
    numbers = _numbers(args)
    if not numbers:
        return None
    return _to_value(_exact_sum(numbers), integral=_all_int(numbers))


def fn_count(args: Sequence[Value]) -> Value:
    """How many arguments are not null."""
    return sum(1 for value in args if value is not None)


def fn_missing(args: Sequence[Value]) -> Value:
    """How many arguments are null."""
    return sum(1 for value in args if value is None)


def fn_mean(args: Sequence[Value]) -> Value:
    """Mean of the non-null numbers (an integer when exact); null when there are none."""
    numbers = _numbers(args)
    if not numbers:
        return None
    return _to_value(_exact_sum(numbers) / len(numbers), integral=_all_int(numbers))


def fn_min(args: Sequence[Value]) -> Value:
    """Smallest non-null number; null when there is none."""
    numbers = _numbers(args)
    return min(numbers) if numbers else None


def fn_max(args: Sequence[Value]) -> Value:
    """Largest non-null number; null when there is none."""
    numbers = _numbers(args)
    return max(numbers) if numbers else None


def fn_round(args: Sequence[Value]) -> Value:
    """round(x) to an integer, round(x, n) to n decimals (0-15), halves toward +infinity."""
    x = args[0]
    digits = args[1] if len(args) > 1 else 0
    if not (isinstance(digits, int) and not isinstance(digits, bool)):
        return None
    if not is_number(x) or not 0 <= digits <= MAX_DIGITS:
        return None
    if isinstance(x, int):
        return x
    scale = 10**digits
    rounded = half_up(_exact(x) * scale)
    return rounded if len(args) == 1 or digits == 0 else _to_value(Fraction(rounded, scale), False)


def _on_number(apply: Callable[[Number], Number]) -> Function:
    def run(args: Sequence[Value]) -> Value:
        return apply(args[0]) if is_number(args[0]) else None

    return run


def prorate(n_items: int, max_missing: int, items: Sequence[Value]) -> Value:
    """Total with missing items replaced by the mean of the answered ones (PHQ-9 rule).

    All answered: the plain sum. Up to `max_missing` missing: half_up(sum * n_items /
    answered). More missing, or an answer that is not a number: null.
    """
    numbers = _numbers(items)
    if not numbers:
        return None
    missing = len(items) - len(numbers)
    if missing > max_missing:
        return None
    total = _exact_sum(numbers)
    if missing == 0:
        return _to_value(total, integral=_all_int(numbers))
    return half_up(total * n_items / len(numbers))


# Eagerly evaluated functions; `if`, `coalesce` and `prorate` are built by the compiler.
FUNCTIONS: dict[str, Function] = {
    "sum": fn_sum,
    "count": fn_count,
    "missing": fn_missing,
    "mean": fn_mean,
    "min": fn_min,
    "max": fn_max,
    "round": fn_round,
    "floor": _on_number(math.floor),
    "ceil": _on_number(math.ceil),
    "abs": _on_number(abs),
}
# name -> (fewest, most) arguments; None means no upper limit.
ARITY: dict[str, tuple[int, int | None]] = {
    **{name: (1, None) for name in ("sum", "count", "missing", "mean", "min", "max")},
    "round": (1, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "abs": (1, 1),
    "if": (3, 3),
    "coalesce": (1, None),
    "prorate": (3, None),
}
FUNCTION_NAMES = frozenset(ARITY)
