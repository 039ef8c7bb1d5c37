"""Alerts: acknowledged once with who, when and a note; overdue urgent ones escalate once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from c3n_bot.service import alerts
from c3n_bot.service.audit import Actor
from c3n_bot.service.clock import Clock
from c3n_bot.service.context import Services
from c3n_bot.service.errors import NotFound
from c3n_bot.service.workers import periodic_tasks
from c3n_bot.store.base import Channel, Role
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import Alert, AuditEvent, Center, OutboxMessage, Patient, StaffUser
from c3n_bot.store.models.conversations import Severity
from tests.builders import make_alert, make_center, make_patient

ON_CALL = "+16175550190"
ACTOR = Actor(type="staff", id="tester", ip="127.0.0.1")


def _staff(db: Session, now: datetime) -> StaffUser:
    user = StaffUser(
        email=f"{uuid.uuid4().hex[:8]}@test.org",
        name="Dr. Test",
        password_hash="x",
        role=Role.CLINICIAN,
        created_at=now,
    )
    db.add(user)
    db.flush()
    return user


def _patient(db: Session, now: datetime, *, on_call: bool = True, lang: str = "en") -> Patient:
    center = make_center(db, now=now)
    if on_call:
        center.on_call_channel, center.on_call_address = Channel.SMS, ON_CALL
        center.on_call_language = lang
    return make_patient(db, now=now, center=center)


def test_acknowledge_records_who_when_note_and_an_audit_event(db: Session, now: datetime) -> None:
    patient = _patient(db, now)
    alert = make_alert(db, patient=patient, now=now)
    user = _staff(db, now)
    later = now + timedelta(minutes=20)

    done = alerts.acknowledge(
        db,
        alert_id=alert.id,
        staff_id=user.id,
        allowed_centers={patient.center_id},
        note="  Called the family; safety plan in place.  ",
        actor=ACTOR,
        now=later,
    )
    db.commit()

    assert done
    db.refresh(alert)
    assert alert.acknowledged_by == user.id
    assert alert.acknowledged_at == later
    assert alert.note == "Called the family; safety plan in place."
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge")).one()
    assert (event.patient_id, event.center_id, event.subject) == (
        patient.id,
        patient.center_id,
        str(alert.id),
    )
    assert event.actor_id == "tester"
    assert event.detail == {"rule": "phq9_item9", "severity": "urgent", "late": False}


def test_the_first_acknowledgement_stands(db: Session, now: datetime) -> None:
    patient = _patient(db, now)
    alert = make_alert(db, patient=patient, now=now)
    first, second = _staff(db, now), _staff(db, now)
    for user, note in ((first, "first"), (second, "second")):
        alerts.acknowledge(
            db,
            alert_id=alert.id,
            staff_id=user.id,
            allowed_centers={patient.center_id},
            note=note,
            actor=ACTOR,
            now=now,
        )
    db.commit()
    db.refresh(alert)
    assert (alert.acknowledged_by, alert.note) == (first.id, "first")
    assert len(db.scalars(select(AuditEvent)).all()) == 1


def test_an_alert_of_another_center_is_not_found(db: Session, now: datetime) -> None:
    alert = make_alert(db, patient=_patient(db, now), now=now)
    other = make_center(db, now=now)
    for alert_id in (alert.id, uuid.uuid4()):
        with pytest.raises(NotFound):
            alerts.acknowledge(
                db,
                alert_id=alert_id,
                staff_id=_staff(db, now).id,
                allowed_centers={other.id},
                note="",
                actor=ACTOR,
                now=now,
            )


def _tick(engine: Engine, services: Services, at: datetime) -> int:
    """One clock tick at a fixed time, through the clock's real task list."""
    clock = Clock(make_session_factory(engine), periodic_tasks(services), lambda: at)
    return clock.tick()["escalate_alerts"]


def test_an_overdue_urgent_alert_escalates_exactly_once(
    db: Session, engine: Engine, services: Services, now: datetime
) -> None:
    patient = _patient(db, now)
    alert = make_alert(db, patient=patient, now=now)
    db.commit()

    assert _tick(engine, services, now + timedelta(minutes=59)) == 0
    assert _tick(engine, services, now + timedelta(hours=1)) == 1
    assert _tick(engine, services, now + timedelta(hours=2)) == 0

    db.expire_all()
    assert db.get(Alert, alert.id).escalated_at == now + timedelta(hours=1)  # type: ignore[union-attr]
    (page,) = db.scalars(select(OutboxMessage)).all()
    assert (page.channel, page.address, page.kind) == (Channel.SMS, ON_CALL, "escalation")
    assert page.dedupe_key == f"escalation:{alert.id}"
    center = db.get(Center, patient.center_id)
    assert center is not None
    # Due 16:00 UTC is 11:00 in New York (EST on 2 March); no name or answer in the page.
    assert page.body == (
        f"c3n-bot: an urgent alert at {center.name} was not acknowledged by 11:00 EST "
        f"(phq9_item9, ref {alert.id.hex[:8]}). Please open the care-team inbox now."
    )
    assert patient.family_name not in page.body


def test_the_page_is_written_in_the_on_call_language(
    db: Session, engine: Engine, services: Services, now: datetime
) -> None:
    make_alert(db, patient=_patient(db, now, lang="es"), now=now)
    db.commit()
    assert _tick(engine, services, now + timedelta(hours=1)) == 1
    page = db.scalars(select(OutboxMessage)).one()
    assert page.body.startswith("c3n-bot: una alerta urgente")


def test_acknowledged_review_and_future_alerts_do_not_escalate(
    db: Session, engine: Engine, services: Services, now: datetime
) -> None:
    patient = _patient(db, now)
    acknowledged = make_alert(db, patient=patient, now=now)
    acknowledged.acknowledged_at = now + timedelta(minutes=5)
    make_alert(db, patient=patient, now=now, severity=Severity.REVIEW, due_in=timedelta(0))
    make_alert(db, patient=patient, now=now, due_in=timedelta(hours=3))
    db.commit()
    assert _tick(engine, services, now + timedelta(hours=2)) == 0
    assert db.scalars(select(OutboxMessage)).all() == []


def test_without_an_on_call_contact_the_alert_still_turns_escalated(
    db: Session, engine: Engine, services: Services, now: datetime
) -> None:
    alert = make_alert(db, patient=_patient(db, now, on_call=False), now=now)
    db.commit()
    assert _tick(engine, services, now + timedelta(hours=1)) == 1
    db.expire_all()
    assert db.get(Alert, alert.id).escalated_at is not None  # type: ignore[union-attr]
    assert db.scalars(select(OutboxMessage)).all() == []


def test_an_existing_page_is_not_sent_twice(db: Session, services: Services, now: datetime) -> None:
    # Belt and braces: were escalated_at ever cleared, the dedupe key still holds.
    alert = make_alert(db, patient=_patient(db, now), now=now)
    assert alerts.escalate_overdue(db, now + timedelta(hours=1), services) == 1
    alert.escalated_at = None
    db.flush()
    assert alerts.escalate_overdue(db, now + timedelta(hours=2), services) == 1
    db.commit()
    assert len(db.scalars(select(OutboxMessage)).all()) == 1
