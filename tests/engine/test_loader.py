"""The flow loader: every problem of a file at its line and field, and enableWhen meaning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c3n_bot.config import data_dir
from c3n_bot.engine.definitions import EnableWhen, Item, ItemType
from c3n_bot.engine.loader import FlowError, FlowIssue, parse_flow
from c3n_bot.engine.scoring import is_enabled

HEAD = 'id: t\nversion: "1"\nkind: questionnaire\ntitle: T\n'  # lines 1-4
# Lines 5-12: one earlier item of each type for conditions to refer to; snippets start at 13.
ITEMS = (
    "items:\n"
    "  - {id: mood, type: choice, text: M, options: [{code: good, value: 0, text: G},"
    " {code: bad, value: 1, text: B}]}\n"
    "  - {id: plain, type: choice, text: P, options: [{code: a, text: A}, {code: b, text: B}]}\n"
    "  - {id: pain, type: boolean, text: Pain}\n"
    "  - {id: days, type: integer, text: Days, min: 0, max: 7}\n"
    "  - {id: note, type: text, text: Note}\n"
    "  - {id: since, type: date, text: Since}\n"
    "  - {id: hello, type: display, text: Hi}\n"
)
SHIPPED = sorted(data_dir("flows").glob("*.yaml"))


def issues_of(text: str) -> list[FlowIssue]:
    """The issues parse_flow reports for a text (failing when it loads)."""
    with pytest.raises(FlowError) as raised:
        parse_flow(text, "t.yaml")
    assert str(raised.value) == "\n".join(str(i) for i in raised.value.issues)
    return raised.value.issues


def assert_reported(text: str, line: int, field: str, message: str) -> None:
    """An issue at exactly this line and field whose message contains `message`."""
    found = issues_of(text)
    assert any((i.line, i.field) == (line, field) and message in i.message for i in found), (
        "\n".join(map(str, found))
    )


def last_item(condition: str) -> str:
    """Item `last` (line 13) with one condition: question at 17, operator 18, answer 19."""
    return (
        HEAD + ITEMS + f"  - id: last\n    type: text\n    text: L\n    enable_when:\n{condition}"
    )


def condition(question: str, operator: str, answer: str | None = None) -> str:
    """A block-style condition, each key on its own line."""
    text = f"      - question: {question}\n        operator: '{operator}'\n"
    return text + (f"        answer: {answer}\n" if answer is not None else "")


AT_QUESTION, AT_OPERATOR, AT_ANSWER = (17, "question"), (18, "operator"), (19, "answer")
WHERE = "items[7].enable_when[0]"


@pytest.mark.parametrize(
    ("snippet", "at", "message"),
    [
        (condition("mood", "=", "awful"), AT_ANSWER, "'awful' is not an option code of 'mood'"),
        (condition("pain", "=", "maybe"), AT_ANSWER, "'maybe' is not an option code of 'pain'"),
        (condition("pain", ">", "true"), AT_OPERATOR, "cannot order a boolean"),
        (condition("note", "<=", "abc"), AT_OPERATOR, "cannot order a text"),
        (condition("mood", ">", "good"), AT_OPERATOR, "orders option values"),
        (condition("hello", "exists"), AT_QUESTION, "'hello' is a display item"),
        (condition("plain", "=", "1"), AT_ANSWER, "options without a value"),
        (condition("mood", "=", "true"), AT_ANSWER, "compare it by option code or value"),
        (condition("pain", "=", "1"), AT_ANSWER, "compare it with true or false"),
        (condition("days", ">", "'3'"), AT_ANSWER, "compare it with a whole number"),
        (condition("note", "=", "3"), AT_ANSWER, "compare it with a string"),
        (condition("since", ">", "'01/02/2026'"), AT_ANSWER, "not a date written YYYY-MM-DD"),
        (condition("later", "exists"), AT_QUESTION, "'later' is not an earlier item"),
        (condition("last", "exists"), AT_QUESTION, "'last' is not an earlier item"),
        (condition("mood", "exists", "good"), AT_ANSWER, 'must be of type "boolean"'),
        (condition("mood", "exists", "1"), AT_ANSWER, 'must be of type "boolean"'),
        (condition("mood", "="), (17, ""), "missing 'answer'"),
        (condition("mood", "~", "good"), AT_OPERATOR, "is not one of"),
    ],
)
def test_each_bad_condition_is_reported_at_its_line_and_field(
    snippet: str, at: tuple[int, str], message: str
) -> None:
    line, key = at
    assert_reported(last_item(snippet), line, f"{WHERE}.{key}" if key else WHERE, message)


@pytest.mark.parametrize(
    "snippet",
    [
        condition("mood", "=", "bad"),
        condition("mood", ">=", "1"),
        condition("pain", "!=", "false"),
        condition("pain", "=", "'yes'"),
        condition("days", "<", "3"),
        condition("note", "!=", "''"),
        condition("since", ">=", "'2026-01-01'"),
        condition("plain", "exists", "false"),
        condition("plain", "!=", "a"),
    ],
)
def test_sound_conditions_load(snippet: str) -> None:
    flow = parse_flow(last_item(snippet), "t.yaml")

    assert len(flow.item("last").enable_when) == 1


def item(*lines: str) -> str:
    """Item `last` at line 13, then one line per key (14, 15, ...)."""
    return HEAD + ITEMS + "  - id: last\n" + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (item("type: text", "text: L", "colour: blue"), 16, "items[7].colour", "unknown field"),
        (item("type: text", "text: L", "optoins: [a]"), 16, "items[7].optoins", "'options'?"),
        (item("type: text"), 13, "items[7]", "missing 'text'"),
        (item("type: text", "text: A", "text: B"), 16, "items[7].text", "first at line 15"),
        (item("type: display", "text: L", "required: false"), 16, "items[7].required", "display"),
        (item("type: text", "text: L", "min: 1"), 16, "items[7].min", "only to integer"),
        (
            item("type: choice", "text: L", "options: [{code: a, text: A}]", "max: 3"),
            17,
            "items[7].max",
            "only to integer",
        ),
        (item("type: integer", "text: L", "min: 5", "max: 1"), 16, "items[7].min", "greater"),
        (item("type: choice", "text: L"), 13, "items[7]", "a choice item needs options"),
        (
            item("type: text", "text: L", "options: [{code: a, text: A}]"),
            16,
            "items[7].options",
            "a text item takes no options",
        ),
        (
            item("type: choice", "text: L", "options: nowhere"),
            16,
            "items[7].options",
            "unknown answer set 'nowhere'",
        ),
        (
            item(
                "type: choice",
                "text: L",
                "options:",
                "  - {code: a, text: A}",
                "  - {code: a, text: B}",
            ),
            18,
            "items[7].options[1].code",
            "duplicate option code",
        ),
        (item("type: colour", "text: L"), 14, "items[7].type", "is not one of"),
        (item("type: text", "text: 2026-01-01"), 15, "items[7].text", 'not "date"'),
        (
            HEAD + ITEMS + "  - {id: mood, type: text, text: Again}\n",
            13,
            "items[7].id",
            "duplicate item id 'mood'",
        ),
        (HEAD + "colour: blue\n" + ITEMS, 5, "colour", "unknown field 'colour'"),
        (
            HEAD + "keywords: [report, PHQ, REPORT]\n" + ITEMS,
            5,
            "keywords[2]",
            "duplicate keyword 'REPORT'",
        ),
        (HEAD.replace("title: T\n", "") + ITEMS, 1, "(root)", "missing 'title'"),
        (HEAD.replace("id: t", "id: T"), 1, "id", "does not match"),
        (HEAD + "title: Again\n" + ITEMS, 5, "title", "duplicate key 'title' (first at line 4)"),
    ],
)
def test_each_item_and_field_problem_is_reported_at_its_line(
    text: str, line: int, field: str, message: str
) -> None:
    assert_reported(text, line, field, message)


VALUED = (
    HEAD
    + "numbering: value\n"
    + """\
