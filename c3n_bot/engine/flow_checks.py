"""The checks a JSON Schema cannot state, run on whatever parts of a flow are usable.

Every function here reads the raw YAML data defensively: a part of the wrong shape (the
schema reports it) is skipped, never trusted, so one pass reports every problem of a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeGuard

from c3n_bot.engine.expressions import ExpressionError, compile_expression

Path = tuple[str | int, ...]
Report = Callable[[Path, str], None]
# Names an expression may read besides item and score ids: the previous report's scores.
CONTEXT_PREFIXES = ("prev.",)
ORDERING = (">", "<", ">=", "<=")
ITEM_TYPES = ("choice", "integer", "boolean", "text", "date", "display")


@dataclass(frozen=True)
class _Question:
    """What a condition needs to know about an earlier item."""

    type: str | None
    codes: frozenset[str]
    all_valued: bool


def check_flow(data: Mapping[str, Any], report: Report) -> None:
    """Report every semantic problem of a flow's raw data (its schema checked apart)."""
    answer_sets = _answer_sets(data, report)
    items = _entries(data, "items")
    later = _ids(items)
    earlier: dict[str, _Question] = {}
    for index, raw in items:
        path: Path = ("items", index)
        options = _item_options(raw, answer_sets, data.get("numbering") == "value", path, report)
        _check_item_fields(raw, path, report)
        _check_conditions(raw, earlier, later, path, report)
        item_id = raw.get("id")
        if isinstance(item_id, str) and item_id in earlier:
            report((*path, "id"), f"duplicate item id {item_id!r}")
        elif isinstance(item_id, str):
            earlier[item_id] = _question(raw, options)
    _check_scores(data, set(earlier), report)
    _check_alerts(data, set(earlier) | _ids(_entries(data, "scores")), report)
    _check_keywords(data, report)


def _question(raw: dict[str, Any], options: list[dict[str, Any]]) -> _Question:
    """An item as a later condition sees it: a boolean answer's codes are yes and no."""
    item_type = raw.get("type")
    if item_type == "boolean":
        return _Question("boolean", frozenset({"yes", "no"}), False)
    codes = frozenset(code for o in options if isinstance(code := o.get("code"), str))
    valued = all(_is_int(o.get("value")) for o in options)
    return _Question(item_type if isinstance(item_type, str) else None, codes, valued)


