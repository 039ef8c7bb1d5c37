"""Delivery receipts from providers, and channel cursors (e.g. the Telegram update offset)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.base import Channel
from c3n_bot.store.models import ChannelCursor, ChannelIdentity, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus

log = logging.getLogger(__name__)

PROVIDER_STATUS = {
    "accepted": OutboxStatus.SENT,
    "queued": OutboxStatus.QUEUED,
    "sending": OutboxStatus.QUEUED,
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "undelivered": OutboxStatus.UNDELIVERED,
    "failed": OutboxStatus.FAILED,
}
# A later receipt may not undo a final one (callbacks can arrive out of order).
RANK = {OutboxStatus.SENT: 1, OutboxStatus.QUEUED: 1, OutboxStatus.DELIVERED: 3,
        OutboxStatus.UNDELIVERED: 3, OutboxStatus.FAILED: 3}  # fmt: skip
UNSUBSCRIBED_CODES = {"21610"}


def apply_receipt(
    db: Session,
    *,
    channel: Channel,
    provider_message_id: str,
    status: str,
    error_code: str | None,
    now: datetime,
) -> bool:
    """Record a provider's delivery status on its outbox row; False when the row is unknown."""
    row = db.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.channel == channel,
            OutboxMessage.provider_message_id == provider_message_id,
        )
        .with_for_update()
    )
    new = PROVIDER_STATUS.get(status.lower())
    if row is None or new is None:
        log.info("receipt.ignored", extra={"status": status, "known": row is not None})
        return row is not None
    if RANK.get(new, 0) >= RANK.get(row.status, 0):
        row.status = new
        if error_code:
            row.last_error = f"provider error {error_code}"
    if error_code in UNSUBSCRIBED_CODES and row.identity_id is not None:
        identity = db.get(ChannelIdentity, row.identity_id)
        if identity is not None and identity.stopped_at is None:
            identity.stopped_at = now
    return True


def read_cursor(db: Session, name: str) -> int | None:
    """A channel's saved position."""
    cursor = db.get(ChannelCursor, name)
    return cursor.value if cursor else None


def save_cursor(db: Session, name: str, value: int, now: datetime) -> None:
    """Save a channel's position in the caller's transaction."""
    cursor = db.get(ChannelCursor, name, with_for_update=True)
    if cursor is None:
        db.add(ChannelCursor(name=name, value=value, updated_at=now))
    elif value > cursor.value:
        cursor.value = value
        cursor.updated_at = now
