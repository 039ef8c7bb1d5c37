"""The people and scores of a submission as FHIR R4 Patient, RelatedPerson and Observation."""

from __future__ import annotations

from typing import Any

from c3n_bot.engine.definitions import Coding, Flow, Score
from c3n_bot.registry.fhir_ids import (
    OBSERVATION_IDENTIFIER_SYSTEM,
    PATIENT_IDENTIFIER_SYSTEM,
    RELATED_PERSON_IDENTIFIER_SYSTEM,
    observation_identifier,
)
from c3n_bot.registry.questionnaire import C3N_FHIR_BASE, local_system
from c3n_bot.registry.questionnaire_export import coding_json
from c3n_bot.registry.submission_record import RecordReporter, SubmissionRecord
from c3n_bot.store.base import Relationship

ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
_ROLES = {
    Relationship.PARENT: ("PRN", "parent"),
    Relationship.GUARDIAN: ("GUARD", "guardian"),
}
_SURVEY = {"coding": [{"system": CATEGORY_SYSTEM, "code": "survey", "display": "Survey"}]}


def patient(record: SubmissionRecord, resource_id: str) -> dict[str, Any]:
    """The subject: the network's identifier first (what a retry matches on), then ours."""
    person = record.patient
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [
            {"system": person.identifier_system, "value": person.external_id},
            {"system": PATIENT_IDENTIFIER_SYSTEM, "value": str(person.id)},
        ],
        "name": [{"family": person.family_name, "given": [person.given_name]}],
        "birthDate": person.birth_date.isoformat(),
    }


def related_person(
    record: SubmissionRecord, reporter: RecordReporter, resource_id: str, patient_ref: str
) -> dict[str, Any]:
    """The parent or guardian who answered; one per (contact, patient) on the server."""
    assert reporter.relationship is not None
    code, display = _ROLES[reporter.relationship]
    value = f"{reporter.contact_id}/{record.patient.id}"
    return {
        "resourceType": "RelatedPerson",
        "id": resource_id,
        "identifier": [{"system": RELATED_PERSON_IDENTIFIER_SYSTEM, "value": value}],
        "patient": {"reference": patient_ref},
        "relationship": [
            {"coding": [{"system": ROLE_CODE_SYSTEM, "code": code, "display": display}]}
        ],
        "name": [{"text": reporter.name}],
    }


def scored(flow: Flow, record: SubmissionRecord) -> list[Score]:
    """The flow's scores that the submission computed (a score left null has none)."""
    return [s for s in flow.scores if _is_number(record.scores.get(s.id))]


def observation(
    record: SubmissionRecord,
    flow: Flow,
    score: Score,
    *,
    resource_id: str,
    patient_ref: str,
    response_ref: str,
) -> dict[str, Any]:
    """One computed score, derived from the QuestionnaireResponse, with its band if any."""
    value = record.scores[score.id]
    code = score.code or _local_code(flow, score)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id,
        "identifier": [
            {
                "system": OBSERVATION_IDENTIFIER_SYSTEM,
                "value": observation_identifier(record.id, score.id),
            }
        ],
        "status": "amended" if record.version > 1 else "final",
        "category": [_SURVEY],
        "code": {"coding": [coding_json(code)], "text": score.label},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": record.authored_at.isoformat(),
        **_value(value),
        "derivedFrom": [{"reference": response_ref}],
    }
    band = _band(flow, score, record.bands.get(score.id))
    if band is not None:
        resource["interpretation"] = [band]
    return resource


def band_system(flow_id: str, score_id: str) -> str:
    """The code system of one score's bands (minimal, mild, ...)."""
    return f"{C3N_FHIR_BASE}/CodeSystem/{flow_id}-{score_id}-band"


def _local_code(flow: Flow, score: Score) -> Coding:
    return Coding(local_system(flow.id), score.id, score.label)


def _value(value: float) -> dict[str, Any]:
    if isinstance(value, int):
        return {"valueInteger": value}
    if value.is_integer():
        return {"valueInteger": int(value)}
    return {"valueQuantity": {"value": value, "system": UCUM, "code": "{score}"}}


def _band(flow: Flow, score: Score, code: object) -> dict[str, Any] | None:
    band = next((b for b in score.bands if b.code == code), None)
    if band is None:
        return None
    coding = {"system": band_system(flow.id, score.id), "code": band.code, "display": band.label}
    return {"coding": [coding], "text": band.label}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
