"""Acknowledging a button press: the provider's callback answered, the choice shown."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.engine.events import MessageOut
from c3n_bot.service.outbox import enqueue_to
from c3n_bot.store.models import ChannelIdentity, OutboxMessage

if TYPE_CHECKING:
    from c3n_bot.service.conversations import Inbound


def acknowledge(
    db: Session, inbound: Inbound, identity: ChannelIdentity | None, now: datetime
) -> None:
    """Queue the acknowledgement first, so the button stops spinning before anything else."""
    ack: dict[str, Any] = dict(inbound.ack or {})
    message_id = ack.get("message_id")
    if message_id is not None and inbound.choice is not None:
        original = db.scalar(
            select(OutboxMessage).where(
                OutboxMessage.channel == inbound.channel,
                OutboxMessage.address == inbound.address,
                OutboxMessage.provider_message_id == str(message_id),
            )
        )
        label = _label(original, inbound.choice) if original is not None else None
        if original is not None and label is not None:
            # The question stays readable with the answer under it, and its buttons go away.
            ack["edit_text"] = f"{original.body}\n\n✓ {label}"
    enqueue_to(
        db,
        channel=inbound.channel,
        address=inbound.address,
        identity=identity,
        message=MessageOut(text=""),
        kind="ack",
        now=now,
        extra={"ack": ack, "force": True},
    )


def _label(original: OutboxMessage, choice: tuple[str, str]) -> str | None:
    for option in (original.payload or {}).get("choices", []):
        if option.get("item_id") == choice[0] and option.get("code") == choice[1]:
            return str(option.get("label"))
    return None
