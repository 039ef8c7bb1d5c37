"""A patient's chart, section by section: contacts and consent, visits, schedules.

Each section is one query (the patient and their contacts come from
:func:`c3n_bot.service.patients.get_patient`), so the page costs a fixed number of round trips
however long the patient has been followed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Integer, bindparam, or_, select
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
from c3n_bot.store.models.scheduling import AppointmentStatus, DueStatus

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


class Visit(NamedTuple):
    """An appointment as the chart shows it."""

    id: uuid.UUID
    starts_at: datetime
    location: str | None
    status: AppointmentStatus


class VisitWork(NamedTuple):
    """A reminder or pre-visit prompt of an appointment, and what became of it."""

    kind: str
    due_at: datetime
    status: DueStatus
    reason: str | None


@dataclass(frozen=True)
class VisitCard:
    """An appointment with its reminders and pre-visit prompts, whatever became of them."""

    appointment: Visit
    work: list[VisitWork] = field(default_factory=list)


class ScheduleRule(NamedTuple):
    """A schedule as the chart shows it."""

    flow_id: str
    rrule: str
    active: bool


@dataclass(frozen=True)
class ScheduleLine:
    """A schedule and its next slot; None while it or the patient's schedules are paused."""

    schedule: ScheduleRule
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
        rows = db.execute(_CONSENTS, {"contact_ids": ids})
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
    cards: dict[uuid.UUID, VisitCard] = {}
    for row in db.connection().execute(_VISITS, {"patient_id": patient_id, "limit": limit}):
        card = cards.get(row[0])
        if card is None:
            card = cards[row[0]] = VisitCard(Visit(*row[:4]))
        if row[4] is not None:  # an appointment without reminders has no work
            card.work.append(VisitWork(*row[4:]))
    return list(cards.values())


def schedules(db: Session, patient: Patient) -> list[ScheduleLine]:
    """The patient's schedules, oldest first, with the next slot the clock will act on."""
    paused = patient.schedules_paused
    lines = []
    for row in db.connection().execute(_SCHEDULES, {"patient_id": patient.id}):
        rule = ScheduleRule(*row[:3])
        lines.append(ScheduleLine(rule, row[3] if rule.active and not paused else None))
    return lines


# Built once with bound values: building and caching a statement of this size cost more Python
# time per chart than the database spent running it. Visits and schedules are read as columns
# (Core, on the session's connection): the chart only shows them, and loading ORM objects, or
# even the ORM's handling of a statement that loads none, cost more than the query.
_APPOINTMENTS, _DUE_WORK, _SCHEDULE = (
    Appointment.__table__.c,
    DueWork.__table__.c,
    Schedule.__table__.c,
)
_CONSENTS = select(Consent.contact_id, Consent.purpose, Consent.granted).where(
    Consent.contact_id.in_(bindparam("contact_ids", expanding=True))
)
_LATEST_VISITS = (
    select(_APPOINTMENTS.id)
    .where(_APPOINTMENTS.patient_id == bindparam("patient_id"))
    .order_by(_APPOINTMENTS.starts_at.desc())
    .limit(bindparam("limit", type_=Integer))
)
_VISITS = (
    select(
        *(_APPOINTMENTS[name] for name in Visit._fields),
        *(_DUE_WORK[name] for name in VisitWork._fields),
    )
    .select_from(
        Appointment.__table__.outerjoin(
            DueWork.__table__,
            (_DUE_WORK.appointment_id == _APPOINTMENTS.id)
            # Not IN (...): SQLAlchemy would expand that list again on every execution.
            & or_(*(_DUE_WORK.kind == kind for kind in VISIT_WORK)),
        )
    )
    .where(_APPOINTMENTS.id.in_(_LATEST_VISITS.scalar_subquery()))
    .order_by(_APPOINTMENTS.starts_at.desc(), _APPOINTMENTS.id, _DUE_WORK.due_at, _DUE_WORK.key)
)
_SCHEDULES = (
    select(*(_SCHEDULE[name] for name in ScheduleRule._fields), _SCHEDULE.next_due_at)
    .where(_SCHEDULE.patient_id == bindparam("patient_id"))
    .order_by(_SCHEDULE.created_at, _SCHEDULE.flow_id, _SCHEDULE.id)
)
