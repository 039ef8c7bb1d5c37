"""Submissions as FHIR R4: the resources, the transaction Bundle, and what they must hold."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from c3n_bot.engine import runner
from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.events import SubmissionCompleted, TextInput
from c3n_bot.engine.loader import parse_flow
from c3n_bot.registry.fhir_bundle import submission_resources, transaction_bundle
from c3n_bot.registry.fhir_ids import (
    OBSERVATION_IDENTIFIER_SYSTEM,
    REPLACES,
    SUBMISSION_IDENTIFIER_SYSTEM,
    SUBMISSION_STATUS_SYSTEM,
    entry_id,
    identifier_query,
)
from c3n_bot.registry.fhir_resources import CATEGORY_SYSTEM, ROLE_CODE_SYSTEM
from c3n_bot.registry.questionnaire import local_system
from c3n_bot.store.base import Relationship
from tests.engine.test_transcripts import SCRIPTS
from tests.engine.transcripts import (
    FIXED_NOW,
    Script,
    answer_items,
    context,
    events_of,
    load_flow,
    run_script,
)
from tests.registry.fhir_checks import check_bundle, make_record, of_type

LOINC = "http://loinc.org"
PHQ9_ANSWERS: dict[str, Any] = {f"q{n}": str(n % 4) for n in range(1, 10)} | {"q10": "1"}


def submitted(events: list[Any]) -> SubmissionCompleted:
    """The one SubmissionCompleted among a conversation's events."""
    (event,) = [e for e in events if isinstance(e, SubmissionCompleted)]
    return event


def script_bundle(script: Script, **record: Any) -> tuple[Flow, dict[str, Any]]:
    """Run a golden-transcript script through the engine and map what it submitted."""
    flow = load_flow(script.flow_id)
    event = submitted(events_of(run_script(script)))
    relationship = Relationship.PARENT if script.proxy else Relationship.SELF
    rec = make_record(
        flow, event.answers, event.scores, event.bands, relationship=relationship, **record
    )
    return flow, transaction_bundle(rec, flow)


def phq9_record(**record: Any) -> Any:
    """A completed PHQ-9 (total 13, moderate) as a record."""
    flow = load_flow("phq9")
    event = submitted(events_of(answer_items(flow, context("en"), PHQ9_ANSWERS)))
    return flow, make_record(flow, event.answers, event.scores, event.bands, **record)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_every_shipped_flow_maps_to_a_valid_bundle(script: Script) -> None:
    """All seven flows, in both languages and as a proxy, pass R4B and our own checks."""
    flow, bundle = script_bundle(script)
    check_bundle(bundle, flow)
    (response,) = of_type(bundle, "QuestionnaireResponse")
    assert response["status"] == "completed"
    assert len(response.get("item", [])) >= 1
    scored = [v for v in submitted(events_of(run_script(script))).scores.values() if v is not None]
    assert len(of_type(bundle, "Observation")) == len(scored)


def test_a_bundle_is_a_transaction_of_conditional_creates_with_stable_urls() -> None:
    flow, rec = phq9_record()
    bundle = transaction_bundle(rec, flow)
    assert bundle["type"] == "transaction"
    assert transaction_bundle(rec, flow) == bundle
    requests = [entry["request"] for entry in bundle["entry"]]
    assert {r["method"] for r in requests} == {"POST"}
    response_entry = bundle["entry"][1]
    assert response_entry["fullUrl"] == f"urn:uuid:{entry_id('QuestionnaireResponse', rec.id)}"
    assert response_entry["request"]["ifNoneExist"] == (
        f"identifier={SUBMISSION_IDENTIFIER_SYSTEM}|{rec.id}"
    )
    assert requests[0]["ifNoneExist"] == ("identifier=https://example.org/fhir/patient-id|ICN-0042")
    assert requests[2]["ifNoneExist"] == (
        f"identifier={OBSERVATION_IDENTIFIER_SYSTEM}|{rec.id}/total"
    )
    # Entries carry no ids: the server assigns them; the fullUrls stand in until then.
    assert all("id" not in entry["resource"] for entry in bundle["entry"])


