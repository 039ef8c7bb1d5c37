"""What a batch of webhook messages needs first: three statements instead of three each.

The writer thread (service.inbound_queue) handles many messages in one transaction. Before
handling them it reads, for all of them at once, the senders' identities with their
contacts and those contacts' active sessions, locked for the transaction as the
one-by-one reads lock them (rows in id order, so two writers lock in the same order).
Each message takes what was read for its sender only if it is the sender's first message
in the batch: once a message has been handled, what was read for its sender is forgotten
(the message may have changed it), and anything but an answer in a session forgets all.
Whatever is not there is read one by one, as before. The batch's messages are also stored
by one insert up front (a replay, in the batch or not, is not stored again); each message
then takes its new row, and finds none if it is a duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from c3n_bot.store.base import Channel
from c3n_bot.store.inserts import insert_many_ignoring_duplicates
from c3n_bot.store.literals import inline
from c3n_bot.store.models import ChannelIdentity, ConversationSession, InboundMessage
from c3n_bot.store.models.conversations import SessionStatus

if TYPE_CHECKING:
    from c3n_bot.service.conversations import Inbound

_KEY: Final = "c3n.inbound_batch"
_STORED_KEY: Final = "c3n.inbound_stored"


class Missing:
    """Not read ahead: the caller reads it itself."""


MISSING: Final = Missing()

_IDENTITIES = (
    select(ChannelIdentity)
    .where(
        ChannelIdentity.channel.in_(bindparam("channels", expanding=True)),
        ChannelIdentity.address.in_(bindparam("addresses", expanding=True)),
    )
    .options(joinedload(ChannelIdentity.contact, innerjoin=True))
    .order_by(ChannelIdentity.id)
    .with_for_update()
)
# Reached through the senders' identities: given a list of contacts instead, SQLite's
# planner (without statistics) walked every active session by status, 12 ms a batch at
# 8,000 families, rather than probing the one-active-session-per-contact index.
_SESSIONS = (
    select(ConversationSession)
    .join(ChannelIdentity, ChannelIdentity.contact_id == ConversationSession.contact_id)
    .where(
        ChannelIdentity.channel.in_(bindparam("channels", expanding=True)),
        ChannelIdentity.address.in_(bindparam("addresses", expanding=True)),
        ConversationSession.status == inline(SessionStatus.ACTIVE),  # store.literals
    )
    .order_by(ConversationSession.id)
    .with_for_update(of=ConversationSession)
)


@dataclass
class _ReadAhead:
    identities: dict[tuple[Channel, str], ChannelIdentity] = field(default_factory=dict)
    # Contacts whose identities were read, with their active session (None: none active).
    sessions: dict[uuid.UUID, ConversationSession | None] = field(default_factory=dict)


def inbound_row(
    inbound: Inbound, identity: ChannelIdentity | None, now: datetime
) -> dict[str, Any]:
    """The stored form of a message: handled in the transaction that stores it (if handling
    fails, the row is not kept either)."""
    return {
        "channel": inbound.channel,
        "provider_message_id": inbound.provider_message_id,
        "identity_id": identity.id if identity else None,
        "body": inbound.text if inbound.choice is None else f"[{inbound.choice[1]}]",
        "received_at": now,
        "handled_at": now,
    }


def read_ahead(db: Session, messages: Sequence[tuple[Inbound, datetime]]) -> None:
    """Read the senders' identities, contacts and active sessions, and store the messages."""
    senders = {
        "addresses": {inbound.address for inbound, _ in messages},
        "channels": {inbound.channel for inbound, _ in messages},
    }
    ahead = _ReadAhead()
    for identity in db.scalars(_IDENTITIES, senders):
        ahead.identities[(identity.channel, identity.address)] = identity
        ahead.sessions[identity.contact_id] = None
    if ahead.sessions:
        for session in db.scalars(_SESSIONS, senders):
            ahead.sessions[session.contact_id] = session
    rows = [
        inbound_row(inbound, ahead.identities.get((inbound.channel, inbound.address)), now)
        for inbound, now in messages
    ]
    inserted = insert_many_ignoring_duplicates(db, InboundMessage, rows, returning=_STORED)
    db.info[_KEY] = ahead
    db.info[_STORED_KEY] = {
        (channel, provider_id): (inbound_id, identity_id)
        for inbound_id, channel, provider_id, identity_id in inserted
    }


_STORED = (
    InboundMessage.id,
    InboundMessage.channel,
    InboundMessage.provider_message_id,
    InboundMessage.identity_id,
)


def take_stored(
    db: Session, channel: Channel, provider_message_id: str
) -> tuple[int, uuid.UUID | None] | None | Missing:
    """The message's new row (id, identity written) if stored up front; None: a duplicate."""
    stored: dict[tuple[Channel, str], tuple[int, uuid.UUID | None]] | None = db.info.get(
        _STORED_KEY
    )
    if stored is None:
        return MISSING
    # Taken once: the same message again in this batch is a replay.
    return stored.pop((channel, provider_message_id), None)


def take_identity(db: Session, channel: Channel, address: str) -> ChannelIdentity | Missing:
    """The sender's identity if read ahead (an unknown sender is always read again)."""
    ahead: _ReadAhead | None = db.info.get(_KEY)
    if ahead is None:
        return MISSING
    return ahead.identities.get((channel, address), MISSING)


def take_session(db: Session, contact_id: uuid.UUID) -> ConversationSession | None | Missing:
    """The contact's active session (or None) if read ahead for this message."""
    ahead: _ReadAhead | None = db.info.get(_KEY)
    if ahead is None or contact_id not in ahead.sessions:
        return MISSING
    return ahead.sessions[contact_id]


def forget_sender(db: Session, channel: Channel, address: str) -> None:
    """After a sender's message: what was read for them may have changed."""
    ahead: _ReadAhead | None = db.info.get(_KEY)
    if ahead is None:
        return
    identity = ahead.identities.pop((channel, address), None)
    if identity is not None:
        ahead.sessions.pop(identity.contact_id, None)


def forget_all(db: Session) -> None:
    """Nothing read ahead is used any more (the stored messages stay stored)."""
    db.info.pop(_KEY, None)
