"""The messages exchanged with a patient's contacts, newest first, in one query.

Bodies are read from the database only for a viewer allowed to see them: for everyone else
the query selects NULL in their place, so no body reaches the page, a log or a cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, Subquery, Text, literal, null, select, union_all
from sqlalchemy.orm import Session

from c3n_bot.store.base import Channel
from c3n_bot.store.models import InboundMessage, OutboxMessage

MESSAGES_SHOWN = 100


@dataclass(frozen=True)
class LogLine:
    """One message: received from a contact ("in") or written to the outbox ("out")."""

    direction: str
    at: datetime
    channel: Channel
    identity_id: uuid.UUID | None
    kind: str | None  # prompt, reply, reminder... (outbound only)
    status: str | None  # pending, sent, delivered, failed... (outbound only)
    body: str | None  # None unless the viewer may read message bodies


def message_log(
    db: Session,
    identity_ids: Sequence[uuid.UUID],
    *,
    with_bodies: bool,
    limit: int = MESSAGES_SHOWN,
) -> list[LogLine]:
    """The latest `limit` messages to and from these channel identities."""
    if not identity_ids:
        return []
    ids = list(identity_ids)
    received = _newest(
        select(
            literal("in", String).label("direction"),
            InboundMessage.received_at.label("at"),
            InboundMessage.channel.label("channel"),
            InboundMessage.identity_id.label("identity_id"),
            null().cast(String).label("kind"),
            null().cast(String).label("status"),
            (InboundMessage.body if with_bodies else null().cast(Text)).label("body"),
        ).where(InboundMessage.identity_id.in_(ids)),
        InboundMessage.received_at,
        limit,
    )
    sent = _newest(
        select(
            literal("out", String),
            OutboxMessage.created_at,
            OutboxMessage.channel,
            OutboxMessage.identity_id,
            OutboxMessage.kind,
            OutboxMessage.status.cast(String),
            OutboxMessage.body if with_bodies else null().cast(Text),
        ).where(OutboxMessage.identity_id.in_(ids)),
        OutboxMessage.created_at,
        limit,
    )
    both = union_all(select(received), select(sent)).subquery()
    rows = db.execute(select(both).order_by(both.c.at.desc()).limit(limit))
    return [LogLine(**row._asdict()) for row in rows]


def _newest(query: Select[*tuple[Any, ...]], at: Any, limit: int) -> Subquery:
    # Each side is cut to `limit` first, so the union sorts at most 2 × limit rows.
    return query.order_by(at.desc()).limit(limit).subquery()
