"""Service fixtures: the shipped flows and catalogs, a small family, and a way to talk as them.

Every message goes through the real ``handle_inbound`` and is committed on its own, as the web
layer and the channel webhooks do (one transaction per inbound message).
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.config import Settings, data_dir
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, Outcome, handle_inbound
from c3n_bot.service.workers import build_services
from c3n_bot.store.base import Channel, Condition, Relationship
from c3n_bot.store.models import (
    Center,
    ChannelIdentity,
    Contact,
    ContactPatient,
    Network,
    OutboxMessage,
    Patient,
)

CRISIS_EN = "Call or text 988 (Suicide & Crisis Lifeline), any time, free."
CRISIS_ES = "Llame o envíe un mensaje de texto al 988 (Línea de Crisis), gratis, a toda hora."
NETWORK_NAME = "Bridgewater Care Network"
CENTER_NAME = "Bridgewater Children's"
TEEN_PHONE = "+16175550111"
TEEN_WEB = "web-maya"
PARENT_CHAT = "70001"
PARENT_WEB = "web-laura"

_message_ids = itertools.count(1)


@dataclass
class Family:
    """A center, a teen who reports for herself, and a parent reporting for two children."""

    center: Center
    teen: Patient
    teen_contact: Contact
    teen_sms: ChannelIdentity
    teen_web: ChannelIdentity
    older_child: Patient  # Leo, born first: listed first when the parent is asked
    younger_child: Patient  # Nora
    parent: Contact
    parent_telegram: ChannelIdentity
    parent_web: ChannelIdentity


@pytest.fixture
def services(settings: Settings) -> Services:
    """The deployment's services on the shipped flows, with every channel able to send."""
    assert settings.flows_path() == data_dir("flows")
    return dataclasses.replace(build_services(settings), channels=frozenset(Channel))


def _patient(db: Session, center: Center, name: str, born: date, now: datetime) -> Patient:
    patient = Patient(
        center=center,
        external_id=f"BW-{name.upper()}",
        given_name=name,
        family_name="Okafor",
        birth_date=born,
        condition=Condition.IBD,
        language="en",
        timezone=center.timezone,
        created_at=now,
    )
    db.add(patient)
    return patient


def _contact(db: Session, name: str, now: datetime, language: str = "en") -> Contact:
    contact = Contact(
        display_name=name, language=language, timezone="America/New_York", created_at=now
    )
    db.add(contact)
    return contact


def _identity(
    db: Session, contact: Contact, channel: Channel, address: str, now: datetime
) -> ChannelIdentity:
    identity = ChannelIdentity(contact=contact, channel=channel, address=address, created_at=now)
    db.add(identity)
    return identity


@pytest.fixture
def family(db: Session, now: datetime) -> Family:
    """Seed the family (committed) every service test talks as."""
    network = Network(
        name=NETWORK_NAME, slug="bridgewater", identifier_system="urn:bw", created_at=now
    )
    center = Center(
        network=network,
        name=CENTER_NAME,
        slug="bwc",
        timezone="America/New_York",
        crisis_resources={"en": CRISIS_EN, "es": CRISIS_ES},
        created_at=now,
    )
    db.add_all([network, center])
    teen = _patient(db, center, "Maya", date(2010, 4, 2), now)
    older = _patient(db, center, "Leo", date(2013, 9, 20), now)
    younger = _patient(db, center, "Nora", date(2016, 1, 11), now)
    teen_contact = _contact(db, "Maya Okafor", now)
    parent = _contact(db, "Laura Okafor", now)
    db.add_all(
        [
            ContactPatient(contact=teen_contact, patient=teen, relation=Relationship.SELF),
            ContactPatient(contact=parent, patient=older, relation=Relationship.PARENT),
            ContactPatient(contact=parent, patient=younger, relation=Relationship.PARENT),
        ]
    )
    family = Family(
        center=center,
        teen=teen,
        teen_contact=teen_contact,
        teen_sms=_identity(db, teen_contact, Channel.SMS, TEEN_PHONE, now),
        teen_web=_identity(db, teen_contact, Channel.WEB, TEEN_WEB, now),
        older_child=older,
        younger_child=younger,
        parent=parent,
        parent_telegram=_identity(db, parent, Channel.TELEGRAM, PARENT_CHAT, now),
        parent_web=_identity(db, parent, Channel.WEB, PARENT_WEB, now),
    )
    db.commit()
    return family


def new_message_id() -> str:
    """A provider message id never used before in this run."""
    return f"msg-{next(_message_ids)}-{uuid.uuid4().hex[:8]}"


def send(
    db: Session,
    services: Services,
    identity: ChannelIdentity,
    text: str = "",
    *,
    now: datetime,
    choice: tuple[str, str] | None = None,
    message_id: str | None = None,
) -> Outcome:
    """Hand one message to the service and commit its one transaction."""
    inbound = Inbound(
        channel=identity.channel,
        address=identity.address,
        provider_message_id=message_id or new_message_id(),
        text=text,
        choice=choice,
    )
    outcome = handle_inbound(db, inbound=inbound, services=services, now=now)
    db.commit()
    return outcome


def outbox(db: Session, identity: ChannelIdentity | None = None) -> list[OutboxMessage]:
    """Outbox rows (of one identity, or all), in the order they were written."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if identity is not None:
        query = query.where(OutboxMessage.identity_id == identity.id)
    return list(db.scalars(query))


def bodies_after(db: Session, identity: ChannelIdentity, last_id: int) -> list[str]:
    """Bodies of the rows written for an identity after row `last_id`."""
    return [row.body for row in outbox(db, identity) if row.id > last_id]


def last_outbox_id(db: Session) -> int:
    """The highest outbox row id so far (0 when empty)."""
    rows = outbox(db)
    return rows[-1].id if rows else 0
