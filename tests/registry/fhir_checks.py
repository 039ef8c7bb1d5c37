"""Checks a produced submission Bundle must pass: R4B structure, then what R4B does not check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from c3n_bot.engine.definitions import Flow
from c3n_bot.registry.fhir_ids import questionnaire_canonical
from c3n_bot.registry.questionnaire_export import questionnaire_from_flow
from c3n_bot.registry.submission_record import RecordPatient, RecordReporter, SubmissionRecord
from c3n_bot.store.base import Relationship

AUTHORED = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
# The answer key each Questionnaire item type allows in a QuestionnaireResponse.
ANSWER_KEYS = {
    "choice": "valueCoding",
    "integer": "valueInteger",
    "boolean": "valueBoolean",
    "text": "valueString",
    "date": "valueDate",
}


def make_record(
    flow: Flow,
    answers: dict[str, Any],
    scores: dict[str, Any],
    bands: dict[str, Any],
    *,
    status: str = "completed",
    relationship: Relationship | None = Relationship.SELF,
    version: int = 1,
    replaces_id: uuid.UUID | None = None,
) -> SubmissionRecord:
    """A record as the database would hold it, without a database."""
    center_id = uuid.UUID(int=7)
    patient = RecordPatient(
        id=uuid.UUID(int=1),
        external_id="ICN-0042",
        given_name="Ana",
        family_name="Rivera",
        birth_date=date(2012, 5, 17),
        center_id=center_id,
        identifier_system="https://example.org/fhir/patient-id",
    )
    reporter = None
    if relationship is not None:
        name = "Ana Rivera" if relationship == Relationship.SELF else "Alex Rivera"
        reporter = RecordReporter(uuid.UUID(int=2), relationship, name)
    return SubmissionRecord(
        id=uuid.uuid5(uuid.NAMESPACE_OID, f"{flow.id}/{status}/{version}"),
        flow_id=flow.id,
        flow_version=flow.version,
        status=status,
        answers=answers,
        scores=scores,
        bands=bands,
        channel="telegram",
        started_at=AUTHORED,
        authored_at=AUTHORED,
        version=version,
        replaces_id=replaces_id,
        center_id=center_id,
        patient=patient,
        reporter=reporter,
    )


def check_bundle(bundle: dict[str, Any], flow: Flow) -> None:
    """Valid R4B, every reference resolved inside it, and every answer true to the Questionnaire."""
    Bundle.model_validate(bundle)
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert len(full_urls) == len(bundle["entry"])
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["request"]["url"] == resource["resourceType"]
        assert entry["request"]["ifNoneExist"].startswith("identifier=")
        for reference in references(resource):
            assert reference in full_urls or reference == "#bot", reference
        if resource["resourceType"] == "QuestionnaireResponse":
            check_response(resource, flow)


def check_response(response: dict[str, Any], flow: Flow) -> None:
    """Every linkId is an item of the exported Questionnaire; every code one of its options."""
    questionnaire = questionnaire_from_flow(flow)
    items = {item["linkId"]: item for item in questionnaire["item"]}
    canonical = f"{questionnaire.get('url')}|{questionnaire['version']}"
    if "url" in questionnaire:  # a flow without a url gets ours (reminders, consent, ...)
        assert response["questionnaire"] == canonical
    assert response["questionnaire"] == questionnaire_canonical(flow, questionnaire["version"])
    for answered in response.get("item", []):
        item = items[answered["linkId"]]
        (answer,) = answered["answer"]
        (key,) = answer
        assert key == ANSWER_KEYS[item["type"]], (answered["linkId"], key)
        if key == "valueCoding":
            options = [option["valueCoding"] for option in item["answerOption"]]
            assert answer[key] in options, (answered["linkId"], answer[key])


def references(value: Any) -> Iterator[str]:
    """Every `reference` string anywhere inside a resource."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def of_type(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The resources of one type in a Bundle, in entry order."""
    entries = bundle["entry"]
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == resource_type]
