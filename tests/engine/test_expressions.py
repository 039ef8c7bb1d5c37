"""The flow expression language: grammar, null rules, functions, errors, robustness."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c3n_bot.engine.expressions import (
    FUNCTION_NAMES,
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    ExpressionError,
    Value,
    compile_expression,
)

PHQ9 = "prorate(9, 2, q1, q2, q3, q4, q5, q6, q7, q8, q9)"


def run(source: str, env: dict[str, Any] | None = None) -> Value:
    return compile_expression(source).evaluate(env or {})


def phq9_env(answers: list[int | None]) -> dict[str, Value]:
    return {f"q{i}": a for i, a in enumerate(answers, start=1) if a is not None}


def same(actual: Value, expected: Value) -> bool:
    """Equal and of the same type (so 3 is not 3.0 and True is not 1)."""
    return type(actual) is type(expected) and actual == expected


# --- grammar --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("24 / 4 / 2", 3),
        ("2 * 3 / 4", 1.5),
        ("7 / 2", 3.5),
        ("6 / 3", 2),
        ("1.5 + 1.5", 3.0),
        ("0.1 * 3", 0.1 * 3),
        ("-2 * 3", -6),
        ("- 2 - 3", -5),
        ("--2", 2),
        ("-(1 + 2)", -3),
        ("2 * -3", -6),
        ("1 + 2 == 3", True),
        ("2 * 3 > 5", True),
        ("not 1 == 2", True),
        ("not 1 < 2", False),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("not true or true", True),
        ("not (true or true)", False),
        ("not not true", True),
        ("1 < 2 and 2 < 3", True),
        ("1 <= 1 and 1 >= 1 and 1 != 2", True),
        ("'a' == \"a\"", True),
        ("'b' > 'a'", True),
        (" \t1\n+\r\n1 ", 2),
        ("007", 7),
        ("true", True),
        ("null", None),
        ("(((1)))", 1),
    ],
)
def test_precedence_and_associativity(source: str, expected: Value) -> None:
    assert same(run(source), expected)


def test_names_resolve_from_env_including_dotted() -> None:
    env: dict[str, Value] = {"total": 12, "prev.total": 30}
    assert run("prev.total - total", env) == 18
    assert run("prev.total - total >= 20", env) is False


# --- null and type rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "env", "expected"),
    [
        ("q + 1", {}, None),
        ("q * 0", {}, None),
        ("-q", {}, None),
        ("q > 0", {}, False),
        ("q < 0", {}, False),
        ("q >= 0", {}, False),
        ("q <= 0", {}, False),
        ("q == 0", {}, False),
        ("q != 0", {}, True),
        ("q == null", {}, True),
        ("q != null", {}, False),
        ("q == null", {"q": 0}, False),
        ("q != null", {"q": 0}, True),
        ("null == null", {}, True),
        ("null < null", {}, False),
        ("q and true", {}, False),
        ("q or true", {}, True),
        ("q or false", {}, False),
        ("not q", {}, True),
        ("1 / 0", {}, None),
        ("1.0 / 0", {}, None),
        ("0 / 0", {}, None),
        ("1 / 0.0", {}, None),
        ("'a' + 1", {}, None),
        ("'a' + 'b'", {}, None),
        ("'a' < 1", {}, False),
        ("'a' == 1", {}, False),
        ("'1' == 1", {}, False),
        ("1 == 1.0", {}, True),
        ("true + 1", {}, None),
        ("-true", {}, None),
        ("-'a'", {}, None),
        ("true == 1", {}, False),
        ("false == 0", {}, False),
        ("true == true", {}, True),
        ("true > false", {}, False),
        ("1 and true", {}, False),
        ("'yes' or false", {}, False),
        ("x", {"x": float("nan")}, None),
        ("x", {"x": float("inf")}, None),
        ("x == null", {"x": float("-inf")}, True),
        ("x", {"x": [1, 2]}, None),
        ("x", {"x": object()}, None),
    ],
)
def test_null_and_type_rules(source: str, env: dict[str, Any], expected: Value) -> None:
    assert same(run(source, env), expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x / 3", None),  # too large for a float
        ("x + 0.5", None),
        ("x * 1.0", None),
        ("x > 1.5", True),
        ("x - x", 0),
        ("y * y", None),  # float overflow gives null, never inf
        ("y + y", None),
        ("round(y, 2) == y", True),
        ("floor(y) > 0", True),
        ("mean(x, x) == x", True),
        ("mean(y, y) == y", True),
        ("sum(y, y)", None),
    ],
)
def test_overflow_is_null(source: str, expected: Value) -> None:
    assert same(run(source, {"x": 10**400, "y": 1.7e308}), expected)


# --- functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sum(1, 2, 3)", 6),
        ("sum(1, n, 3)", 4),
        ("sum(n, n)", None),
        ("sum(1.5, 1.5)", 3.0),
        ("sum(0.1, 0.2)", 0.3),
        ("sum(1, 'a')", None),
        ("sum(1, true)", None),
        ("count(1, n, 'a', false)", 3),
        ("count(n)", 0),
        ("missing(1, n, n)", 2),
        ("missing(1)", 0),
        ("mean(1, 2, n)", 1.5),
        ("mean(2, 4)", 3),
        ("mean(1.0, 2.0)", 1.5),
        ("mean(n, n)", None),
        ("min(3, n, 1, 2)", 1),
        ("max(3, n, 1.5)", 3),
        ("min(n)", None),
        ("max(1, 'a')", None),
        ("floor(2.7)", 2),
        ("floor(-2.2)", -3),
        ("ceil(2.2)", 3),
        ("ceil(-2.7)", -2),
        ("floor(5)", 5),
        ("abs(-3)", 3),
        ("abs(-2.5)", 2.5),
        ("abs(n)", None),
        ("floor('a')", None),
        ("if(true, 1, 2)", 1),
        ("if(false, 1, 2)", 2),
        ("if(n, 1, 2)", 2),
        ("if(1, 1, 2)", 2),
        ("if(1 < 2, 'yes', n)", "yes"),
        ("if(true, 1, 1 / 0)", 1),
        ("coalesce(n, n, 3, 4)", 3),
        ("coalesce(n, false)", False),
        ("coalesce(n)", None),
    ],
)
def test_functions(source: str, expected: Value) -> None:
    assert same(run(source), expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("round(2.5)", 3),
        ("round(3.5)", 4),
        ("round(0.5)", 1),
        ("round(1.5)", 2),
        ("round(2.4999)", 2),
        ("round(2.5001)", 3),
        ("round(30.857)", 31),
        ("round(-0.5)", 0),
        ("round(-2.5)", -2),
        ("round(-2.6)", -3),
        ("round(7)", 7),
        ("round(2.5, 0)", 3),
        ("round(1.25, 1)", 1.3),
        ("round(1.35, 1)", 1.4),
        ("round(2.675, 2)", 2.68),
        ("round(1.005, 2)", 1.01),
        ("round(-1.25, 1)", -1.2),
        ("round(7, 2)", 7),
        ("round(1.5, -1)", None),
        ("round(1.5, 16)", None),
        ("round(1.5, 1.0)", None),
        ("round(1.5, true)", None),
        ("round(1.5, 'a')", None),
        ("round(n)", None),
        ("round(n, 1)", None),
    ],
)
def test_round_halves_go_up(source: str, expected: Value) -> None:
    assert same(run(source), expected)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([3, 3, 3, 3, 3, 3, 3, 3, 3], 27),
        ([0, 1, 2, 3, 0, 1, 2, 3, 0], 12),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0], 0),
        ([3, 3, 3, 3, 3, 3, 3, 3, None], 27),  # 24 * 9 / 8 = 27
        ([1, 1, 1, 1, 1, 1, 1, 0, None], 8),  # 7 * 9 / 8 = 7.875
        ([1, 1, 1, 1, 1, 1, 0, 0, None], 7),  # 6 * 9 / 8 = 6.75
        ([1, 1, 1, 1, 0, 0, 0, 0, None], 5),  # 4 * 9 / 8 = 4.5 -> half up
        ([3, 3, 3, 3, 3, 3, 3, None, None], 27),  # 21 * 9 / 7 = 27
        ([3, 3, 3, 3, 3, 3, 2, None, None], 26),  # 20 * 9 / 7 = 25.71
        ([2, 2, 2, 2, 2, 2, 2, None, None], 18),  # 14 * 9 / 7 = 18
        ([None, 3, 3, 3, 3, 3, 3, 3, None], 27),
        ([3, 3, 3, 3, 3, 3, None, None, None], None),
        ([None] * 9, None),
    ],
)
def test_prorate_phq9(answers: list[int | None], expected: Value) -> None:
    assert same(run(PHQ9, phq9_env(answers)), expected)


def test_prorate_seven_of_nine_from_the_brief() -> None:
    # Items summing to 24 with two missing: round(24 * 9 / 7) = round(30.857) = 31.
    env = phq9_env([4, 4, 4, 3, 3, 3, 3, None, None])
    assert run("sum(q1, q2, q3, q4, q5, q6, q7, q8, q9)", env) == 24
    assert same(run(PHQ9, env), 31)


def test_prorate_rejects_non_numbers_and_keeps_floats() -> None:
    assert run("prorate(3, 1, a, b, c)", {"a": 1, "b": "x", "c": 2}) is None
    assert run("prorate(3, 1, a, b, c)", {"a": 1, "b": True, "c": 2}) is None
    assert same(run("prorate(3, 1, a, b, c)", {"a": 1.5, "b": 1.5, "c": 0.5}), 3.5)
    assert same(run("prorate(3, 1, a, b, c)", {"a": 1.5, "b": 1.5}), 5)  # 3 * 3 / 2 = 4.5


@pytest.mark.parametrize(("q9", "expected"), [(1, True), (2, True), (3, True), (0, False)])
def test_item_nine_rule(q9: int, expected: bool) -> None:
    assert run("q9 > 0", {"q9": q9}) is expected


def test_item_nine_rule_missing_is_false() -> None:
    assert run("q9 > 0", {}) is False
    assert run("q9 > 0", {"q9": None}) is False


# --- compile errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "position", "fragment"),
    [
        ("1 +", 3, "end of expression"),
        ("sum(1,", 6, "end of expression"),
        ("sum(1,)", 6, "expected a value"),
        ("sum(1 2)", 6, "expected ',' or ')'"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("a.b(1)", 0, "unknown function 'a.b'"),
        ("a === b", 4, "'=='"),
        ("a = b", 2, "'=='"),
        ("(1 + 2", 6, "missing ')'"),
        ("((1 + 2)", 8, "'(' at column 0"),
        ("1 + 2)", 5, "unbalanced ')'"),
        ("(1 2", 3, "expected ')'"),
        (")", 0, "expected a value"),
        ("'abc", 0, "unterminated string"),
        ('x == "abc', 5, "unterminated string"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("1 < 2 < 3", 6, "chained"),
        ("a == b != c", 7, "chained"),
        ("1 2", 2, "number 2"),
        ("a b", 2, "name b"),
        ("a && b", 2, "'and'"),
        ("a || b", 2, "'or'"),
        ("!a", 0, "'not'"),
        ("1.", 0, "malformed number"),
        ("1.5.2", 0, "malformed number"),
        ("2abc", 0, "malformed number"),
        (".5", 0, "unexpected character '.'"),
        ("prev.", 4, "unexpected character '.'"),
        ("a # b", 2, "unexpected character '#'"),
        ("+1", 0, "expected a value"),
        ("1 ** 2", 3, "expected a value"),
        ("1 + not x", 4, "expected a value"),
        ("True", 0, "'true' in lower case"),
        ("x AND y", 2, "'and' in lower case"),
        ("round()", 0, "round() takes 1 or 2 argument(s), got 0"),
        ("round(1, 2, 3)", 0, "round() takes 1 or 2 argument(s), got 3"),
        ("if(true, 1)", 0, "if() takes 3 argument(s), got 2"),
        ("x + abs(1, 2)", 4, "abs() takes 1 argument(s), got 2"),
        ("sum()", 0, "sum() takes at least 1 argument(s), got 0"),
        ("prorate(9, 2)", 0, "at least 3"),
        ("prorate(9, 2, q1)", 0, "needs 9 items, got 1"),
        ("prorate(n, 2, q1)", 8, "whole numbers"),
        ("prorate(2, 1 + 1, a, b)", 11, "whole numbers"),
        ("prorate(2.0, 1, a, b)", 8, "whole numbers"),
        ("prorate(2, 2, a, b)", 11, "must be below"),
        ("not", 3, "expected a value"),
        ("1 +" + "9" * 400 + ".5", 3, "number too large"),
    ],
)
def test_syntax_errors(source: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.position == position
    assert fragment in caught.value.message
    assert str(caught.value) == f"{caught.value.message} (at column {position})"


def test_length_limit() -> None:
    longest = "1" + " + 1" * ((MAX_LENGTH - 1) // 4)
    assert len(longest) <= MAX_LENGTH
    assert run(longest) == (MAX_LENGTH - 1) // 4 + 1
    with pytest.raises(ExpressionError, match="longer than 1000") as caught:
        compile_expression("1" + " " * MAX_LENGTH)
    assert caught.value.position == MAX_LENGTH


@pytest.mark.parametrize(
    ("opening", "closing", "step"),
    [("(", ")", 1), ("-", "", 1), ("not ", "", 4), ("abs(", ")", 4)],
)
def test_nesting_limit(opening: str, closing: str, step: int) -> None:
    core = "true" if opening == "not " else "1"
    deepest = opening * MAX_DEPTH + core + closing * MAX_DEPTH
    assert compile_expression(deepest).evaluate({}) is not None
    with pytest.raises(ExpressionError, match="nested more than 50") as caught:
        compile_expression(opening * (MAX_DEPTH + 1) + core + closing * (MAX_DEPTH + 1))
    assert caught.value.position == MAX_DEPTH * step


def test_non_string_source() -> None:
    with pytest.raises(ExpressionError):
        compile_expression(5)  # type: ignore[arg-type]


def test_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(ExpressionError("bad", 3)))
    assert (error.message, error.position) == ("bad", 3)


# --- names, identity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("prev.total + q1 * sum(q2, q3)", {"prev.total", "q1", "q2", "q3"}),
        ("if(a, b, c)", {"a", "b", "c"}),
        ("coalesce(a, 1)", {"a"}),
        (PHQ9, {f"q{i}" for i in range(1, 10)}),
        ("1 + 2", set()),
        ("true and null or 'x' == \"q1\"", set()),
        ("q9 > 0 and q9 > 1", {"q9"}),
        ("sum", {"sum"}),
    ],
)
def test_names(source: str, names: set[str]) -> None:
    assert compile_expression(source).names() == frozenset(names)


def test_expression_identity() -> None:
    first = compile_expression("q1 + q2")
    assert first.source == "q1 + q2"
    assert first == compile_expression("q1 + q2")
    assert first != compile_expression("q1+q2")
    assert hash(first) == hash(compile_expression("q1 + q2"))
    assert repr(first) == "Expression('q1 + q2')"
    assert isinstance(first, Expression)
    assert {"if", "prorate", "coalesce", "round", "sum"} <= FUNCTION_NAMES


# --- properties ------------------------------------------------------------------------

TOKENS = [
    *sorted(FUNCTION_NAMES),
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "/",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "and",
    "or",
    "not",
    "true",
    "false",
    "null",
    "a",
    "b",
    "prev.c",
    "0",
    "1",
    "2",
    "3",
    "2.5",
    "0.0",
    "'s'",
    '"t"',
    "'",
    "99999999999999999999",
    "1e5",
    ".",
    "#",
]
BINARY = ["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
ATOMS = st.sampled_from(
    ["a", "b", "prev.c", "0", "1", "3", "2.5", "0.0", "'s'", "true", "false", "null", "9" * 30]
)


def _call(name: str, args: list[str]) -> str:
    if name == "prorate":
        return f"prorate({len(args)}, {len(args) // 2}, {', '.join(args)})"
    fewest, most = {"if": (3, 3), "round": (1, 2), "floor": (1, 1), "ceil": (1, 1)}.get(
        name, (1, 1 if name == "abs" else 4)
    )
    args = (args * 3)[: max(fewest, min(len(args), most))]
    return f"{name}({', '.join(args)})"


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    names = st.sampled_from(sorted(FUNCTION_NAMES))
    return st.one_of(
        st.tuples(inner, st.sampled_from(BINARY), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda x: f"-{x}"),
        inner.map(lambda x: f"(not {x})"),
        st.builds(_call, names, st.lists(inner, min_size=1, max_size=4)),
    )


# Well-formed expressions (bar arity), so that evaluation gets exercised too.
WELL_FORMED = st.recursive(ATOMS, _grow, max_leaves=25)
SOURCES = st.one_of(
    WELL_FORMED,
    WELL_FORMED,
    st.text(max_size=120),
    st.text(alphabet="()+-*/<>=!,.'\" 0123456789abnotrudlsif_", max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=5),
)
PLAIN = (type(None), bool, int, float, str)


@settings(max_examples=400, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=SOURCES, data=st.data())
def test_compile_raises_only_expression_error_and_evaluate_never_raises(
    source: str, data: st.DataObject
) -> None:
    try:
        expression = compile_expression(source)
    except ExpressionError as error:
        assert 0 <= error.position <= len(source)
        return
    names = sorted(expression.names())
    env = data.draw(st.fixed_dictionaries({}, optional={name: VALUES for name in names}))
    result = expression.evaluate(env)
    assert isinstance(result, PLAIN)
    assert not (isinstance(result, float) and not math.isfinite(result))
    assert expression.evaluate(env) == result  # deterministic


@settings(database=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9))
def test_prorate_matches_the_phq9_rule(answers: list[int | None]) -> None:
    given_answers = [a for a in answers if a is not None]
    result = run(PHQ9, phq9_env(answers))
    if len(given_answers) < 7:
        assert result is None
    else:
        total = sum(given_answers)
        # Half up, in exact integer arithmetic: floor(total * 9 / n + 1/2).
        assert result == (2 * total * 9 + len(given_answers)) // (2 * len(given_answers))
        assert 0 <= result <= 27
