"""Submission records: one streamed query joins the patient, the reporter and how they relate."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from c3n_bot.registry.submission_record import load_record, load_records, records_query
from c3n_bot.store.base import Relationship
from c3n_bot.store.models import Submission
from tests.builders import link, make_contact, make_patient, make_submission


def test_a_record_holds_the_submission_patient_and_proxy_reporter(
    db: Session, now: datetime
) -> None:
    patient = make_patient(db, now=now)
    parent = make_contact(db, now=now)
    link(db, contact=parent, patient=patient, relation=Relationship.GUARDIAN)
    answers = {"q1": {"code": "LA6569-3", "value": 1, "display": "Several days"}}
    row = make_submission(
        db, patient=patient, reporter=parent, now=now, answers=answers, scores={"total": 9}
    )
    db.commit()

    record = load_record(db, row.id)

    assert record is not None
    assert (record.id, record.flow_id, record.status, record.channel) == (
        row.id,
        "phq9",
        "completed",
        "telegram",
    )
    assert record.answers == answers and record.scores == {"total": 9}
    assert record.authored_at == now and record.started_at == now - timedelta(minutes=5)
    assert (record.version, record.replaces_id, record.center_id) == (1, None, patient.center_id)
    assert record.patient.external_id == patient.external_id
    assert record.patient.birth_date == date(2012, 5, 17)
    assert record.patient.identifier_system == "https://example.org/fhir/patient-id"
    assert record.reporter is not None
    assert record.reporter.relationship == Relationship.GUARDIAN
    assert record.reporter.is_proxy
    assert record.reporter.name == "Alex Rivera"


def test_a_self_report_an_unlinked_contact_and_no_reporter(db: Session, now: datetime) -> None:
    patient = make_patient(db, now=now)
    themself, stranger = make_contact(db, now=now), make_contact(db, now=now)
    link(db, contact=themself, patient=patient, relation=Relationship.SELF)
    # The stranger reports for another child: that link must not leak into this record.
    link(db, contact=stranger, patient=make_patient(db, now=now))
    ids = [
        make_submission(db, patient=patient, reporter=who, now=now).id
        for who in (themself, stranger, None)
    ]
    db.commit()

    records = {r.id: r for r in load_records(db, ids)}

    own, unlinked, nobody = (records[i] for i in ids)
    assert own.reporter is not None and own.reporter.relationship == Relationship.SELF
    assert not own.reporter.is_proxy
    assert unlinked.reporter is not None and unlinked.reporter.relationship is None
    assert nobody.reporter is None


def test_a_query_streams_in_batches_in_its_own_order_with_one_statement(
    db: Session, now: datetime
) -> None:
    patient = make_patient(db, now=now)
    parent = make_contact(db, now=now)
    link(db, contact=parent, patient=patient)
    for minute in range(7):
        make_submission(db, patient=patient, reporter=parent, now=now + timedelta(minutes=minute))
    make_submission(db, patient=make_patient(db, now=now), now=now)
    db.commit()
    statements: list[str] = []
    event.listen(db.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))

    query = (
        records_query()
        .where(Submission.patient_id == patient.id)
        .order_by(Submission.authored_at.desc())
    )
    records = list(load_records(db, query, batch_size=2))

    assert [r.authored_at for r in records] == [
        now + timedelta(minutes=m) for m in range(6, -1, -1)
    ]
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 1  # the joins, not one query per row
    assert all(r.reporter is not None and r.reporter.is_proxy for r in records)
    assert len(list(load_records(db))) == 8
    assert load_record(db, parent.id) is None