answer_sets:
  scale:
    - {code: a, value: 0, text: A}
    - {code: b, value: 0, text: B}
    - {code: c, text: C}
items:
  - id: q1
    type: choice
    text: One
    options:
      - {code: x, value: 1, text: X}
      - {code: y, text: Y}
      - {code: z, value: 1, text: Z}
  - {id: q2, type: choice, text: Two, options: scale}
"""
)


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (9, "answer_sets.scale[1].value", "duplicate option value 0"),
        (10, "answer_sets.scale[2]", "every option needs a value"),
        (17, "items[0].options[1]", "every option needs a value"),
        (18, "items[0].options[2].value", "duplicate option value 1"),
    ],
)
def test_numbering_by_value_needs_a_unique_value_on_every_option(
    line: int, field: str, message: str
) -> None:
    assert_reported(VALUED, line, field, message)


def test_values_may_repeat_or_be_absent_when_numbering_by_position() -> None:
    flow = parse_flow(VALUED.replace("numbering: value\n", ""), "t.yaml")

    assert [o.value for o in flow.item("q1").options] == [1, None, 1]


SCORED = (
    HEAD
    + ITEMS
    + """\
scores:
  - id: total
    label: Total
    expr: "days + 1"
    bands:
      - {code: low, label: Low, min: 0, max: 4}
      - {code: low, label: High, min: 5, max: 9}
      - {code: top, label: High, min: 9}
      - {code: odd, label: Odd, min: 20, max: 10}
  - {id: total, label: Again, expr: "sum(days,"}
  - {id: mood, label: Clash, expr: "nothing * 2"}
