"""Visit nudges on both databases: reminders and pre-visit prompts follow each appointment.

The fixed ``now`` is 2026-03-02 15:00Z (10:00 EST). US DST starts on 2026-03-08, so a visit on
Monday 2026-03-09 09:00 New York time (EDT, 13:00Z) has its 7-day reminder on 2026-03-02 at
18:00 EST (23:00Z) and its 1-day reminder on 2026-03-08 at 18:00 EDT (22:00Z).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import due, schedules, visits
from c3n_bot.service.context import Services
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.store.base import Channel, Condition, Purpose, Relationship
from c3n_bot.store.models import (
    Alert,
    Appointment,
    Center,
    Consent,
    Contact,
    DueWork,
    OutboxMessage,
    Patient,
)
from c3n_bot.store.models.conversations import Severity
from c3n_bot.store.models.scheduling import AppointmentStatus, DueStatus
from tests import builders
from tests.service.conftest import send

VISIT = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Monday 09:00 EDT
MOVED = datetime(2026, 3, 16, 13, 0, tzinfo=UTC)  # a week later, 09:00 EDT


def z(stamp: str) -> datetime:
    """A UTC instant in 2026 from ``"MM-DDTHH:MM"``."""
    return datetime.fromisoformat(f"2026-{stamp}+00:00")


def _center(db: Session, now: datetime) -> Center:
    center = builders.make_center(db, now=now)
    schedules.ensure_center_defaults(db, center_id=center.id, now=now)
    return center


def _patient(
    db: Session, now: datetime, *, condition: Condition = Condition.IBD, language: str = "en"
) -> Patient:
    center = _center(db, now)
    return builders.make_patient(db, now=now, center=center, condition=condition, language=language)


def _book(db: Session, patient: Patient, now: datetime, starts_at: datetime = VISIT) -> uuid.UUID:
    appointment = visits.create_appointment(
        db,
        patient_id=patient.id,
        starts_at=starts_at,
        location="Clinic B",
        external_id=None,
        allowed_centers={patient.center_id},
        now=now,
    )
    return appointment.id


def _work(db: Session, appointment_id: uuid.UUID) -> list[DueWork]:
    query = select(DueWork).where(DueWork.appointment_id == appointment_id)
    return list(db.scalars(query.order_by(DueWork.due_at, DueWork.key)))


def _plan(rows: list[DueWork]) -> list[tuple[str, str, datetime, DueStatus]]:
    return [(row.kind, row.flow_id, row.due_at, row.status) for row in rows]


def test_reminders_at_18_local_across_dst_and_pucai_before_an_ibd_visit(
    db: Session, now: datetime
) -> None:
    patient = _patient(db, now)
    appointment_id = _book(db, patient, now)
    rows = _work(db, appointment_id)
    assert _plan(rows) == [
        ("visit_reminder", "visit_reminder", z("03-02T23:00"), DueStatus.PENDING),
        ("pre_visit", "pucai", z("03-06T23:00"), DueStatus.PENDING),
        ("visit_reminder", "visit_reminder", z("03-08T22:00"), DueStatus.PENDING),
    ]
    seven, pucai, one = rows
    assert seven.key == f"appointment:{appointment_id}:reminder:7d:2026-03-09T13:00Z"
    assert one.key == f"appointment:{appointment_id}:reminder:1d:2026-03-09T13:00Z"
    assert pucai.key == f"appointment:{appointment_id}:pre:pucai:2026-03-09T13:00Z"
    assert seven.priority == schedules.PRIORITY["visit_reminder"] > pucai.priority
    assert seven.detail["values"] == {
        "appointment_id": str(appointment_id),
        "visit_time": "Monday, March 9 at 9:00 AM",
        "child": "Sam",
        "center": "Test Center",
    }
    appointment = db.get(Appointment, appointment_id)
    assert appointment is not None and appointment.status == AppointmentStatus.BOOKED


def test_spanish_visit_time_for_a_spanish_speaking_family(db: Session, now: datetime) -> None:
    patient = _patient(db, now, language="es")
    rows = _work(db, _book(db, patient, now))
    assert rows[0].detail["values"]["visit_time"] == "lunes 9 de marzo a las 9:00"


@pytest.mark.parametrize("condition", [Condition.CF, Condition.T1D])
def test_no_pucai_outside_ibd(db: Session, now: datetime, condition: Condition) -> None:
    patient = _patient(db, now, condition=condition)
    kinds = [row.kind for row in _work(db, _book(db, patient, now))]
    assert kinds == ["visit_reminder", "visit_reminder"]


def test_no_pre_visit_prompt_without_an_active_template(db: Session, now: datetime) -> None:
    patient = builders.make_patient(db, now=now)  # a center with no templates
    assert [row.kind for row in _work(db, _book(db, patient, now))] == ["visit_reminder"] * 2


def test_reminders_already_past_are_not_created(db: Session, now: datetime) -> None:
    patient = _patient(db, now)
    # Wednesday 2026-03-04 09:00 EST: the 7-day reminder and PUCAI (03-01) are already past.
    soon = _book(db, patient, now, datetime(2026, 3, 4, 14, 0, tzinfo=UTC))
    assert _plan(_work(db, soon)) == [
        ("visit_reminder", "visit_reminder", z("03-03T23:00"), DueStatus.PENDING)
    ]
    # Tomorrow 10:00: the 1-day reminder (today 18:00) is still ahead; nothing after the visit.
    tomorrow = _book(db, patient, now, datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    assert [row.due_at for row in _work(db, tomorrow)] == [z("03-02T23:00")]


@pytest.mark.parametrize(
    ("starts_at", "message"),
    [
        (datetime(2026, 3, 2, 15, 0, tzinfo=UTC), "is in the past"),
        (datetime(2026, 3, 9, 9, 0), "needs a UTC offset"),
    ],
)
def test_a_visit_needs_a_future_aware_start(
    db: Session, now: datetime, starts_at: datetime, message: str
) -> None:
    patient = _patient(db, now)
    with pytest.raises(InvalidInput) as raised:
        _book(db, patient, now, starts_at)
    assert (raised.value.field, raised.value.message) == ("starts_at", message)


def test_another_centers_patient_is_not_found(db: Session, now: datetime) -> None:
    patient = _patient(db, now)
    with pytest.raises(NotFound):
        visits.create_appointment(
            db, patient_id=patient.id, starts_at=VISIT, allowed_centers=set(), now=now
        )


def test_moving_cancels_old_work_and_plans_new(db: Session, now: datetime) -> None:
    patient = _patient(db, now)
    appointment_id = _book(db, patient, now)
    appointment = visits.get_appointment(
        db, appointment_id=appointment_id, allowed_centers={patient.center_id}
    )
    appointment.status = AppointmentStatus.CONFIRMED
    allowed = {patient.center_id}
    moved = visits.move_appointment(
        db, appointment_id=appointment_id, starts_at=MOVED, allowed_centers=allowed, now=now
    )
    assert moved and appointment.status == AppointmentStatus.BOOKED
    rows = _work(db, appointment_id)
    old = [row for row in rows if row.key.endswith("2026-03-09T13:00Z")]
    assert {(row.status, row.reason) for row in old} == {(DueStatus.CANCELLED, "visit moved")}
    new = [row for row in rows if row.key.endswith("2026-03-16T13:00Z")]
    assert _plan(new) == [
        ("visit_reminder", "visit_reminder", z("03-09T22:00"), DueStatus.PENDING),
        ("pre_visit", "pucai", z("03-13T22:00"), DueStatus.PENDING),
        ("visit_reminder", "visit_reminder", z("03-15T22:00"), DueStatus.PENDING),
    ]
    assert new[0].detail["values"]["visit_time"] == "Monday, March 16 at 9:00 AM"
    # The same time again changes nothing; moving back reopens the first rows (same keys).
    assert not visits.move_appointment(
        db, appointment_id=appointment_id, starts_at=MOVED, allowed_centers=allowed, now=now
    )
    assert len(_work(db, appointment_id)) == 6
    visits.move_appointment(
        db, appointment_id=appointment_id, starts_at=VISIT, allowed_centers=allowed, now=now
    )
    db.commit()
    rows = _work(db, appointment_id)
    assert len(rows) == 6
    assert [row.due_at for row in rows if row.status == DueStatus.PENDING] == [
        z("03-02T23:00"),
        z("03-06T23:00"),
        z("03-08T22:00"),
    ]


def test_cancelling_cancels_open_work_and_is_idempotent(db: Session, now: datetime) -> None:
    patient = _patient(db, now)
    appointment_id = _book(db, patient, now)
    allowed = {patient.center_id}
    assert visits.cancel_appointment(
        db, appointment_id=appointment_id, allowed_centers=allowed, now=now
    )
    assert not visits.cancel_appointment(
        db, appointment_id=appointment_id, allowed_centers=allowed, now=now
    )
    db.commit()
    rows = _work(db, appointment_id)
    assert {(r.status, r.reason, r.done_at) for r in rows} == {
        (DueStatus.CANCELLED, "visit cancelled", now)
    }
    with pytest.raises(Conflict):
        visits.move_appointment(
            db, appointment_id=appointment_id, starts_at=MOVED, allowed_centers=allowed, now=now
        )


def _reachable_family(db: Session, patient: Patient, now: datetime) -> Contact:
    parent = builders.make_contact(db, now=now)
    builders.make_identity(db, contact=parent, now=now, channel=Channel.WEB, address="web-parent")
    builders.link(db, contact=parent, patient=patient, relation=Relationship.PARENT)
    db.add(
        Consent(
            contact_id=parent.id,
            purpose=Purpose.VISIT_REMINDERS,
            granted=True,
            source="test",
            updated_at=now,
        )
    )
    db.commit()
    return parent


@pytest.mark.parametrize("answer", ["1", "2"])
def test_the_reminder_answer_confirms_or_asks_the_care_team_to_reschedule(
    db: Session, now: datetime, services: Services, answer: str
) -> None:
    patient = _patient(db, now)
    parent = _reachable_family(db, patient, now)
    appointment_id = _book(db, patient, now)
    db.commit()
    at = z("03-02T23:00")  # the 7-day reminder
    assert due.run_due(db, at, services) == 1
    db.commit()
    bodies = [row.body for row in db.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert "Reminder: Sam has a visit at Test Center on Monday, March 9 at 9:00 AM." in bodies[0]
    session_id = _work(db, appointment_id)[0].session_id
    assert session_id is not None
    send(db, services, parent.identities[0], answer, now=at)
    appointment = db.get(Appointment, appointment_id)
    assert appointment is not None
    alerts = list(db.scalars(select(Alert)))
    if answer == "1":
        assert appointment.status == AppointmentStatus.CONFIRMED
        assert alerts == []
    else:
        assert appointment.status == AppointmentStatus.RESCHEDULE_REQUESTED
        [alert] = alerts
        assert (alert.rule, alert.severity, alert.title) == (
            "visit_reschedule",
            Severity.REVIEW,
            "Family asked to reschedule the visit on 2026-03-09",
        )
        assert (alert.patient_id, alert.center_id, alert.session_id) == (
            patient.id,
            patient.center_id,
            session_id,
        )
    # The other reminders wait until staff move or cancel the visit.
    waiting = [row.status for row in _work(db, appointment_id)[1:]]
    assert waiting == [DueStatus.PENDING, DueStatus.PENDING]
