"""The database itself refuses duplicates and dangling references, and keeps times in UTC."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from c3n_bot.store.base import Base, Channel, Relationship
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import (
    ChannelIdentity,
    Contact,
    ContactPatient,
    DueWork,
    InboundMessage,
    OutboxMessage,
)
from c3n_bot.store.models.conversations import OutboxStatus, SessionStatus
from c3n_bot.store.models.scheduling import DueStatus
from tests.builders import make_contact, make_identity, make_patient, new_session

UNIQUE = "unique"
FOREIGN_KEY = "foreign key"


def commit_separately(engine: Engine, row: Base) -> None:
    """Insert one row from its own session and connection: only the database can refuse it."""
    with make_session_factory(engine)() as other:
        other.add(row)
        other.commit()


def refused(engine: Engine, row: Base) -> tuple[str, str | None]:
    """Commit a row the database must refuse; return the violation kind and the table.

    SQLite does not name the table of a foreign key violation, so the table is then None.
    """
    with pytest.raises(IntegrityError) as caught:
        commit_separately(engine, row)
    error = caught.value.orig
    if isinstance(error, psycopg.Error):
        kinds = {"23505": UNIQUE, "23503": FOREIGN_KEY}
        return kinds.get(error.sqlstate or "", str(error.sqlstate)), error.diag.table_name
    assert isinstance(error, sqlite3.IntegrityError)
    message = str(error)  # e.g. "UNIQUE constraint failed: due_work.key"
    if message.startswith("UNIQUE constraint failed: "):
        return UNIQUE, message.removeprefix("UNIQUE constraint failed: ").partition(".")[0]
    if message == "FOREIGN KEY constraint failed":
        return FOREIGN_KEY, None
    return message, None


def inbound(channel: Channel, provider_message_id: str, now: datetime) -> InboundMessage:
    """An unsaved inbound message."""
    return InboundMessage(
        channel=channel, provider_message_id=provider_message_id, body="2", received_at=now
    )


def outbox(identity: ChannelIdentity, dedupe_key: str | None, now: datetime) -> OutboxMessage:
    """An unsaved outbound message to an identity."""
    return OutboxMessage(
        channel=identity.channel,
        address=identity.address,
        identity_id=identity.id,
        contact_id=identity.contact_id,
        kind="prompt",
        body="How are you today?",
        dedupe_key=dedupe_key,
        status=OutboxStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )


def due_work(patient_id: uuid.UUID, key: str, now: datetime) -> DueWork:
    """An unsaved slot of due work for a patient."""
    return DueWork(
        key=key,
        kind="prompt",
        patient_id=patient_id,
        flow_id="checkin",
        slot_at=now,
        due_at=now,
        status=DueStatus.PENDING,
        created_at=now,
    )


def test_inbound_message_is_recorded_once_per_channel(
    db: Session, engine: Engine, now: datetime
) -> None:
    """A provider retry of the same message id is refused; the same id elsewhere is not."""
    db.add(inbound(Channel.TELEGRAM, "90001", now))
    db.commit()

    violation = refused(engine, inbound(Channel.TELEGRAM, "90001", now))

    assert violation == (UNIQUE, "inbound_messages")
    commit_separately(engine, inbound(Channel.SMS, "90001", now))
    commit_separately(engine, inbound(Channel.TELEGRAM, "90002", now))


def test_channel_address_belongs_to_one_identity(
    db: Session, engine: Engine, now: datetime
) -> None:
    """Two identities cannot share a channel and address, even for different contacts."""
    first = make_identity(db, contact=make_contact(db, now=now), now=now, address="+15555550100")
    other_contact = make_contact(db, now=now)
    db.commit()

    duplicate = ChannelIdentity(
        contact_id=other_contact.id, channel=first.channel, address=first.address, created_at=now
    )
    violation = refused(engine, duplicate)

    assert violation == (UNIQUE, "channel_identities")
    sms = ChannelIdentity(
        contact_id=other_contact.id, channel=Channel.SMS, address=first.address, created_at=now
    )
    commit_separately(engine, sms)


def test_outbox_dedupe_key_is_unique(db: Session, engine: Engine, now: datetime) -> None:
    """The same reminder slot cannot be enqueued twice; messages without a key are free."""
    identity = make_identity(db, contact=make_contact(db, now=now), now=now)
    db.add(outbox(identity, "appointment:1:-24h", now))
    db.add(outbox(identity, None, now))
    db.commit()

    violation = refused(engine, outbox(identity, "appointment:1:-24h", now))

    assert violation == (UNIQUE, "outbox_messages")
    commit_separately(engine, outbox(identity, None, now))


def test_due_work_key_is_unique(db: Session, engine: Engine, now: datetime) -> None:
    """One slot of due work happens at most once, whoever enqueues it."""
    patient = make_patient(db, now=now)
    key = f"schedule:1:{now.isoformat()}"
    db.add(due_work(patient.id, key, now))
    db.commit()

    violation = refused(engine, due_work(patient.id, key, now))

    assert violation == (UNIQUE, "due_work")
    commit_separately(engine, due_work(patient.id, f"schedule:1:{now + timedelta(days=1)}", now))


def test_one_active_session_per_contact(db: Session, engine: Engine, now: datetime) -> None:
    """A second active session is refused; ended sessions do not count."""
    contact = make_contact(db, now=now)
    first = new_session(contact=contact, now=now)
    db.add_all([first, new_session(contact=contact, now=now, status=SessionStatus.COMPLETED)])
    db.add(new_session(contact=contact, now=now, status=SessionStatus.EXPIRED))
    db.commit()

    violation = refused(engine, new_session(contact=contact, now=now))

    assert violation == (UNIQUE, "sessions")
    first.status = SessionStatus.COMPLETED
    db.commit()
    commit_separately(engine, new_session(contact=contact, now=now))
    stranger = make_contact(db, now=now)
    db.commit()
    commit_separately(engine, new_session(contact=stranger, now=now))


def test_foreign_keys_are_enforced(db: Session, engine: Engine, now: datetime) -> None:
    """A link to a patient that does not exist is refused (SQLite included)."""
    contact = make_contact(db, now=now)
    db.commit()

    dangling = ContactPatient(
        contact_id=contact.id, patient_id=uuid.uuid4(), relation=Relationship.PARENT
    )
    kind, table = refused(engine, dangling)

    assert kind == FOREIGN_KEY
    assert table in ("contact_patients", None)


def test_naive_datetime_is_refused(db: Session, now: datetime) -> None:
    """A timestamp without a timezone never reaches the database."""
    db.add(
        Contact(
            display_name="Naive", language="en", timezone="UTC", created_at=now.replace(tzinfo=None)
        )
    )
    with pytest.raises(StatementError, match="naive datetime") as caught:
        db.flush()
    assert isinstance(caught.value.orig, ValueError)


def test_aware_datetime_round_trips_as_utc(
    db: Session, engine: Engine, backend: str, now: datetime
) -> None:
    """Any aware time is stored as UTC and read back as the same instant, in UTC."""
    local = datetime(2026, 3, 2, 10, 0, 0, 123_456, tzinfo=ZoneInfo("America/New_York"))
    expected = datetime(2026, 3, 2, 15, 0, 0, 123_456, tzinfo=UTC)
    contact = make_contact(db, now=local)
    db.commit()

    with make_session_factory(engine)() as other:
        loaded = other.get(Contact, contact.id)
        raw = other.execute(text("SELECT created_at FROM contacts")).scalar_one()
        # Comparisons happen in UTC too: 16:00:01 at UTC+1 is just after the stored 15:00:00.1.
        plus_one = timezone(timedelta(hours=1))
        before = datetime(2026, 3, 2, 15, tzinfo=UTC)
        after = datetime(2026, 3, 2, 16, 0, 1, tzinfo=plus_one)
        created_after_before = other.scalars(select(Contact.id).where(Contact.created_at > before))
        created_after_after = other.scalars(select(Contact.id).where(Contact.created_at > after))
        found = (created_after_before.all(), created_after_after.all())

    assert loaded is not None
    assert loaded.created_at == expected
    assert loaded.created_at.tzinfo is UTC
    if backend == "sqlite":
        assert raw == "2026-03-02 15:00:00.123456"  # UTC text, so ordering by text is by time
    else:
        assert raw == expected
    assert found == ([contact.id], [])