alerts:
  - {id: high, when: "total >= 5 and prev.total > 0", severity: review, title: High}
  - {id: high, when: "total = 5", severity: review, title: Again}
"""
)


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (19, "scores[0].bands[1].code", "duplicate band code 'low'"),
        (20, "scores[0].bands[2].label", "duplicate band label 'High'"),
        (20, "scores[0].bands[2]", "bands overlap"),
        (21, "scores[0].bands[3].max", "max is below min"),
        (22, "scores[1].id", "duplicate id 'total'"),
        (22, "scores[1].expr", "unexpected end of expression"),
        (23, "scores[2].id", "duplicate id 'mood'"),
        (23, "scores[2].expr", "unknown name 'nothing'"),
        (26, "alerts[1].id", "duplicate alert id 'high'"),
        (26, "alerts[1].when", "use '==' to compare"),
    ],
)
def test_score_band_and_alert_problems_are_reported(line: int, field: str, message: str) -> None:
    assert_reported(SCORED, line, field, message)


ALL_IN_ONE = """\
id: broken
version: "1"
kind: questionnaire
title: Broken
items:
  - id: q1
    type: integer
    text: One
    colour: blue
  - id: q1
    type: integer
    text: Two
    text: Three
  - id: q2
    type: choice
    text: Two
    options: [{code: a, text: A}]
    enable_when:
      - {question: q1, operator: "=", answer: "7"}
      - {question: q3, operator: ">", answer: 1}
  - [not, an, item]
scores:
  - id: total
    label: Total
    expr: "sum(q1,"
