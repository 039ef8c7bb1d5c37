"""Patients and their contacts: create, list and read, scoped to the caller's centers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from c3n_bot.service import validation
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.store.base import Channel, Condition, Relationship
from c3n_bot.store.models import (
    Center,
    ChannelIdentity,
    Contact,
    ContactPatient,
    Patient,
)

Phone = Annotated[str, AfterValidator(validation.e164)]
TimeZone = Annotated[str, AfterValidator(validation.timezone)]
Language = Annotated[str, AfterValidator(validation.language)]


class ContactIn(BaseModel):
    """A person who will message for the patient."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=200)
    relationship: Relationship
    language: Language | None = None
    timezone: TimeZone | None = None
    phone: Phone | None = None
    telegram_chat_id: str | None = Field(default=None, pattern=r"^-?\d{1,20}$")


class PatientIn(BaseModel):
    """A new patient with the contacts who report for them."""

    model_config = ConfigDict(extra="forbid")

    center_id: uuid.UUID
    external_id: str = Field(min_length=1, max_length=64)
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    birth_date: date
    condition: Condition
    language: Language
    timezone: TimeZone | None = None
    contacts: list[ContactIn] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _one_self(self) -> PatientIn:
        if sum(c.relationship == Relationship.SELF for c in self.contacts) > 1:
            raise ValueError("at most one contact may be the patient themself")
        return self


def create_patient(
    db: Session, *, data: PatientIn, allowed_centers: set[uuid.UUID], now: datetime
) -> Patient:
    """Create a patient and their contacts in the caller's transaction."""
    if data.birth_date > now.date():
        raise InvalidInput("birth_date", "is in the future")
    center = db.get(Center, data.center_id)
    if center is None or center.id not in allowed_centers:
        raise InvalidInput("center_id", "unknown center")
    duplicate = select(Patient.id).where(
        Patient.center_id == center.id, Patient.external_id == data.external_id
    )
    if db.scalar(duplicate) is not None:
        raise Conflict("a patient with this external_id exists in the center")
    patient = Patient(
        center_id=center.id,
        external_id=data.external_id,
        given_name=data.given_name,
        family_name=data.family_name,
        birth_date=data.birth_date,
        condition=data.condition,
        language=data.language,
        timezone=data.timezone or center.timezone,
        created_at=now,
    )
    db.add(patient)
    for item in data.contacts:
        add_contact(db, patient=patient, data=item, now=now)
    db.flush()
    return patient


def add_contact(db: Session, *, patient: Patient, data: ContactIn, now: datetime) -> Contact:
    """Link a contact to a patient, reusing the contact that already owns the phone or chat."""
    addresses = [(Channel.SMS, data.phone), (Channel.TELEGRAM, data.telegram_chat_id)]
    contact = None
    for channel, address in addresses:
        if address is not None:
            identity = db.scalar(
                select(ChannelIdentity).where(
                    ChannelIdentity.channel == channel, ChannelIdentity.address == address
                )
            )
            if identity is not None:
                contact = identity.contact
    if contact is None:
        contact = Contact(
            display_name=data.display_name,
            language=data.language or patient.language,
            timezone=data.timezone or patient.timezone,
            created_at=now,
        )
        db.add(contact)
    for channel, address in addresses:
        if address is not None and not any(
            i.channel == channel and i.address == address for i in contact.identities
        ):
            identity = ChannelIdentity(channel=channel, address=address, created_at=now)
            contact.identities.append(identity)
    db.add(ContactPatient(contact=contact, patient=patient, relation=data.relationship))
    return contact


def list_patients(
    db: Session,
    *,
    allowed_centers: set[uuid.UUID],
    center_id: uuid.UUID | None = None,
    limit: int = 50,
    after: uuid.UUID | None = None,
) -> Sequence[Patient]:
    """Patients in the caller's centers, ordered by id for cursor pagination."""
    centers = allowed_centers & {center_id} if center_id else allowed_centers
    query = (
        select(Patient)
        .where(Patient.center_id.in_(centers))
        .options(_with_contacts())
        .order_by(Patient.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Patient.id > after)
    return db.scalars(query).all()


def search_patients(
    db: Session,
    *,
    allowed_centers: set[uuid.UUID],
    text: str = "",
    offset: int = 0,
    limit: int = 50,
) -> Sequence[Patient]:
    """Patients of the caller's centers by family and given name; `text` matches an external
    id exactly or the start of a family or given name (any case)."""
    query = select(Patient).where(Patient.center_id.in_(allowed_centers))
    text = text.strip()
    if text:
        query = query.where(
            (Patient.external_id == text)
            | Patient.family_name.istartswith(text, autoescape=True)
            | Patient.given_name.istartswith(text, autoescape=True)
        )
    query = query.order_by(Patient.family_name, Patient.given_name, Patient.id)
    return db.scalars(query.offset(offset).limit(limit)).all()


def get_patient(db: Session, *, patient_id: uuid.UUID, allowed_centers: set[uuid.UUID]) -> Patient:
    """One patient with contacts; NotFound when absent or in another center."""
    patient = db.scalars(_PATIENT, {"patient_id": patient_id}).unique().one_or_none()
    if patient is None or patient.center_id not in allowed_centers:
        raise NotFound("patient")
    return patient


def _joined_contacts() -> LoaderOption:
    return (
        joinedload(Patient.links).joinedload(ContactPatient.contact).joinedload(Contact.identities)
    )


# Every chart and patient action reads it: built once (building it cost more than running it).
# One round trip: a single patient's few contacts are cheaper joined than fetched apart.
_PATIENT = select(Patient).where(Patient.id == bindparam("patient_id")).options(_joined_contacts())


def _with_contacts() -> LoaderOption:
    return (
        selectinload(Patient.links)
        .selectinload(ContactPatient.contact)
        .selectinload(Contact.identities)
    )
