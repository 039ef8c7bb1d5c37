"""Submissions for the registry: queued once per FHIR sink, corrected by a new version."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.engine.loader import parse_flow
from c3n_bot.registry.fhir_bundle import transaction_bundle
from c3n_bot.registry.submission_record import load_record
from c3n_bot.service import audit
from c3n_bot.service.completion import previous_scores
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import start_flow
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.service.submissions import correct, recorded_answer
from c3n_bot.store.models import AuditEvent, RegistryDelivery, Submission
from c3n_bot.store.models.registry import DeliveryStatus
from tests.engine.transcripts import load_flow
from tests.registry.fhir_checks import check_bundle, of_type
from tests.service.conftest import Family, send

SINKS = ("alpha", "beta")
CLINICIAN = audit.Actor(type="staff", id="clinician-1")
# q1..q9 = 3, 3, 3, 3, 3, 3, 3, 3, 2 (total 26, severe); q10 somewhat difficult.
PHQ9 = ["3"] * 8 + ["2", "1"]


@pytest.fixture
def sink_services(services: Services) -> Services:
    """The deployment's services with two FHIR sinks configured."""
    return dataclasses.replace(services, sinks=SINKS)


def report(
    db: Session, services: Services, family: Family, now: datetime, replies: list[str] = PHQ9
) -> Submission:
    """The parent reports a PHQ-9 for the older child by Telegram; the submission."""
    result = start_flow(
        db,
        contact_id=family.parent.id,
        flow_id="phq9",
        patient_id=family.older_child.id,
        services=services,
        now=now,
    )
    db.commit()
    assert result.status == "started"
    for minute, reply in enumerate(replies, start=1):
        send(db, services, family.parent_telegram, reply, now=now + timedelta(minutes=minute))
    return db.scalars(select(Submission)).one()


def deliveries(db: Session) -> list[RegistryDelivery]:
    """Every delivery row, by sink then submission version."""
    return list(db.scalars(select(RegistryDelivery).order_by(RegistryDelivery.id)))


def test_a_recorded_submission_is_queued_once_for_every_sink(
    db: Session, sink_services: Services, family: Family, now: datetime
) -> None:
    submission = report(db, sink_services, family, now)

    rows = deliveries(db)
    assert [(r.sink, r.submission_id) for r in rows] == [(s, submission.id) for s in SINKS]
    assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {
        (DeliveryStatus.PENDING, 0, submission.authored_at)
    }


def test_without_sinks_nothing_is_queued(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    report(db, services, family, now)
    assert deliveries(db) == []


def test_a_proxy_report_maps_to_fhir_with_the_parent_as_source(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    submission = report(db, services, family, now)
    record = load_record(db, submission.id)
    assert record is not None
    flow = services.flows.get("phq9")

    bundle = transaction_bundle(record, flow)

    check_bundle(bundle, flow)
    (person,) = of_type(bundle, "RelatedPerson")
    (patient,) = of_type(bundle, "Patient")
    assert person["name"] == [{"text": "Laura Okafor"}]
    assert patient["identifier"][0]["system"] == "urn:bw"
    assert of_type(bundle, "Observation")[0]["valueInteger"] == 26


def test_a_correction_is_a_new_rescored_version_and_the_original_stays(
    db: Session, sink_services: Services, family: Family, now: datetime
) -> None:
    original = report(db, sink_services, family, now)
    before = load_record(db, original.id)
    assert before is not None and before.version == 1
    later = now + timedelta(days=1)

    corrected = correct(
        db,
        submission_id=original.id,
        changes={"q9": "LA6568-5", "q1": "LA6569-3"},
        services=sink_services,
        actor=CLINICIAN,
        now=later,
    )
    db.commit()

    assert (corrected.version, corrected.replaces_id) == (2, original.id)
    assert corrected.id != original.id and corrected.session_id is None
    assert corrected.answers["q9"] == {"code": "LA6568-5", "value": 0, "display": "Not at all"}
    assert corrected.answers["q1"]["value"] == 1
    assert corrected.scores == {"total": 22} and corrected.bands == {"total": "severe"}
    assert corrected.authored_at == original.authored_at
    assert corrected.reporter_contact_id == family.parent.id
    assert load_record(db, original.id) == before
    queued = [(r.sink, r.submission_id, r.next_attempt_at) for r in deliveries(db)]
    assert queued[2:] == [(sink, corrected.id, later) for sink in SINKS]
    event = db.scalars(select(AuditEvent)).one()
    assert (event.action, event.actor_id, event.subject) == (
        "submission.corrected",
        "clinician-1",
        str(corrected.id),
    )
    assert event.detail == {"replaces": str(original.id), "items": ["q1", "q9"]}
    record = load_record(db, corrected.id)
    assert record is not None
    bundle = transaction_bundle(record, sink_services.flows.get("phq9"))
    assert of_type(bundle, "QuestionnaireResponse")[0]["status"] == "amended"


def test_clearing_answers_rescores_with_the_flows_missing_item_rule(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    original = report(db, services, family, now)
    one_missing = correct(
        db,
        submission_id=original.id,
        changes={"q9": None},
        services=services,
        actor=CLINICIAN,
        now=now,
    )
    three_missing = correct(
        db,
        submission_id=one_missing.id,
        changes={"q1": None, "q2": None},
        services=services,
        actor=CLINICIAN,
        now=now,
    )
    assert "q9" not in one_missing.answers
    assert one_missing.scores == {"total": 27}  # 24 over 8 items, prorated to 9
    assert three_missing.version == 3 and three_missing.scores == {"total": None}
    assert three_missing.bands == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"q1": "LA6572-7"}, "q1"),  # an option of another item
        ({"q1": 2}, "q1"),
        ({"nope": "x"}, "nope"),
    ],
)
def test_a_wrong_answer_is_refused_by_item(
    db: Session,
    services: Services,
    family: Family,
    now: datetime,
    changes: dict[str, Any],
    field: str,
) -> None:
    original = report(db, services, family, now)
    with pytest.raises(InvalidInput) as caught:
        correct(
            db,
            submission_id=original.id,
            changes=changes,
            services=services,
            actor=CLINICIAN,
            now=now,
        )
    assert caught.value.field == field


