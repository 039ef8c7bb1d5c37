"""Writing outbound messages: each is a row in the caller's transaction, sent later."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime

from sqlalchemy.orm import Session

from c3n_bot.engine.events import MessageOut
from c3n_bot.store.models import ChannelIdentity, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus

# Dispatch order when rows compete: a safety message never waits behind a broadcast.
PRIORITY = {"safety": 100, "reply": 50, "reminder": 40, "prompt": 30, "invitation": 20,
            "broadcast": 10}  # fmt: skip


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
) -> OutboxMessage:
    """Add one outbound message; the dispatcher is woken when the transaction commits."""
    row = OutboxMessage(
        channel=identity.channel,
        address=identity.address,
        identity_id=identity.id,
        contact_id=identity.contact_id,
        session_id=session_id,
        kind=kind,
        priority=PRIORITY.get(kind, 0),
        body=message.text,
        payload={
            "choices": [asdict(choice) for choice in message.choices],
            "hint": message.hint,
            "show_options": message.show_options,
        },
        dedupe_key=dedupe_key,
        status=OutboxStatus.PENDING,
        next_attempt_at=not_before or now,
        created_at=now,
    )
    db.add(row)
    db.info["outbox_written"] = True
    return row
