"""A patient's chart, section by section: contacts and consent, visits, schedules.

Each section is one query (the patient and their contacts come from
:func:`c3n_bot.service.patients.get_patient`), so the page costs a fixed number of round trips
however long the patient has been followed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.base import Purpose, Relationship
from c3n_bot.store.models import (
    Appointment,
    ChannelIdentity,
    Consent,
    Contact,
    DueWork,
    Patient,
    Schedule,
)

VISIT_WORK = ("visit_reminder", "pre_visit")
VISITS_SHOWN = 20


@dataclass(frozen=True)
class ContactCard:
    """A contact who reports for the patient, their channels, and their answer per purpose."""

    contact: Contact
    relation: Relationship
    identities: list[ChannelIdentity]
    # None: never asked for this purpose.
    consents: dict[Purpose, bool | None]


@dataclass(frozen=True)
class VisitCard:
    """An appointment with its reminders and pre-visit prompts, whatever became of them."""

    appointment: Appointment
    work: list[DueWork] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleLine:
    """A schedule and its next slot; None while it or the patient's schedules are paused."""

    schedule: Schedule
    next_due_at: datetime | None


def contacts(db: Session, patient: Patient) -> list[ContactCard]:
    """The patient's contacts (self first) with channels and consents, in one query."""
    links = sorted(
        patient.links,
        key=lambda link: (link.relation != Relationship.SELF, link.contact.display_name),
    )
    ids = [link.contact_id for link in links]
    granted: dict[tuple[uuid.UUID, Purpose], bool] = {}
    if ids:
        rows = db.execute(
            select(Consent.contact_id, Consent.purpose, Consent.granted).where(
                Consent.contact_id.in_(ids)
            )
        )
        granted = {(row.contact_id, row.purpose): row.granted for row in rows}
    return [
        ContactCard(
            contact=link.contact,
            relation=link.relation,
            identities=sorted(
                link.contact.identities, key=lambda i: (i.channel.value, i.created_at)
            ),
            consents={purpose: granted.get((link.contact_id, purpose)) for purpose in Purpose},
        )
        for link in links
    ]


def visits(db: Session, patient_id: uuid.UUID, *, limit: int = VISITS_SHOWN) -> list[VisitCard]:
    """The latest appointments, newest first, each with its reminder and pre-visit rows."""
    latest = (
        select(Appointment.id)
        .where(Appointment.patient_id == patient_id)
        .order_by(Appointment.starts_at.desc())
        .limit(limit)
    )
    rows = db.execute(
        select(Appointment, DueWork)
        .outerjoin(
            DueWork,
            (DueWork.appointment_id == Appointment.id) & DueWork.kind.in_(VISIT_WORK),
        )
        .where(Appointment.id.in_(latest.scalar_subquery()))
        .order_by(Appointment.starts_at.desc(), Appointment.id, DueWork.due_at, DueWork.key)
    )
    cards: dict[uuid.UUID, VisitCard] = {}
    for appointment, work in rows:
        card = cards.setdefault(appointment.id, VisitCard(appointment))
        if work is not None:
            card.work.append(work)
    return list(cards.values())


def schedules(db: Session, patient: Patient) -> list[ScheduleLine]:
    """The patient's schedules, oldest first, with the next slot the clock will act on."""
    rows = db.scalars(
        select(Schedule)
        .where(Schedule.patient_id == patient.id)
        .order_by(Schedule.created_at, Schedule.flow_id, Schedule.id)
    )
    return [
        ScheduleLine(
            schedule=row,
            next_due_at=row.next_due_at if row.active and not patient.schedules_paused else None,
        )
        for row in rows
    ]