def test_phq9_response_codes_answers_and_total_as_loinc() -> None:
    flow, rec = phq9_record()
    bundle = transaction_bundle(rec, flow)
    (patient,) = of_type(bundle, "Patient")
    (response,) = of_type(bundle, "QuestionnaireResponse")
    (observation,) = of_type(bundle, "Observation")
    patient_url = bundle["entry"][0]["fullUrl"]
    assert response["questionnaire"] == "https://c3n-bot.example/fhir/Questionnaire/phq9|1"
    assert response["subject"] == {"reference": patient_url}
    assert response["source"] == {"reference": patient_url}
    assert response["author"] == {"reference": "#bot"}
    assert response["contained"][0]["resourceType"] == "Device"
    assert response["authored"] == "2026-03-02T15:00:00+00:00"
    q2 = next(item for item in response["item"] if item["linkId"] == "q2")
    assert q2["answer"] == [
        {"valueCoding": {"system": LOINC, "code": "LA6570-1", "display": "More than half the days"}}
    ]
    assert observation["code"]["coding"][0] == {
        "system": LOINC,
        "code": "44261-6",
        "display": "PHQ-9 total score",
    }
    assert observation["category"][0]["coding"][0]["code"] == "survey"
    assert observation["category"][0]["coding"][0]["system"] == CATEGORY_SYSTEM
    assert observation["valueInteger"] == 13
    assert observation["effectiveDateTime"] == response["authored"]
    assert observation["derivedFrom"] == [{"reference": bundle["entry"][1]["fullUrl"]}]
    assert observation["interpretation"][0]["coding"][0]["code"] == "moderate"
    assert patient["identifier"][0] == {
        "system": "https://example.org/fhir/patient-id",
        "value": "ICN-0042",
    }
    assert patient["birthDate"] == "2012-05-17"


def test_gad7_total_is_loinc_70274_6() -> None:
    script = next(s for s in SCRIPTS if s.flow_id == "gad7")
    _, bundle = script_bundle(script)
    (observation,) = of_type(bundle, "Observation")
    assert observation["code"]["coding"][0]["code"] == "70274-6"
    assert observation["code"]["coding"][0]["system"] == LOINC


def test_a_score_without_a_code_uses_the_flows_local_code_system() -> None:
    flow = parse_flow(SMALL_FLOW, "small.yaml")
    answers = {
        "pain": {"code": "yes", "value": True, "display": "Yes"},
        "days": {"code": None, "value": 4, "display": "4"},
        "since": {"code": None, "value": "2026-02-20", "display": "2026-02-20"},
        "note": {"code": None, "value": "tired", "display": "tired"},
    }
    rec = make_record(flow, answers, {"days_x2": 8, "half": 2.5}, {})
    bundle = transaction_bundle(rec, flow)
    check_bundle(bundle, flow)
    first, second = of_type(bundle, "Observation")
    assert first["code"]["coding"][0] == {
        "system": local_system("small"),
        "code": "days_x2",
        "display": "Days doubled",
    }
    assert first["valueInteger"] == 8
    assert second["valueQuantity"]["value"] == 2.5
    (response,) = of_type(bundle, "QuestionnaireResponse")
    values = {item["linkId"]: item["answer"][0] for item in response["item"]}
    assert values == {
        "pain": {"valueBoolean": True},
        "days": {"valueInteger": 4},
        "since": {"valueDate": "2026-02-20"},
        "note": {"valueString": "tired"},
    }
    # No url in the flow: the canonical is ours, as the export would name it.
    assert response["questionnaire"] == "https://c3n-bot.example/fhir/Questionnaire/small|3"


@pytest.mark.parametrize(
    ("relationship", "code"), [(Relationship.PARENT, "PRN"), (Relationship.GUARDIAN, "GUARD")]
)
def test_a_parent_or_guardian_is_the_source_as_a_related_person(
    relationship: Relationship, code: str
) -> None:
    flow, rec = phq9_record(relationship=relationship)
    bundle = transaction_bundle(rec, flow)
    check_bundle(bundle, flow)
    (person,) = of_type(bundle, "RelatedPerson")
    (response,) = of_type(bundle, "QuestionnaireResponse")
    assert person["relationship"][0]["coding"][0] == {
        "system": ROLE_CODE_SYSTEM,
        "code": code,
        "display": relationship.value,
    }
    assert person["patient"] == {"reference": bundle["entry"][0]["fullUrl"]}
    assert response["source"] == {"reference": bundle["entry"][1]["fullUrl"]}
    assert response["subject"] == {"reference": bundle["entry"][0]["fullUrl"]}


