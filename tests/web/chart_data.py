"""A patient chart worth looking at: reports, a visit, a schedule, messages, an organiser."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from c3n_bot.service import schedules, staff, visits
from c3n_bot.store.base import Channel, Purpose, Role
from c3n_bot.store.models import (
    ChannelIdentity,
    Consent,
    ContactPatient,
    InboundMessage,
    OutboxMessage,
    Patient,
)
from c3n_bot.store.models.conversations import OutboxStatus
from tests.builders import make_submission
from tests.web.conftest import PASSWORD, World

ORGANISER = "org-a@test.org"
INBOUND_TEXT = "my tummy hurts since Tuesday"
OUTBOUND_TEXT = "How often have you had little interest in doing things?"


@dataclass
class Chart:
    """Ids of what was seeded for patient A (read them, never the expired seed objects)."""

    patient_id: uuid.UUID
    contact_id: uuid.UUID
    appointment_id: uuid.UUID


def phq9_answers(q1_code: str, q1_value: int, display: str) -> dict[str, Any]:
    """PHQ-9 answers with item 1 set (as the engine stores them: code, value, display)."""
    return {"q1": {"code": q1_code, "value": q1_value, "display": display}}


def seed_chart(db: Session, world: World, now: datetime) -> Chart:
    """Reports over three months, a booked visit, a schedule, messages and an organiser."""
    patient = db.get(Patient, world.patient_a.id)
    assert patient is not None
    contact_id = db.scalars(
        select(ContactPatient.contact_id).where(ContactPatient.patient_id == patient.id)
    ).one()
    identity = db.scalars(
        select(ChannelIdentity).where(ChannelIdentity.contact_id == contact_id)
    ).one()
    db.add(
        Consent(
            contact_id=contact_id,
            purpose=Purpose.PRO_REPORTS,
            granted=True,
            source="test",
            updated_at=now,
        )
    )
    # Stored as a Spanish-speaking parent answered; the page words it for the viewer.
    for days, total in ((60, 6), (30, 12), (1, 3)):
        make_submission(
            db,
            patient=patient,
            now=now - timedelta(days=days),
            flow_id="phq9",
            answers=phq9_answers("LA6569-3", 1, "Varios días"),
            scores={"total": total},
            bands={"total": "mild"},
        )
    make_submission(
        db,
        patient=patient,
        now=now - timedelta(days=2),
        flow_id="gad7",
        scores={"total": 11},
        bands={"total": "moderate"},
    )
    appointment = visits.create_appointment(
        db,
        patient_id=patient.id,
        starts_at=now + timedelta(days=10),
        location="Clinic B",
        allowed_centers={patient.center_id},
        now=now,
    )
    schedules.create_schedule(
        db, patient=patient, flow_id="phq9", rrule="FREQ=MONTHLY", at_local="18:00", now=now
    )
    _messages(db, identity, contact_id, now)
    staff.create_user(
        db,
        email=ORGANISER,
        name="organiser",
        password=PASSWORD,
        role=Role.ORGANISER,
        center_ids=[world.center_a.id],
        now=now,
    )
    db.commit()
    return Chart(patient_id=patient.id, contact_id=contact_id, appointment_id=appointment.id)


def _messages(db: Session, identity: ChannelIdentity, contact_id: uuid.UUID, now: datetime) -> None:
    db.add(
        InboundMessage(
            channel=Channel.SMS,
            provider_message_id="SM-test-1",
            identity_id=identity.id,
            body=INBOUND_TEXT,
            received_at=now - timedelta(hours=3),
            handled_at=now - timedelta(hours=3),
        )
    )
    db.add(
        OutboxMessage(
            channel=Channel.SMS,
            address=identity.address,
            identity_id=identity.id,
            contact_id=contact_id,
            kind="prompt",
            body=OUTBOUND_TEXT,
            status=OutboxStatus.DELIVERED,
            next_attempt_at=now - timedelta(hours=4),
            created_at=now - timedelta(hours=4),
        )
    )


def read(db: Session, query: Select[Any]) -> Sequence[Any]:
    """Rows of a query, ending the read at once (on SQLite a transaction holds the write lock
    the app needs)."""
    db.expire_all()
    try:
        return db.scalars(query).all()
    finally:
        db.commit()
