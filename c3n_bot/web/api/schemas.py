"""Response shapes of the JSON API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from c3n_bot.store.base import Channel, Condition, Relationship
from c3n_bot.store.models import Patient


class IdentityOut(BaseModel):
    """A contact's address on one channel."""

    channel: Channel
    address: str
    stopped: bool


class ContactOut(BaseModel):
    """A contact who reports for the patient."""

    id: uuid.UUID
    display_name: str
    relationship: Relationship
    language: str
    timezone: str
    identities: list[IdentityOut]


class PatientOut(BaseModel):
    """A patient with their contacts."""

    id: uuid.UUID
    center_id: uuid.UUID
    external_id: str
    given_name: str
    family_name: str
    birth_date: date
    condition: Condition
    language: str
    timezone: str
    created_at: datetime
    contacts: list[ContactOut]

    @classmethod
    def of(cls, patient: Patient) -> PatientOut:
        """Build from a loaded Patient row."""
        contacts = [
            ContactOut(
                id=link.contact.id,
                display_name=link.contact.display_name,
                relationship=link.relation,
                language=link.contact.language,
                timezone=link.contact.timezone,
                identities=[
                    IdentityOut(
                        channel=i.channel, address=i.address, stopped=i.stopped_at is not None
                    )
                    for i in link.contact.identities
                ],
            )
            for link in patient.links
        ]
        return cls(
            id=patient.id,
            center_id=patient.center_id,
            external_id=patient.external_id,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            condition=patient.condition,
            language=patient.language,
            timezone=patient.timezone,
            created_at=patient.created_at,
            contacts=contacts,
        )


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of results; pass `next` as `after` to get the following page."""

    items: list[T]
    next: str | None
