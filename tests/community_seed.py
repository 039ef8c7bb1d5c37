"""Many families for broadcast tests and the benchmark, written with Core executemany.

Contact `i` gets its traits from `i` alone, so a test knows what must become of each one
without asking the code under test:

- channel: Telegram for 6 in 10, SMS for 3 in 10, none for the rest (``i % 10 == 9``);
- stopped: every channel of ``i % 20 == 1`` (STOP overrides everything);
- consent to the purpose: refused by ``i % 25 == 2``, never asked of ``i % 25 == 7``;
- timezone: Asia/Tokyo (in quiet hours at 15:00 UTC) for ``i % 8 == 5``, else New York;
- language: Spanish for ``i % 3 == 0``; a parent (not the patient) for ``i % 2 == 0``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from c3n_bot.service import staff
from c3n_bot.store.base import Channel, Condition, Purpose, Relationship, Role
from c3n_bot.store.models import ChannelIdentity, Consent, Contact, ContactPatient, Patient
from c3n_bot.store.models.community import RecipientOutcome
from tests.builders import make_center, make_network

CHUNK = 5_000
TELEGRAM_BASE = 900_000_000
QUIET_ZONE = "Asia/Tokyo"
HOME_ZONE = "America/New_York"


@dataclass(frozen=True)
class Seeded:
    """One seeded contact and what must happen to it."""

    index: int
    contact_id: uuid.UUID
    channel: Channel | None
    address: str | None
    stopped: bool
    consented: bool
    timezone: str
    language: str

    def expected(self, quiet: bool) -> RecipientOutcome:
        """The outcome the documented rule gives (no channel, stopped, no consent, quiet)."""
        if self.channel is None:
            return RecipientOutcome.NO_CHANNEL
        if self.stopped:
            return RecipientOutcome.STOPPED
        if not self.consented:
            return RecipientOutcome.NO_CONSENT
        return RecipientOutcome.DEFERRED if quiet else RecipientOutcome.QUEUED


def traits(i: int) -> tuple[Channel | None, bool, bool | None, str, str]:
    """(channel, stopped, consent granted or None when never asked, timezone, language)."""
    channel = None if i % 10 == 9 else Channel.SMS if i % 10 >= 6 else Channel.TELEGRAM
    consent = False if i % 25 == 2 else None if i % 25 == 7 else True
    zone = QUIET_ZONE if i % 8 == 5 else HOME_ZONE
    return channel, i % 20 == 1, consent, zone, "es" if i % 3 == 0 else "en"


def address(channel: Channel, i: int) -> str:
    """A unique chat id or E.164 number for contact `i`."""
    return str(TELEGRAM_BASE + i) if channel == Channel.TELEGRAM else f"+1617{i:07d}"


Traits = Callable[[int], tuple[Channel | None, bool, bool | None, str, str]]


def reachable(i: int) -> tuple[Channel | None, bool, bool | None, str, str]:
    """Traits of a family every broadcast reaches at once: Telegram for 2 in 3, else SMS."""
    return Channel.SMS if i % 3 == 2 else Channel.TELEGRAM, False, True, HOME_ZONE, "en"


def seed_contacts(
    db: Session,
    *,
    center_id: uuid.UUID,
    count: int,
    now: datetime,
    purpose: Purpose = Purpose.COMMUNITY_BROADCASTS,
    traits_of: Traits = traits,
) -> list[Seeded]:
    """`count` patients, each with one contact as described above; committed by the caller."""
    seeded: list[Seeded] = []
    for start in range(0, count, CHUNK):
        tables: dict[Any, list[dict[str, Any]]] = {
            Contact: [], Patient: [], ContactPatient: [], ChannelIdentity: [], Consent: []
        }  # fmt: skip
        for i in range(start, min(count, start + CHUNK)):
            seeded.append(_one(tables, i, traits_of(i), center_id, now, purpose))
        for model, rows in tables.items():
            if rows:
                db.execute(insert(model), rows)
    return seeded


def _one(
    tables: dict[Any, list[dict[str, Any]]],
    i: int,
    chosen: tuple[Channel | None, bool, bool | None, str, str],
    center_id: uuid.UUID,
    now: datetime,
    purpose: Purpose,
) -> Seeded:
    channel, stopped, consent, zone, lang = chosen
    contact_id, patient_id = uuid.uuid4(), uuid.uuid4()
    tables[Contact].append(
        {"id": contact_id, "display_name": f"Family{i} Member", "language": lang,
         "timezone": zone, "created_at": now}
    )  # fmt: skip
    tables[Patient].append(
        {"id": patient_id, "center_id": center_id, "external_id": f"S{i}", "given_name": "Pat",
         "family_name": f"Family{i}", "birth_date": date(2010 + i % 8, 1 + i % 12, 1),
         "condition": Condition.IBD, "language": lang, "timezone": zone, "created_at": now}
    )  # fmt: skip
    relation = Relationship.PARENT if i % 2 == 0 else Relationship.SELF
    tables[ContactPatient].append(
        {"contact_id": contact_id, "patient_id": patient_id, "relation": relation}
    )
    where = address(channel, i) if channel is not None else None
    if channel is not None:
        tables[ChannelIdentity].append(
            {"id": uuid.uuid4(), "contact_id": contact_id, "channel": channel, "address": where,
             "stopped_at": now if stopped else None, "created_at": now}
        )  # fmt: skip
    if consent is not None:
        tables[Consent].append(
            {"id": uuid.uuid4(), "contact_id": contact_id, "purpose": purpose,
             "granted": consent, "source": "seed", "updated_at": now}
        )  # fmt: skip
    return Seeded(i, contact_id, channel, where, stopped, bool(consent), zone, lang)


def included(seeded: list[Seeded]) -> Iterator[Seeded]:
    """The contacts a broadcast must reach."""
    return (s for s in seeded if s.expected(quiet=False) == RecipientOutcome.QUEUED)


@dataclass(frozen=True)
class Organisers:
    """A network with two centers and an organiser of the first (ids only)."""

    network_id: uuid.UUID
    center_id: uuid.UUID
    other_center_id: uuid.UUID
    organiser_id: uuid.UUID
    organiser_email: str


def seed_organisers(
    db: Session, now: datetime, *, password: str = "organiser pass 1"
) -> Organisers:
    """The network, its centers (New York, Los Angeles) and an organiser of the first."""
    network = make_network(db, now=now)
    center = make_center(db, now=now, network=network)
    other = make_center(db, now=now, network=network, timezone="America/Los_Angeles")
    email = f"organiser-{uuid.uuid4().hex[:8]}@test.org"
    user = staff.create_user(
        db, email=email, name="Olu Organiser", password=password, role=Role.ORGANISER,
        center_ids=[center.id], now=now,
    )  # fmt: skip
    return Organisers(network.id, center.id, other.id, user.id, email)
