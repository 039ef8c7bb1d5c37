"""Segments: who a broadcast reaches, as one query that counts, samples and sends.

A segment is a set of filters on the links between contacts and the patients they report for:
condition, center, role (the patient themself, or a parent or guardian), the contact's
language, the patient's age band, a granted consent, and past participation (a confirmed YES
to an activity that has already started). A contact is in the segment when any of their links
matches; every query counts a contact once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session

from c3n_bot.service.errors import InvalidInput
from c3n_bot.service.patients import Language
from c3n_bot.store.base import Condition, Purpose, Relationship
from c3n_bot.store.models import Activity, Consent, Contact, ContactPatient, Patient, Rsvp
from c3n_bot.store.models.community import RsvpResponse

Role = Literal["patient", "parent"]
# The consents a community message may ask for.
CommunityPurpose = Literal["codesign_invitations", "community_broadcasts"]
SAMPLE_SIZE = 10
ROLE_RELATIONS = {
    "patient": (Relationship.SELF,),
    "parent": (Relationship.PARENT, Relationship.GUARDIAN),
}


class Segment(BaseModel):
    """The filters of a segment; an empty list means "any"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: list[Condition] = Field(default_factory=list)
    centers: list[uuid.UUID] = Field(default_factory=list)
    roles: list[Role] = Field(default_factory=list)
    languages: list[Language] = Field(default_factory=list)
    age_min: int | None = Field(default=None, ge=0, le=120)
    age_max: int | None = Field(default=None, ge=0, le=120)
    consent: CommunityPurpose | None = None
    # True: only past participants; False: only those who never took part; None: anyone.
    participated: bool | None = None

    @model_validator(mode="after")
    def _band(self) -> Segment:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError("age_min is above age_max")
        return self

    def scoped(self, allowed: Collection[uuid.UUID]) -> Segment:
        """The segment limited to the caller's centers (all of them when it names none)."""
        if not set(self.centers) <= set(allowed):
            raise InvalidInput("segment.centers", "a center outside your centers")
        centers = self.centers or sorted(allowed, key=str)
        return self.model_copy(update={"centers": centers})

    def stored(self) -> dict[str, Any]:
        """The segment as JSON data for a column."""
        return self.model_dump(mode="json")


def members(segment: Segment, *columns: Any, now: datetime) -> Select[Any]:
    """A query of `columns` over every contact-patient link in a (scoped) segment."""
    query = (
        select(*columns)
        .select_from(ContactPatient)
        .join(Contact, Contact.id == ContactPatient.contact_id)
        .join(Patient, Patient.id == ContactPatient.patient_id)
    )
    return query.where(*_conditions(segment, now))


def count(db: Session, segment: Segment, *, now: datetime) -> int:
    """How many contacts the segment holds."""
    contacts = members(segment, ContactPatient.contact_id, now=now).distinct().subquery()
    return db.scalar(select(func.count()).select_from(contacts)) or 0


def sample(db: Session, segment: Segment, *, now: datetime, size: int = SAMPLE_SIZE) -> list[str]:
    """Display names of a few contacts of the segment (never anything clinical)."""
    ids = members(segment, ContactPatient.contact_id, now=now)
    query = (
        select(Contact.display_name)
        .where(Contact.id.in_(ids))
        .order_by(Contact.display_name, Contact.id)
        .limit(size)
    )
    return list(db.scalars(query))


def _conditions(segment: Segment, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Patient.center_id.in_(segment.centers)]
    if segment.conditions:
        where.append(Patient.condition.in_(segment.conditions))
    if segment.roles:
        relations = [r for role in segment.roles for r in ROLE_RELATIONS[role]]
        where.append(ContactPatient.relation.in_(relations))
    if segment.languages:
        where.append(Contact.language.in_(segment.languages))
    # Ages on the UTC date: a birthday counts from the day it is in UTC.
    today = now.date()
    if segment.age_min is not None:
        where.append(Patient.birth_date <= years_before(today, segment.age_min))
    if segment.age_max is not None:
        where.append(Patient.birth_date > years_before(today, segment.age_max + 1))
    if segment.consent is not None:
        where.append(_consented(Purpose(segment.consent)))
    if segment.participated is not None:
        took_part = _took_part(now)
        where.append(took_part if segment.participated else ~took_part)
    return where


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February becomes the 28th in common years).

    Someone born on or before it is at least `years` old on `day`, as timing.age_on counts.
    """
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _consented(purpose: Purpose) -> ColumnElement[bool]:
    return exists(
        select(Consent.id).where(
            Consent.contact_id == Contact.id,
            Consent.purpose == purpose,
            Consent.granted.is_(True),
        )
    )


def _took_part(now: datetime) -> ColumnElement[bool]:
    return exists(
        select(Rsvp.id)
        .join(Activity, Activity.id == Rsvp.activity_id)
        .where(
            Rsvp.contact_id == Contact.id,
            Rsvp.response == RsvpResponse.YES,
            Rsvp.waitlisted.is_(False),
            Activity.starts_at < now,
        )
    )