def _entries(data: Mapping[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    """The (index, mapping) entries of a list field; anything else is skipped."""
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [(i, entry) for i, entry in enumerate(value) if isinstance(entry, dict)]


def _ids(entries: Iterable[tuple[int, dict[str, Any]]]) -> set[str]:
    """The text ids of entries."""
    return {entry["id"] for _, entry in entries if isinstance(entry.get("id"), str)}


def _repeats(entries: Iterable[tuple[Any, object]]) -> Iterator[tuple[Any, Any]]:
    """The (position, key) entries whose key already appeared."""
    seen: set[object] = set()
    for position, key in entries:
        if key in seen:
            yield position, key
        seen.add(key)


def _is_int(value: object) -> TypeGuard[int]:
    """A whole number (YAML true is a bool, not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """A number, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _answer_sets(data: Mapping[str, Any], report: Report) -> dict[str, list[dict[str, Any]]]:
    """Each usable answer set's options, its codes and values checked once."""
    raw = data.get("answer_sets")
    if not isinstance(raw, dict):
        return {}
    by_value = data.get("numbering") == "value"
    sets: dict[str, list[dict[str, Any]]] = {}
    for name, options in raw.items():
        if isinstance(name, str) and isinstance(options, list):
            sets[name] = _check_options(options, by_value, ("answer_sets", name), report)
    return sets


def _check_options(options: list[Any], by_value: bool, path: Path, report: Report) -> list[Any]:
    """Option codes unique; with `numbering: value`, a unique value on every option."""
    usable = [(i, o) for i, o in enumerate(options) if isinstance(o, dict)]
    codes = [(i, o["code"]) for i, o in usable if isinstance(o.get("code"), str)]
    for index, code in _repeats(codes):
        report((*path, index, "code"), f"duplicate option code {code!r}")
    if by_value:
        for index, _ in ((i, o) for i, o in usable if o.get("value") is None):
            report((*path, index), "with `numbering: value` every option needs a value")
        values = [(i, o["value"]) for i, o in usable if _is_int(o.get("value"))]
        for index, value in _repeats(values):
            report((*path, index, "value"), f"duplicate option value {value}")
    return [option for _, option in usable]


def _item_options(
    raw: dict[str, Any],
    answer_sets: dict[str, list[dict[str, Any]]],
    by_value: bool,
    path: Path,
    report: Report,
) -> list[dict[str, Any]]:
    """The item's usable options (inline or from an answer set), checked."""
    spec, item_type = raw.get("options"), raw.get("type")
    options: list[dict[str, Any]] = []
    if isinstance(spec, str):
        if spec not in answer_sets:
            report((*path, "options"), f"unknown answer set {spec!r}")
        options = answer_sets.get(spec, [])
    elif isinstance(spec, list):
        by_value = by_value and item_type == "choice"
        options = _check_options(spec, by_value, (*path, "options"), report)
    if item_type == "choice" and spec is None:
        report(path, "a choice item needs options")
    if item_type in ITEM_TYPES and item_type != "choice" and spec is not None:
        report((*path, "options"), f"a {item_type} item takes no options")
    return options


def _check_item_fields(raw: dict[str, Any], path: Path, report: Report) -> None:
    """`required` on a display item and bounds on a non-integer item mean nothing."""
    item_type = raw.get("type")
    if item_type == "display" and "required" in raw:
        report((*path, "required"), "a display item takes no answer: remove `required`")
    for key in ("min", "max"):
        if item_type in ITEM_TYPES and item_type != "integer" and key in raw:
            report((*path, key), f"`{key}` applies only to integer items, not {item_type}")
    low, high = raw.get("min"), raw.get("max")
    if _is_int(low) and _is_int(high) and low > high:
        report((*path, "min"), "min is greater than max")


def _check_conditions(
    raw: dict[str, Any], earlier: dict[str, _Question], later: set[str], path: Path, report: Report
) -> None:
    """Each enable_when names an earlier question and an answer that question can give."""
    for index, condition in _entries(raw, "enable_when"):
        where: Path = (*path, "enable_when", index)
        question = condition.get("question")
        if not isinstance(question, str):
            continue
        if question not in earlier:
            known = "it is this item or a later one" if question in later else "no such item"
            report((*where, "question"), f"{question!r} is not an earlier item ({known})")
        elif earlier[question].type == "display":
            report((*where, "question"), f"{question!r} is a display item: it has no answer")
        else:
            _check_answer(condition, question, earlier[question], where, report)


def _check_answer(
    condition: dict[str, Any], name: str, question: _Question, where: Path, report: Report
) -> None:
    """The condition's operator and answer against the type and options of its question."""
    operator, answer = condition.get("operator"), condition.get("answer")
    if operator == "exists" or "answer" not in condition:
        return
    kind = question.type
    if operator in ORDERING and kind in ("boolean", "text"):
        report((*where, "operator"), f"{operator!r} cannot order a {kind} answer: use = or !=")
    elif operator in ORDERING and kind == "choice" and isinstance(answer, str):
        report((*where, "operator"), f"{operator!r} orders option values: give a number")
    problem = _answer_problem(answer, name, question)
    if problem:
        report((*where, "answer"), problem)


def _answer_problem(answer: object, name: str, question: _Question) -> str | None:
    """Why an answer can never match what the question records, if it cannot."""
    kind = question.type
    if kind in ("choice", "boolean") and isinstance(answer, str):
        if answer not in question.codes:
            return f"{answer!r} is not an option code of {name!r}"
    elif kind == "choice" and _is_int(answer) and not question.all_valued:
        return f"{name!r} has options without a value: compare it by option code"
    elif kind == "choice" and isinstance(answer, bool):
        return f"{name!r} is a choice: compare it by option code or value"
    elif kind == "boolean" and not isinstance(answer, bool):
        return f"{name!r} is a yes/no question: compare it with true or false"
    elif kind == "integer" and not _is_int(answer):
        return f"{name!r} is an integer question: compare it with a whole number"
    elif kind in ("text", "date") and not isinstance(answer, str):
        return f"{name!r} is a {kind} question: compare it with a string"
    elif kind == "date" and isinstance(answer, str) and not _is_iso_date(answer):
        return f"{answer!r} is not a date written YYYY-MM-DD"
    return None


def _is_iso_date(text: str) -> bool:
    """Whether text is a date written YYYY-MM-DD (as a date answer is recorded)."""
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _check_scores(data: Mapping[str, Any], items: set[str], report: Report) -> None:
    """Unique score ids, valid expressions, and bands that neither overlap nor repeat."""
    scores = _entries(data, "scores")
    names = items | _ids(scores)
    ids = [(i, s["id"]) for i, s in scores if isinstance(s.get("id"), str)]
    clashes = {i for i, _ in _repeats(ids)} | {i for i, score_id in ids if score_id in items}
    for index, score_id in ids:
        if index in clashes:
            report(("scores", index, "id"), f"duplicate id {score_id!r}")
    for index, score in scores:
        _check_expression(score.get("expr"), names, ("scores", index, "expr"), report)
        _check_bands(_entries(score, "bands"), ("scores", index, "bands"), report)


def _check_bands(bands: list[tuple[int, dict[str, Any]]], path: Path, report: Report) -> None:
    """Band codes and labels unique, each band's range sound, no two ranges overlapping."""
    for key in ("code", "label"):
        texts = [(i, b[key]) for i, b in bands if isinstance(b.get(key), str)]
        for index, value in _repeats(texts):
            report((*path, index, key), f"duplicate band {key} {value!r}")
    ranged = [(i, b) for i, b in bands if _is_number(b.get("min"))]
    for index, band in ranged:
        if _is_number(band.get("max")) and band["max"] < band["min"]:
            report((*path, index, "max"), "max is below min")
    ordered = sorted(ranged, key=lambda entry: entry[1]["min"])
    for (_, low), (index, high) in zip(ordered, ordered[1:], strict=False):
        if not _is_number(low.get("max")) or low["max"] >= high["min"]:
            report((*path, index), "bands overlap")


def _check_alerts(data: Mapping[str, Any], names: set[str], report: Report) -> None:
    """Unique alert ids (a session remembers which fired by id) and valid conditions."""
    alerts = _entries(data, "alerts")
    for index, alert_id in _repeats(
        (i, a["id"]) for i, a in alerts if isinstance(a.get("id"), str)
    ):
        report(("alerts", index, "id"), f"duplicate alert id {alert_id!r}")
    for index, alert in alerts:
        _check_expression(alert.get("when"), names, ("alerts", index, "when"), report)


def _check_expression(source: object, names: set[str], path: Path, report: Report) -> None:
    """An expression compiles and reads only items, scores and the previous report."""
    if not isinstance(source, str):
        return  # the schema reports a missing or non-text expression
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        report(path, str(exc))
        return
    for name in sorted(expression.names()):
        if name not in names and not name.startswith(CONTEXT_PREFIXES):
            report(path, f"unknown name {name!r}")


def _check_keywords(data: Mapping[str, Any], report: Report) -> None:
    """Keywords are matched upper-cased, so `report` and `REPORT` are the same one."""
    keywords = data.get("keywords")
    words = enumerate(keywords if isinstance(keywords, list) else [])
    for index, word in _repeats((i, w.upper()) for i, w in words if isinstance(w, str)):
        report(("keywords", index), f"duplicate keyword {word!r}")
