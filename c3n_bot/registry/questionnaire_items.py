"""One FHIR Questionnaire item to one flow item: its type, options and enableWhen."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from c3n_bot.registry.questionnaire import (
    MAX_VALUE,
    MIN_VALUE,
    ORDINAL_VALUE,
    PROXY_TEXT,
    QuestionnaireImportError,
    local_system,
)

OPTION_CODE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# FHIR question types a flow can ask, and the flow item type each becomes.
ITEM_TYPES = {
    "choice": "choice",
    "integer": "integer",
    "boolean": "boolean",
    "string": "text",
    "text": "text",
    "date": "date",
    "display": "display",
}
# Extensions that carry an option's ordinal value: R4's, its predecessor, and R5's.
ORDINAL_URLS = (
    ORDINAL_VALUE,
    "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
)
OPERATORS = ("exists", "=", "!=", ">", "<", ">=", "<=")
Json = Mapping[str, Any]


@dataclass
class Entry:
    """One Questionnaire item in flow order, with the enableWhen it inherits from parents."""

    raw: Json
    link_id: str
    conditions: list[Json]
    behavior: str
    help: str | None = None
    heading: bool = False  # a group's text, asked as a display item


@dataclass
class Question:
    """What an enableWhen needs to know about an imported item."""

    type: str
    codes: dict[tuple[str | None, str], str]  # (system, FHIR code) -> option code
    strings: dict[str, str]  # valueString -> option code


def import_item(
    entry: Entry, ids: dict[str, str], questions: dict[str, Question], flow_id: str
) -> dict[str, Any] | None:
    """The flow item (YAML-ready dict) for one entry, or None for a display without text.

    `ids` maps every linkId to its item id; `questions` holds the items imported so far,
    which enableWhen may refer to, and gets this one added.
    """
    raw, link_id = entry.raw, entry.link_id
    fhir_type = "display" if entry.heading else raw.get("type")
    if fhir_type not in ITEM_TYPES:
        raise QuestionnaireImportError(
            f"item {link_id!r}: type {fhir_type!r} is not supported "
            f"(supported: {', '.join(ITEM_TYPES)}, group)"
        )
    kind = ITEM_TYPES[fhir_type]
    if raw.get("repeats") and kind != "display":
        raise QuestionnaireImportError(f"item {link_id!r}: repeating answers are not supported")
    text = text_of(raw.get("text"))
    if not text:
        if kind == "display":
            return None
        raise QuestionnaireImportError(f"item {link_id!r} has no text")
    item_id = ids[link_id]
    out: dict[str, Any] = {"id": item_id, "type": kind, "text": text}
    extensions = {e.get("url"): e for e in objects(raw, "extension", link_id)}
    if proxy := text_of(extensions.get(PROXY_TEXT, {}).get("valueString")):
        out["proxy_text"] = proxy
    if entry.help:
        out["help"] = entry.help
    if (code := first_coding(raw.get("code"))) and not entry.heading:
        out["code"] = code
    question = Question(kind, {}, {})
    if kind == "choice":
        out["options"] = _options(raw, link_id, question, flow_id)
    if kind != "display" and not raw.get("required", False):
        out["required"] = False
    if kind == "integer":
        for key, url in (("min", MIN_VALUE), ("max", MAX_VALUE)):
            bound = extensions.get(url, {}).get("valueInteger")
            if isinstance(bound, int):
                out[key] = bound
    if entry.conditions:
        if entry.behavior == "any" and len(entry.conditions) > 1:
            out["enable_behavior"] = "any"
        out["enable_when"] = [_condition(link_id, c, ids, questions) for c in entry.conditions]
    if kind != "display":
        questions[item_id] = question
    return out


def _options(raw: Json, link_id: str, question: Question, flow_id: str) -> list[dict[str, Any]]:
    answers = objects(raw, "answerOption", link_id)
    if not answers:
        detail = "answerValueSet is not supported" if raw.get("answerValueSet") else "no options"
        raise QuestionnaireImportError(f"item {link_id!r}: {detail}; list them as answerOption")
    options: list[dict[str, Any]] = []
    for answer in answers:
        coding, value = answer.get("valueCoding"), _ordinal(answer, link_id)
        if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
            system = coding.get("system") if isinstance(coding.get("system"), str) else None
            code = _option_code(coding["code"], options)
            question.codes[(system, coding["code"])] = code
            option: dict[str, Any] = {"code": code, "text": text_of(coding.get("display")) or code}
            if system and system != local_system(flow_id):
                option["system"] = system
        elif isinstance(answer.get("valueString"), str) and answer["valueString"].strip():
            code = _option_code(answer["valueString"], options)
            question.strings[answer["valueString"]] = code
            option = {"code": code, "text": answer["valueString"]}
        elif type(answer.get("valueInteger")) is int:
            code = _option_code(str(answer["valueInteger"]), options)
            option = {"code": code, "text": str(answer["valueInteger"])}
            value = answer["valueInteger"] if value is None else value
        else:
            kinds = [key for key in answer if key.startswith("value")]
            raise QuestionnaireImportError(f"item {link_id!r}: answerOption {kinds} unsupported")
        if value is not None:
            option["value"] = value
        order = ("code", "system", "value", "text")
        options.append({key: option[key] for key in order if key in option})
    return options


def _ordinal(answer: Json, link_id: str) -> int | None:
    coding = answer.get("valueCoding")
    extensions = objects(answer, "extension", link_id)
    if isinstance(coding, Mapping):
        extensions = [*extensions, *objects(coding, "extension", link_id)]
    for extension in extensions:
        if extension.get("url") in ORDINAL_URLS:
            number = extension.get("valueDecimal", extension.get("valueInteger"))
            if isinstance(number, int | float) and not isinstance(number, bool):
                if number != int(number):
                    raise QuestionnaireImportError(
                        f"item {link_id!r}: ordinal value {number} is not a whole number"
                    )
                return int(number)
    return None


def _option_code(raw: str, options: list[dict[str, Any]]) -> str:
    code = raw if OPTION_CODE.fullmatch(raw) else re.sub(r"[^A-Za-z0-9._-]+", "-", raw)
    code = code.strip("-")[:60] or "option"
    taken = {o["code"] for o in options}
    candidate, number = code, 2
    while candidate in taken:
        candidate, number = f"{code}-{number}", number + 1
    return candidate


def _condition(
    link_id: str, raw: Json, ids: dict[str, str], questions: dict[str, Question]
) -> dict[str, Any]:
    target, op = raw.get("question"), raw.get("operator")
    where = f"item {link_id!r}: enableWhen on {target!r}"
    if not isinstance(target, str) or ids.get(target) not in questions:
        raise QuestionnaireImportError(f"{where}: not an earlier question")
    if op not in OPERATORS:
        raise QuestionnaireImportError(f"{where}: operator {op!r} is not supported")
    question_id = ids[target]
    question = questions[question_id]
    out: dict[str, Any] = {"question": question_id, "operator": op}
    keys = [key for key in raw if key.startswith("answer")]
    answer = raw[keys[0]] if len(keys) == 1 else None
    if len(keys) != 1:
        raise QuestionnaireImportError(f"{where}: needs exactly one answer[x]")
    if op == "exists" or keys[0] == "answerBoolean":
        if not isinstance(answer, bool) or op not in ("exists", "=", "!="):
            raise QuestionnaireImportError(f"{where}: {op} {keys[0]} is not supported")
        out["answer"] = answer
    elif keys[0] == "answerCoding" and isinstance(answer, Mapping) and op in ("=", "!="):
        system = answer.get("system") if isinstance(answer.get("system"), str) else None
        code = str(answer.get("code"))
        same_code = [v for (_, c), v in question.codes.items() if c == code]
        found = question.codes.get((system, code))
        if found is None and len(same_code) == 1:
            found = same_code[0]
        if found is None:
            raise QuestionnaireImportError(f"{where}: {code!r} is not one of its answers")
        out["answer"] = found
    elif keys[0] == "answerString" and isinstance(answer, str):
        out["answer"] = question.strings.get(answer, answer)
    elif keys[0] in ("answerInteger", "answerDecimal") and isinstance(answer, int | float):
        if isinstance(answer, bool) or answer != int(answer):
            raise QuestionnaireImportError(f"{where}: {answer!r} is not a whole number")
        out["answer"] = int(answer)
    else:
        raise QuestionnaireImportError(f"{where}: {keys[0]} with {op!r} is not supported")
    return out


def first_coding(raw: object) -> dict[str, str] | None:
    """The first complete Coding of a FHIR `code` list, as a flow coding."""
    for coding in raw if isinstance(raw, list) else []:
        if (
            isinstance(coding, Mapping)
            and text_of(coding.get("system"))
            and text_of(coding.get("code"))
        ):
            out = {"system": coding["system"], "code": coding["code"]}
            if display := text_of(coding.get("display")):
                out["display"] = display
            return out
    return None


def text_of(raw: object) -> str | None:
    """A non-blank string without surrounding blanks, else None."""
    return raw.strip() if isinstance(raw, str) and raw.strip() else None


def objects(raw: Json, key: str, where: str) -> list[Json]:
    """The list of JSON objects under `key` (empty when absent); `where` names the item."""
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise QuestionnaireImportError(f"{where}: {key} must be a list of objects")
    return value
