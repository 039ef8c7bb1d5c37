"""Writing outbound messages: each is a row in the caller's transaction, sent later."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

from c3n_bot.engine.events import MessageOut
from c3n_bot.store import deferred
from c3n_bot.store.base import Channel
from c3n_bot.store.inserts import insert_ignoring_duplicates_bulk
from c3n_bot.store.models import ChannelIdentity, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus

# Dispatch order when rows compete: a safety message never waits behind a broadcast.
PRIORITY = {"ack": 200, "safety": 100, "escalation": 100, "reply": 50, "reminder": 40,
            "prompt": 30, "invitation": 20, "broadcast": 10}  # fmt: skip
NOTIFY_CHANNEL = "c3n_outbox"
# Session.info key: the transaction that wrote outbox rows, and the channels it wrote.
_WRITTEN_KEY = "c3n.outbox_written"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def enqueue(
    db: Session,
    *,
    identity: ChannelIdentity,
    message: MessageOut,
    kind: str,
    now: datetime,
    session_id: uuid.UUID | None = None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    force: bool = False,
) -> int:
    """Add one outbound message to a known identity."""
    return enqueue_to(
        db,
        channel=identity.channel,
        address=identity.address,
        identity=identity,
        message=message,
        kind=kind,
        now=now,
        session_id=session_id,
        not_before=not_before,
        dedupe_key=dedupe_key,
        extra={"force": True} if force else None,
    )


def enqueue_to(
    db: Session,
    *,
    channel: Channel,
    address: str,
    identity: ChannelIdentity | None,
    message: MessageOut,
    kind: str,
    now: datetime,
    session_id: uuid.UUID | None = None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Add one outbound message to an address (an unenrolled sender has no identity yet);
    returns its id."""
    row = message_row(
        channel=channel,
        address=address,
        identity_id=identity.id if identity else None,
        contact_id=identity.contact_id if identity else None,
        message=message,
        kind=kind,
        now=now,
        session_id=session_id,
        not_before=not_before,
        dedupe_key=dedupe_key,
        extra=extra,
    )
    outbox_id: int = db.execute(_INSERT, row).scalar_one()
    _notify_on_commit(db, (channel,))
    return outbox_id


def enqueue_deferred(
    db: Session,
    *,
    identity: ChannelIdentity,
    message: MessageOut,
    kind: str,
    now: datetime,
    session_id: uuid.UUID | None = None,
) -> None:
    """`enqueue` for a caller that needs no id back: in a transaction that defers its writes
    (store.deferred, the webhooks' writer), one INSERT carries the replies of all its
    messages."""
    row = message_row(
        channel=identity.channel,
        address=identity.address,
        identity_id=identity.id,
        contact_id=identity.contact_id,
        message=message,
        kind=kind,
        now=now,
        session_id=session_id,
    )
    deferred.execute(db, _INSERT_MANY, row)
    _notify_on_commit(db, (identity.channel,))


def message_row(
    *,
    channel: Channel,
    address: str,
    identity_id: uuid.UUID | None,
    contact_id: uuid.UUID | None,
    message: MessageOut,
    kind: str,
    now: datetime,
    session_id: uuid.UUID | None = None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The values of one pending outbox row (for `enqueue_to` and the set-based enqueues)."""
    return {
        "channel": channel,
        "address": address,
        "identity_id": identity_id,
        "contact_id": contact_id,
        "session_id": session_id,
        "kind": kind,
        "priority": PRIORITY.get(kind, 0),
        "body": message.text,
        "payload": payload(message, extra),
        "dedupe_key": dedupe_key,
        "status": OutboxStatus.PENDING,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "attempts": 0,
    }


def payload(message: MessageOut, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What channels need besides the text: choice buttons, the reply hint, and `extra`."""
    return {
        "choices": [
            {"item_id": c.item_id, "code": c.code, "label": c.label, "number": c.number}
            for c in message.choices
        ],
        "hint": message.hint,
        "show_options": message.show_options,
        **(extra or {}),
    }


def enqueue_rows(db: Session, rows: list[dict[str, Any]]) -> None:
    """Add many rows built by `message_row` with one statement executed for them all."""
    if not rows:
        return
    db.execute(_INSERT_MANY, rows)
    _notify_on_commit(db, {row["channel"] for row in rows})


def enqueue_new(db: Session, rows: list[dict[str, Any]]) -> int:
    """Add the rows whose dedupe key is not taken yet (due work, retried sends); how many."""
    added = insert_ignoring_duplicates_bulk(db, OutboxMessage, rows)
    if added:
        _notify_on_commit(db, {row["channel"] for row in rows})
    return added


# One statement for every message (a Core insert: no unit-of-work bookkeeping per reply).
_INSERT = insert(cast(Table, OutboxMessage.__table__)).returning(OutboxMessage.id)
# Many rows at once: one executemany, nothing returned.
_INSERT_MANY = insert(cast(Table, OutboxMessage.__table__))


def written_channels(session: Session) -> frozenset[Channel]:
    """The channels the session's last transaction wrote outbox rows to, forgotten once
    read (a session's after_commit or after_rollback hook)."""
    written: tuple[object, set[Channel]] | None = session.info.pop(_WRITTEN_KEY, None)
    return frozenset() if written is None else frozenset(written[1])


def _notify_on_commit(db: Session, channels: Iterable[Channel]) -> None:
    # In-process dispatchers are woken by the session's after_commit hook (written_channels);
    # dispatchers in other processes by PostgreSQL's NOTIFY, delivered when this transaction
    # commits: one per channel written, whose payload names it, so only that channel's
    # dispatchers look for work.
    transaction = db.get_transaction()
    written: tuple[object, set[Channel]] | None = db.info.get(_WRITTEN_KEY)
    if written is None or written[0] is not transaction:
        written = (transaction, set())
        db.info[_WRITTEN_KEY] = written
    new = sorted({Channel(channel) for channel in channels} - written[1])
    if not new:
        return
    written[1].update(new)
    if db.get_bind().dialect.name == "postgresql":
        for channel in new:  # delivered at commit: it may as well go with deferred writes
            deferred.execute(db, _NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": channel.value})
