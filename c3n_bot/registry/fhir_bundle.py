"""A submission as FHIR R4 resources, and as the transaction Bundle pushed to each sink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from c3n_bot.engine.definitions import Flow
from c3n_bot.registry import fhir_resources
from c3n_bot.registry.fhir_ids import (
    Reference,
    bundle_reference,
    entry_id,
    identifier_query,
    relative_reference,
)
from c3n_bot.registry.fhir_response import questionnaire_response
from c3n_bot.registry.submission_record import SubmissionRecord


@dataclass(frozen=True)
class _Entry:
    resource: dict[str, Any]
    # The identifier a retried push is matched on, so it creates nothing twice.
    system: str
    value: str


def submission_resources(record: SubmissionRecord, flow: Flow) -> list[dict[str, Any]]:
    """Patient, RelatedPerson (parent proxy only), QuestionnaireResponse, an Observation per score.

    Ids are stable uuid5s (the same record always maps to the same ids: the Patient's and
    RelatedPerson's from the people, the others' from the submission), and references are
    relative (`Patient/<id>`), ready for NDJSON or an API response.
    """
    return [entry.resource for entry in _entries(record, flow, relative_reference)]


def transaction_bundle(record: SubmissionRecord, flow: Flow) -> dict[str, Any]:
    """The transaction that creates the submission on a FHIR server, at most once.

    Each entry is a conditional create (POST with `ifNoneExist` on the resource's
    identifier), and entries reference one another by `urn:uuid` fullUrls, which the
    server rewrites to the ids it assigns or finds.
    """
    entries = []
    for entry in _entries(record, flow, bundle_reference):
        resource = dict(entry.resource)
        resource_id = resource.pop("id")
        resource_type = resource["resourceType"]
        entries.append(
            {
                "fullUrl": bundle_reference(resource_type, resource_id),
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": resource_type,
                    "ifNoneExist": identifier_query(entry.system, entry.value),
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _entries(record: SubmissionRecord, flow: Flow, ref: Reference) -> list[_Entry]:
    patient_id = entry_id("Patient", record.patient.id)
    patient_ref = ref("Patient", patient_id)
    entries = [_identified(fhir_resources.patient(record, patient_id))]
    source_ref = patient_ref
    reporter = record.reporter
    if reporter is not None and reporter.is_proxy:
        person_id = entry_id("RelatedPerson", reporter.contact_id, record.patient.id)
        person = fhir_resources.related_person(record, reporter, person_id, patient_ref)
        entries.append(_identified(person))
        source_ref = ref("RelatedPerson", person_id)
    response_id = entry_id("QuestionnaireResponse", record.id)
    response = questionnaire_response(
        record, flow, resource_id=response_id, patient_ref=patient_ref, source_ref=source_ref
    )
    entries.append(_identified(response))
    response_ref = ref("QuestionnaireResponse", response_id)
    for score in fhir_resources.scored(flow, record):
        observation = fhir_resources.observation(
            record,
            flow,
            score,
            resource_id=entry_id("Observation", record.id, score.id),
            patient_ref=patient_ref,
            response_ref=response_ref,
        )
        entries.append(_identified(observation))
    return entries


def _identified(resource: dict[str, Any]) -> _Entry:
    identifier = resource["identifier"]
    # QuestionnaireResponse.identifier is a single Identifier; the others are lists.
    first = identifier if isinstance(identifier, dict) else identifier[0]
    return _Entry(resource, first["system"], first["value"])