def test_only_the_newest_version_of_an_existing_submission_is_corrected(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    original = report(db, services, family, now)
    arguments: dict[str, Any] = {"services": services, "actor": CLINICIAN, "now": now}
    correct(db, submission_id=original.id, changes={"q2": "LA6568-5"}, **arguments)
    with pytest.raises(Conflict):
        correct(db, submission_id=original.id, changes={"q2": "LA6569-3"}, **arguments)
    with pytest.raises(NotFound):
        correct(db, submission_id=uuid.uuid4(), changes={}, **arguments)


DATED = parse_flow(
    'id: dated\nversion: "1"\nkind: questionnaire\ntitle: Dated\n'
    'items: [{id: since, type: date, text: "Since when?"}]\n',
    "dated.yaml",
)


@pytest.mark.parametrize(
    ("item_id", "value", "expected"),
    [
        ("wellbeing", "so-so", {"code": "so-so", "value": 2, "display": "So-so"}),
        ("pain_days", 3, {"code": None, "value": 3, "display": "3"}),
        ("blood", False, {"code": "no", "value": False, "display": "No"}),
        ("note", " tired ", {"code": None, "value": "tired", "display": "tired"}),
    ],
)
def test_a_corrected_answer_is_recorded_as_the_engine_records_one(
    item_id: str, value: Any, expected: dict[str, Any]
) -> None:
    assert recorded_answer(load_flow("ibd_checkin").item(item_id), value) == expected


def test_a_corrected_date_is_stored_in_iso_form() -> None:
    answer = recorded_answer(DATED.item("since"), "20260220")
    assert answer == {"code": None, "value": "2026-02-20", "display": "2026-02-20"}


@pytest.mark.parametrize(
    ("item_id", "value"),
    [("wellbeing", "meh"), ("pain_days", 8), ("pain_days", True), ("blood", "yes"), ("note", " ")],
)
def test_an_answer_the_item_cannot_take_is_refused(item_id: str, value: Any) -> None:
    with pytest.raises(InvalidInput):
        recorded_answer(load_flow("ibd_checkin").item(item_id), value)
    with pytest.raises(InvalidInput):
        recorded_answer(DATED.item("since"), "20 Feb")


def test_the_next_report_reads_prev_scores_from_the_newest_version(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    original = report(db, services, family, now)
    correct(
        db,
        submission_id=original.id,
        changes={"q1": "LA6568-5"},
        services=services,
        actor=CLINICIAN,
        now=now,
    )
    assert previous_scores(db, family.older_child.id, "phq9") == {"total": 23}