@pytest.mark.parametrize("relationship", [Relationship.SELF, None])
def test_a_self_report_or_unknown_reporter_has_no_related_person(
    relationship: Relationship | None,
) -> None:
    flow, rec = phq9_record(relationship=relationship)
    bundle = transaction_bundle(rec, flow)
    assert of_type(bundle, "RelatedPerson") == []
    (response,) = of_type(bundle, "QuestionnaireResponse")
    assert response["source"] == {"reference": bundle["entry"][0]["fullUrl"]}


@pytest.mark.parametrize(
    ("close", "status"), [(runner.expire, "partial"), (runner.stop, "stopped")]
)
def test_a_partial_or_stopped_submission_is_stopped_and_keeps_our_status(
    close: Any, status: str
) -> None:
    flow = load_flow("phq9")
    ctx = context("en")
    state = runner.start(flow, ctx, FIXED_NOW).state
    for reply in ("1", "skip", "2"):
        state = runner.resume(flow, state, TextInput(reply), ctx, FIXED_NOW).state
    event = submitted(close(flow, state, ctx, FIXED_NOW).events)
    rec = make_record(flow, event.answers, event.scores, event.bands, status=status)
    bundle = transaction_bundle(rec, flow)
    check_bundle(bundle, flow)
    (response,) = of_type(bundle, "QuestionnaireResponse")
    assert response["status"] == "stopped"
    assert response["meta"]["tag"] == [{"system": SUBMISSION_STATUS_SYSTEM, "code": status}]
    # q2 was skipped: no item; with 7 of 9 missing the total is not computed: no Observation.
    assert [item["linkId"] for item in response["item"]] == ["q1", "q3"]
    assert of_type(bundle, "Observation") == []


def test_a_correction_is_amended_and_names_the_submission_it_replaces() -> None:
    original = uuid.UUID(int=99)
    flow, rec = phq9_record(version=2, replaces_id=original)
    bundle = transaction_bundle(rec, flow)
    check_bundle(bundle, flow)
    (response,) = of_type(bundle, "QuestionnaireResponse")
    (observation,) = of_type(bundle, "Observation")
    assert response["status"] == "amended"
    assert response["extension"] == [
        {
            "url": REPLACES,
            "valueReference": {
                "identifier": {"system": SUBMISSION_IDENTIFIER_SYSTEM, "value": str(original)}
            },
        }
    ]
    assert observation["status"] == "amended"
    assert response["identifier"]["value"] == str(rec.id)


def test_standalone_resources_have_stable_ids_and_relative_references() -> None:
    flow, rec = phq9_record(relationship=Relationship.PARENT)
    resources = submission_resources(rec, flow)
    assert [r["resourceType"] for r in resources] == [
        "Patient",
        "RelatedPerson",
        "QuestionnaireResponse",
        "Observation",
    ]
    patient, person, response, observation = resources
    assert patient["id"] == entry_id("Patient", rec.patient.id)
    assert response["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert response["source"] == {"reference": f"RelatedPerson/{person['id']}"}
    assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response['id']}"}]
    # The same patient is the same Patient resource in every submission.
    other = make_record(flow, rec.answers, rec.scores, rec.bands, status="stopped")
    assert submission_resources(other, flow)[0] == patient


def test_identifier_queries_escape_what_fhir_and_urls_give_meaning_to() -> None:
    assert identifier_query("urn:x", "a|b,c$d\\e") == "identifier=urn:x|a%5C|b%5C%2Cc%5C%24d%5C%5Ce"
    assert identifier_query("urn:x", "a&b=c d+") == "identifier=urn:x|a%26b%3Dc%20d%2B"


SMALL_FLOW = """\
id: small
version: "3"
kind: questionnaire
title: Small
items:
  - {id: pain, type: boolean, text: "Any pain?"}
  - {id: days, type: integer, min: 0, max: 7, text: "Days with pain?"}
  - {id: since, type: date, text: "Since when?"}
  - {id: note, type: text, required: false, text: "Anything else?"}
scores:
  - {id: days_x2, label: Days doubled, expr: days * 2}
  - {id: half, label: Half days, expr: days / 2}
"""
