"""A submission's answers as an R4 QuestionnaireResponse of the exported Questionnaire."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from c3n_bot.engine.definitions import Flow, Item, ItemType
from c3n_bot.registry.fhir_ids import (
    DEVICE_IDENTIFIER_SYSTEM,
    REPLACES,
    SUBMISSION_IDENTIFIER_SYSTEM,
    SUBMISSION_STATUS_SYSTEM,
    questionnaire_canonical,
)
from c3n_bot.registry.questionnaire import local_system
from c3n_bot.registry.questionnaire_export import option_coding
from c3n_bot.registry.submission_record import SubmissionRecord

# The bot is the author of every response, contained in it under this id.
BOT_DEVICE = {
    "resourceType": "Device",
    "id": "bot",
    "identifier": [{"system": DEVICE_IDENTIFIER_SYSTEM, "value": "c3n-bot"}],
    "deviceName": [{"name": "c3n-bot", "type": "user-friendly-name"}],
}
_VALUE_KEYS = {
    ItemType.INTEGER: "valueInteger",
    ItemType.BOOLEAN: "valueBoolean",
    ItemType.TEXT: "valueString",
    ItemType.DATE: "valueDate",
}


def response_status(record: SubmissionRecord) -> str:
    """FHIR status of a submission.

    Partial (expired) and stopped submissions are closed for good, so both are `stopped`
    (`in-progress` would promise more answers); our own status stays in a meta.tag. A
    completed correction (version > 1) is `amended`.
    """
    if record.status != "completed":
        return "stopped"
    return "amended" if record.version > 1 else "completed"


def questionnaire_response(
    record: SubmissionRecord,
    flow: Flow,
    *,
    resource_id: str,
    patient_ref: str,
    source_ref: str,
) -> dict[str, Any]:
    """The response: who answered, when, and one item per answered question (skips omitted)."""
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id,
        "meta": {"tag": [{"system": SUBMISSION_STATUS_SYSTEM, "code": record.status}]},
        "contained": [BOT_DEVICE],
    }
    if record.replaces_id is not None:
        replaced = {"system": SUBMISSION_IDENTIFIER_SYSTEM, "value": str(record.replaces_id)}
        resource["extension"] = [{"url": REPLACES, "valueReference": {"identifier": replaced}}]
    resource |= {
        "identifier": {"system": SUBMISSION_IDENTIFIER_SYSTEM, "value": str(record.id)},
        "questionnaire": questionnaire_canonical(flow, record.flow_version),
        "status": response_status(record),
        "subject": {"reference": patient_ref},
        "authored": record.authored_at.isoformat(),
        "author": {"reference": "#bot"},
        "source": {"reference": source_ref},
    }
    items = [_item(flow, item, record.answers[item.id]) for item in _answered(flow, record)]
    if items:
        resource["item"] = items
    return resource


def _answered(flow: Flow, record: SubmissionRecord) -> list[Item]:
    return [
        item
        for item in flow.questions()
        if (record.answers.get(item.id) or {}).get("value") is not None
    ]


def _item(flow: Flow, item: Item, answer: Mapping[str, Any]) -> dict[str, Any]:
    return {"linkId": item.id, "text": item.text, "answer": [_answer(flow, item, answer)]}


def _answer(flow: Flow, item: Item, answer: Mapping[str, Any]) -> dict[str, Any]:
    if item.type == ItemType.CHOICE:
        code = str(answer.get("code"))
        option = item.option(code)
        if option is not None:
            return {"valueCoding": option_coding(flow, option)}
        # An option since removed from the flow: keep the answer in the local system.
        return {"valueCoding": {"system": local_system(flow.id), "code": code}}
    return {_VALUE_KEYS[item.type]: answer["value"]}
