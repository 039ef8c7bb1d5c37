"""Flow to FHIR R4 Questionnaire JSON: the export half of the Questionnaire mapping."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date
from typing import Any

from c3n_bot.engine.definitions import Coding, EnableWhen, Flow, Item, ItemType, Option
from c3n_bot.registry.questionnaire import (
    HELP_SUFFIX,
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    MAX_VALUE,
    MIN_VALUE,
    ORDINAL_VALUE,
    PROXY_TEXT,
    QuestionnaireExportError,
    fhir_id,
    local_system,
    questionnaire_name,
)

ITEM_TYPES: dict[ItemType, str] = {
    ItemType.CHOICE: "choice",
    ItemType.INTEGER: "integer",
    ItemType.BOOLEAN: "boolean",
    ItemType.TEXT: "text",
    ItemType.DATE: "date",
    ItemType.DISPLAY: "display",
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def questionnaire_from_flow(flow: Flow) -> dict[str, Any]:
    """The flow as an R4 Questionnaire resource (JSON-ready dict; same flow, same output).

    Texts are the English source strings. Each item keeps its id as linkId, its code, its
    required flag (not on display items), integer bounds as minValue/maxValue extensions,
    help as a child display item with itemControl `help`, and proxy wording in the
    `proxy-text` extension. Options become answerOption.valueCoding with the option's
    system, or `local_system(flow.id)` when it names none, and their value as the
    ordinalValue extension (valueDecimal).

    enableWhen follows the engine's meaning of each condition. A choice condition that
    compares ordinal values (PHQ-9 item 10: `q1 > 0`), or any other choice condition that
    several options satisfy, cannot be one FHIR condition: FHIR compares a coding only with
    `=` and `!=`. It becomes one `answerCoding =` condition per satisfying option, with
    enableBehavior `any`, when the item's behavior is `any` or this is its only condition.
    Under `all` with other conditions it becomes `exists true` plus `answerCoding !=` for
    each option that does not satisfy it, which ANDs to the same thing. Raises
    QuestionnaireExportError for a condition FHIR cannot state (e.g. on a display item).
    """
    resource: dict[str, Any] = {"resourceType": "Questionnaire", "id": fhir_id(flow.id)}
    if flow.url:
        resource["url"] = flow.url
    resource["version"] = flow.version
    resource["name"] = questionnaire_name(flow.id)
    resource["title"] = flow.title
    resource["status"] = "active"
    resource["subjectType"] = ["Patient"]
    if flow.description:
        resource["description"] = flow.description
    if flow.code is not None:
        resource["code"] = [coding_json(flow.code)]
    resource["item"] = [_item(flow, item) for item in flow.items]
    return resource


def coding_json(coding: Coding) -> dict[str, str]:
    """A Coding as FHIR JSON."""
    out = {"system": coding.system, "code": coding.code}
    if coding.display:
        out["display"] = coding.display
    return out


def option_coding(flow: Flow, option: Option) -> dict[str, str]:
    """An option's valueCoding: its own system, else the flow's local one."""
    return {
        "system": option.system or local_system(flow.id),
        "code": option.code,
        "display": option.text,
    }


def _item(flow: Flow, item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.id}
    extensions: list[dict[str, Any]] = []
    if item.type == ItemType.INTEGER:
        if item.min is not None:
            extensions.append({"url": MIN_VALUE, "valueInteger": item.min})
        if item.max is not None:
            extensions.append({"url": MAX_VALUE, "valueInteger": item.max})
    if item.proxy_text:
        extensions.append({"url": PROXY_TEXT, "valueString": item.proxy_text})
    if extensions:
        out["extension"] = extensions
    if item.code is not None:
        out["code"] = [coding_json(item.code)]
    out["text"] = item.text
    out["type"] = ITEM_TYPES[item.type]
    if item.enable_when:
        conditions, behavior = _enable_when(flow, item)
        out["enableWhen"] = conditions
        if len(conditions) > 1:
            out["enableBehavior"] = behavior
    if item.type != ItemType.DISPLAY:
        out["required"] = item.required
    if item.options:
        out["answerOption"] = [_answer_option(flow, option) for option in item.options]
    # A display item cannot have children in FHIR, so its help (if any) is not exported.
    if item.help and item.type != ItemType.DISPLAY:
        out["item"] = [_help(item)]
    return out


def _answer_option(flow: Flow, option: Option) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if option.value is not None:
        out["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": option.value}]
    out["valueCoding"] = option_coding(flow, option)
    return out


def _help(item: Item) -> dict[str, Any]:
    control = {"system": ITEM_CONTROL_SYSTEM, "code": "help", "display": "Help-Button"}
    return {
        "linkId": f"{item.id}{HELP_SUFFIX}",
        "extension": [{"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [control]}}],
        "text": item.help,
        "type": "display",
    }


def _enable_when(flow: Flow, item: Item) -> tuple[list[dict[str, Any]], str]:
    behavior = item.enable_behavior
    either = behavior == "any" or len(item.enable_when) == 1
    out: list[dict[str, Any]] = []
    for condition in item.enable_when:
        question = _question(flow, item, condition)
        if condition.operator == "exists":
            out.append(_exists(question, bool(condition.answer)))
        elif question.type == ItemType.CHOICE:
            matching = [o for o in question.options if _option_holds(o, condition)]
            if len(matching) == 1:
                out.append(_coded(flow, question, "=", matching[0]))
            elif either:
                out.extend(_coded(flow, question, "=", option) for option in matching)
                behavior = "any"
            else:
                out.append(_exists(question, True))
                out.extend(
                    _coded(flow, question, "!=", option)
                    for option in question.options
                    if option not in matching
                )
        else:
            answer = _answer(item, question, condition)
            out.append({"question": question.id, "operator": condition.operator, **answer})
    if not out:
        raise QuestionnaireExportError(f"item {item.id!r}: its enable_when can never hold")
    # The same condition twice (an `exists` added above, say) says nothing more: keep one.
    unique = [c for index, c in enumerate(out) if c not in out[:index]]
    return unique, behavior


def _question(flow: Flow, item: Item, condition: EnableWhen) -> Item:
    try:
        question = flow.item(condition.question)
    except KeyError:
        raise QuestionnaireExportError(
            f"item {item.id!r}: enable_when refers to unknown item {condition.question!r}"
        ) from None
    if question.type == ItemType.DISPLAY:
        raise QuestionnaireExportError(
            f"item {item.id!r}: enable_when refers to display item {question.id!r}"
        )
    return question


def _exists(question: Item, answered: bool) -> dict[str, Any]:
    return {"question": question.id, "operator": "exists", "answerBoolean": answered}


def _coded(flow: Flow, question: Item, op: str, option: Option) -> dict[str, Any]:
    return {"question": question.id, "operator": op, "answerCoding": option_coding(flow, option)}


def _option_holds(option: Option, condition: EnableWhen) -> bool:
    """Whether choosing this option meets the condition, exactly as the engine decides it."""
    expected = condition.answer
    if isinstance(expected, str):
        actual: Any = option.code
    else:
        actual = option.value if option.value is not None else option.code
    if isinstance(expected, bool) and condition.operator not in ("=", "!="):
        return False
    try:
        return bool(_COMPARE[condition.operator](actual, expected))
    except TypeError:
        return False


def _answer(item: Item, question: Item, condition: EnableWhen) -> dict[str, Any]:
    expected = condition.answer
    op = condition.operator
    if question.type == ItemType.INTEGER and isinstance(expected, int):
        if not isinstance(expected, bool):
            return {"answerInteger": expected}
    elif question.type == ItemType.BOOLEAN and op in ("=", "!="):
        if isinstance(expected, bool):
            return {"answerBoolean": expected}
        if expected in ("yes", "no"):
            return {"answerBoolean": expected == "yes"}
    elif question.type == ItemType.TEXT and isinstance(expected, str):
        return {"answerString": expected}
    elif question.type == ItemType.DATE and isinstance(expected, str) and _is_date(expected):
        return {"answerDate": expected}
    raise QuestionnaireExportError(
        f"item {item.id!r}: enable_when {question.id} {op} {expected!r} has no FHIR form "
        f"for a {question.type.value} question"
    )


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