"""


def test_a_file_with_many_problems_reports_all_of_them_in_line_order() -> None:
    found = issues_of(ALL_IN_ONE)

    assert [(i.line, i.field) for i in found] == [
        (9, "items[0].colour"),
        (10, "items[1].id"),
        (13, "items[1].text"),
        (19, "items[2].enable_when[0].answer"),
        (20, "items[2].enable_when[1].question"),
        (21, "items[3]"),
        (25, "scores[0].expr"),
    ]
    assert all(i.source == "t.yaml" for i in found)
    assert "unknown field 'colour'" in found[0].message


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_flow_loads_without_an_issue(path: Path) -> None:
    flow = parse_flow(path.read_text("utf-8"), str(path))

    assert flow.id == path.stem and flow.items and flow.source == str(path)


def test_a_sound_flow_becomes_the_flow_it_describes() -> None:
    text = (
        HEAD
        + "keywords: [mood, Check]\nnumbering: value\n"
        + ITEMS.replace(
            "{code: a, text: A}, {code: b, text: B}", "{code: a, value: 1, text: A, aliases: [ay]}"
        )
        + last_item(condition("mood", "exists")).removeprefix(HEAD + ITEMS)
    )

    flow = parse_flow(text, "t.yaml")

    assert flow.keywords == ("MOOD", "CHECK") and flow.numbering == "value"
    assert {i.type for i in flow.items} == set(ItemType)
    assert flow.item("plain").options[0].aliases == ("ay",)
    assert flow.item("hello").required is False and flow.item("note").required is True
    assert flow.item("last").enable_when == (EnableWhen("mood", "exists", True),)


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("id: x\n\tversion: 1\n", 2, "(yaml)"),
        ("id: x\nitems: [1, 2\n", 3, "(yaml)"),
        ("id: x\ntitle: 'open\n", 3, "(yaml)"),
        ("- a\n- b\n", 1, "(root)"),
        ("just words\n", 1, "(root)"),
        ("", 1, "(root)"),
        ("a: 1\n---\nb: 2\n", 2, "(yaml)"),
        ("id: x\nbad: \x00\n", 2, "(yaml)"),
        ("id: &a [*a]\n", 1, "(yaml)"),
        ("id: " + "[" * 3000 + "]" * 3000 + "\n", 1, "(yaml)"),
        ("id: !!python/object/apply:os.system [ls]\n", 1, "(yaml)"),
        ("? [a]\n: b\n", 1, "(yaml)"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{k}: &{k} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, k in zip("abcde", "bcdef", strict=True)
            ),
            1,
            "(yaml)",
        ),
    ],
    ids=[
        "tab",
        "unclosed",
        "quote",
        "list",
        "scalar",
        "empty",
        "two-docs",
        "nul",
        "cycle",
        "deep",
        "python-tag",
        "list-key",
        "alias-bomb",
    ],
)
def test_garbage_yaml_is_one_issue_with_a_line(text: str, line: int, field: str) -> None:
    (found,) = issues_of(text)

    assert (found.line, found.field) == (line, field) and found.message


@pytest.mark.parametrize(
    "text",
    [
        HEAD + "items: 5\n",
        HEAD + "items:\n  - 5\n  - [a]\n  - {id: [1], type: choice, options: {a: 1}}\n",
        HEAD + "items:\n  - {id: q, type: choice, text: Q, options: [5, {code: [x]}],"
        " enable_when: [7, {question: q}, {question: [q], operator: '='}]}\n",
        HEAD + ITEMS + "scores: {a: 1}\nalerts: [{when: 5}, 3]\nkeywords: [5, x]\n",
        HEAD + ITEMS + "answer_sets: [1]\nnumbering: value\nscores: [{bands: 3}, {bands: [1]}]\n",
        HEAD
        + ITEMS
        + "scores: [{id: s, label: S, expr: x, bands: [{min: '1'}, {min: 1, max: a}]}]\n",
        HEAD + "1: a\nnull: b\n? !!binary aGk=\n: c\n" + ITEMS,
        "base: &b {type: text, text: T}\n" + HEAD + "items:\n  - {<<: *b, id: q}\n",
    ],
)
def test_odd_shapes_become_issues_never_crashes(text: str) -> None:
    assert all(i.line >= 1 and i.field and i.message for i in issues_of(text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(SHIPPED) - 1),
    cut=st.integers(0, 10_000),
    junk=st.text(alphabet=" \t\n:-[]{}&*!|>'\"#,?%@`0aZ", max_size=12),
)
def test_any_edit_of_a_shipped_flow_loads_or_raises_flow_error(
    index: int, cut: int, junk: str
) -> None:
    text = SHIPPED[index].read_text("utf-8")
    at = cut % (len(text) + 1)
    try:
        parse_flow(text[:at] + junk + text[at + len(junk) // 2 :], "edit.yaml")
    except FlowError as exc:
        assert exc.issues and all(i.line >= 1 for i in exc.issues)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_loads_or_raises_flow_error(text: str) -> None:
    try:
        parse_flow(text, "any.yaml")
    except FlowError as exc:
        assert exc.issues and all(i.line >= 1 for i in exc.issues)


# --------------------------------------------------------------- enableWhen meaning

KINDS = """\
items:
  - {id: coded, type: choice, text: C, options: [{code: x, text: X}, {code: y, text: Y}]}
  - id: valued
    type: choice
    text: V
    options: [{code: lo, value: 0, text: L}, {code: hi, value: 5, text: H}]
  - {id: yes_no, type: boolean, text: B}
  - {id: count, type: integer, text: N}
  - {id: words, type: text, text: W}
  - {id: day, type: date, text: D}
