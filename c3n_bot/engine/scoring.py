"""Scores, bands, alert rules and enableWhen conditions, evaluated over recorded answers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from c3n_bot.engine.definitions import AlertRule, EnableWhen, Flow, Item
from c3n_bot.engine.expressions import Expression, compile_expression

Answers = Mapping[str, Mapping[str, Any]]


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Expression:
    return compile_expression(source)


def environment(
    answers: Answers, scores: Mapping[str, Any], previous: Mapping[str, Any]
) -> dict[str, Any]:
    """Names an expression can read: item values, scores so far, and prev.<score>."""
    env: dict[str, Any] = {item_id: answer.get("value") for item_id, answer in answers.items()}
    env.update(scores)
    env.update({f"prev.{name}": value for name, value in previous.items()})
    return env


def compute_scores(
    flow: Flow, answers: Answers, previous: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every score in order (a score may use an earlier one), and the band codes."""
    scores: dict[str, Any] = {}
    bands: dict[str, str] = {}
    for score in flow.scores:
        value = _compiled(score.expr).evaluate(environment(answers, scores, previous))
        scores[score.id] = value
        band = score.band(value) if isinstance(value, int | float) else None
        if band is not None:
            bands[score.id] = band.code
    return scores, bands


def fired_alerts(
    rules: tuple[AlertRule, ...], env: Mapping[str, Any], already: set[str]
) -> list[AlertRule]:
    """Rules whose condition holds and that have not fired in this session yet."""
    return [r for r in rules if r.id not in already and _compiled(r.when).evaluate(env) is True]


def is_enabled(item: Item, answers: Answers) -> bool:
    """Whether an item's enableWhen conditions let it be asked."""
    if not item.enable_when:
        return True
    results = [_holds(condition, answers) for condition in item.enable_when]
    return any(results) if item.enable_behavior == "any" else all(results)


def _holds(condition: EnableWhen, answers: Answers) -> bool:
    """One condition over the recorded answer to its question.

    What is compared depends on the condition's answer and on what the question recorded:
    a string is an option code of a choice (or yes/no of a boolean), else the text or
    ISO date itself (ISO dates order correctly as strings); a boolean is a yes/no value;
    a number is an integer answer or a choice's ordinal value. Mismatched kinds never hold.
    """
    answer = answers.get(condition.question)
    present = answer is not None and answer.get("value") is not None
    if condition.operator == "exists":
        return present == bool(condition.answer)
    if not present or answer is None:
        return False
    expected, value, code = condition.answer, answer.get("value"), answer.get("code")
    if isinstance(expected, str):
        actual = code if code is not None else value
        return isinstance(actual, str) and _compare(condition.operator, actual, expected)
    if isinstance(expected, bool) or isinstance(value, bool):
        same_kind = isinstance(expected, bool) and isinstance(value, bool)
        return (
            same_kind
            and condition.operator in ("=", "!=")
            and _compare(condition.operator, value, expected)
        )
    return isinstance(value, int | float) and _compare(condition.operator, value, expected)


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    """`actual <operator> expected`; values that cannot be compared make it false."""
    try:
        if operator == "=":
            return bool(actual == expected)
        if operator == "!=":
            return bool(actual != expected)
        if operator == ">":
            return bool(actual > expected)
        if operator == "<":
            return bool(actual < expected)
        if operator == ">=":
            return bool(actual >= expected)
        return bool(actual <= expected)
    except TypeError:
        return False