"""
RECORDED: dict[str, dict[str, Any]] = {
    "coded": {"code": "y", "value": "y"},
    "valued": {"code": "hi", "value": 5},
    "yes_no": {"code": "no", "value": False},
    "count": {"code": None, "value": 3},
    "words": {"code": None, "value": "dizzy"},
    "day": {"code": None, "value": "2026-03-10"},
}


def gated(question: str, operator: str, answer: str | None) -> Item:
    """An item enabled by one condition, loaded (so checked) with the KINDS items."""
    text = HEAD + KINDS + "  - id: gated\n    type: text\n    text: G\n    enable_when:\n"
    return parse_flow(text + condition(question, operator, answer), "t.yaml").item("gated")


@pytest.mark.parametrize(
    ("question", "operator", "answer", "expected"),
    [
        ("coded", "=", "y", True),
        ("coded", "=", "x", False),
        ("coded", "!=", "x", True),
        ("valued", "=", "hi", True),
        ("valued", "!=", "hi", False),
        ("valued", ">", "0", True),
        ("valued", "<=", "4", False),
        ("valued", "=", "5", True),
        ("yes_no", "=", "false", True),
        ("yes_no", "!=", "false", False),
        ("yes_no", "=", "'no'", True),
        ("count", ">=", "3", True),
        ("count", ">", "3", False),
        ("count", "!=", "0", True),
        ("words", "=", "dizzy", True),
        ("words", "!=", "dizzy", False),
        ("words", "=", "Dizzy", False),
        ("day", "=", "'2026-03-10'", True),
        ("day", ">", "'2026-02-28'", True),
        ("day", "<", "'2026-03-09'", False),
        ("count", "exists", None, True),
        ("count", "exists", "true", True),
        ("count", "exists", "false", False),
    ],
)
def test_conditions_compare_what_each_item_type_records(
    question: str, operator: str, answer: str | None, expected: bool
) -> None:
    assert is_enabled(gated(question, operator, answer), RECORDED) is expected


@pytest.mark.parametrize("question", list(RECORDED))
def test_unanswered_questions_fail_every_condition_but_exists_false(question: str) -> None:
    unanswered = {q: a for q, a in RECORDED.items() if q != question}
    skipped = {**unanswered, question: {"code": None, "value": None}}
    exists_not = gated(question, "exists", "false")

    for answers in (unanswered, skipped):
        assert is_enabled(gated(question, "!=", _other(question)), answers) is False
        assert is_enabled(gated(question, "exists", None), answers) is False
        assert is_enabled(exists_not, answers) is True


def _other(question: str) -> str:
    """An answer of the right kind that differs from the recorded one."""
    return {"coded": "x", "valued": "lo", "yes_no": "true", "count": "9", "words": "calm"}.get(
        question, "'2000-01-01'"
    )


def test_any_and_all_combine_conditions() -> None:
    either = EnableWhen("count", ">", 5), EnableWhen("words", "=", "dizzy")
    base = Item(id="g", type=ItemType.TEXT, text="G", enable_when=either)

    assert is_enabled(base, RECORDED) is False
    assert is_enabled(Item(**{**base.__dict__, "enable_behavior": "any"}), RECORDED) is True
    assert is_enabled(Item(id="free", type=ItemType.TEXT, text="F"), {}) is True


def test_kinds_that_do_not_match_never_hold() -> None:
    """Conditions the loader refuses still evaluate safely (a hand-built Flow)."""
    cases = [
        EnableWhen("yes_no", "=", 0),  # a number is no boolean
        EnableWhen("count", "=", True),  # True is no 1
        EnableWhen("coded", ">", 0),  # no ordinal values
        EnableWhen("count", "=", "3"),  # a string is no number
        EnableWhen("yes_no", ">", False),  # booleans have no order
    ]
    for case in cases:
        gate = Item(id="g", type=ItemType.TEXT, text="G", enable_when=(case,))
        assert is_enabled(gate, RECORDED) is False, case
