"""Inbound messages and flow starts: keywords first, then the engine, all in one transaction."""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from c3n_bot.engine.events import ChoiceInput, Input, MessageOut, TextInput
from c3n_bot.logs import log_event
from c3n_bot.service import enrollment, inbound_batch, sessions, texts
from c3n_bot.service.acks import acknowledge
from c3n_bot.service.context import Services
from c3n_bot.service.enrollment import Redemption
from c3n_bot.service.keywords import Keyword, classify
from c3n_bot.service.outbox import enqueue, enqueue_to
from c3n_bot.service.sessions import StartError, StartResult
from c3n_bot.store.base import Channel
from c3n_bot.store.inserts import insert_ignoring_duplicates
from c3n_bot.store.models import ChannelIdentity, Contact, InboundMessage, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    """One message as a channel adapter parsed it."""

    channel: Channel
    address: str
    provider_message_id: str
    text: str = ""
    # A pressed button: (item id, option code).
    choice: tuple[str, str] | None = None
    # What the provider needs acknowledged (Telegram: the callback query and its message).
    ack: dict[str, Any] | None = None


class Outcome(enum.StrEnum):
    """What became of an inbound message."""

    ENROLLED = "enrolled"
    ENROLLMENT_REFUSED = "enrollment_refused"
    DUPLICATE = "duplicate"
    UNKNOWN_SENDER = "unknown_sender"
    IGNORED_STOPPED = "ignored_stopped"
    KEYWORD = "keyword"
    ANSWERED = "answered"
    STARTED = "started"
    IDLE = "idle"


def handle_inbound(db: Session, *, inbound: Inbound, services: Services, now: datetime) -> Outcome:
    """Record a message once and act on it; the caller commits the one transaction."""
    identity = _identity(db, inbound.channel, inbound.address)
    inbound_id = _store(db, inbound, identity, now)
    if inbound_id is None:
        log_event(log, "inbound.duplicate", channel=inbound.channel.value)
        return Outcome.DUPLICATE
    if inbound.ack is not None:
        acknowledge(db, inbound, identity, now)
    code = enrollment.requested_code(inbound.channel, inbound.text)
    if code is not None:
        outcome = _enroll(db, inbound, code, services, now)
    elif identity is None:
        _not_enrolled(db, inbound, services, now)
        log.info("inbound.unknown_sender", extra={"channel": inbound.channel.value})
        outcome = Outcome.UNKNOWN_SENDER
    else:
        outcome = _dispatch(db, identity, inbound, services, now)
    log_event(log, "inbound.handled", inbound_id=inbound_id, outcome=outcome.value)
    return outcome


REFUSALS = {
    Redemption.UNKNOWN: texts.CODE_UNKNOWN,
    Redemption.USED: texts.CODE_USED,
    Redemption.EXPIRED: texts.CODE_EXPIRED,
    Redemption.TAKEN: texts.ADDRESS_TAKEN,
}
NOT_ENROLLED_EVERY = timedelta(days=1)


def _enroll(db: Session, inbound: Inbound, code: str, services: Services, now: datetime) -> Outcome:
    result, identity = enrollment.redeem(
        db, channel=inbound.channel, address=inbound.address, code=code, now=now
    )
    if result in REFUSALS:
        if identity is None and _answered_today(db, inbound, now):
            return Outcome.ENROLLMENT_REFUSED  # strangers cannot make us send a flood
        # The sender's language is unknown until enrolled: say it in every language.
        text = "\n".join(services.translate(lang, REFUSALS[result]) for lang in services.languages)
        enqueue_to(
            db,
            channel=inbound.channel,
            address=inbound.address,
            identity=identity,
            message=MessageOut(text=text),
            kind="not_enrolled" if identity is None else "reply",
            now=now,
        )
        return Outcome.ENROLLMENT_REFUSED
    assert identity is not None
    contact = identity.contact
    lang = contact.language
    if result == Redemption.ALREADY:
        _say(db, identity, services.translate(lang, texts.ALREADY_ENROLLED), now)
        return Outcome.KEYWORD
    values = sessions.program_values(db, contact)
    _say(db, identity, services.fill(lang, texts.ENROLLED, values), now)
    if enrollment.needs_consent(db, contact.id) and services.flows.has("consent"):
        sessions.start(
            db,
            contact=contact,
            identity=identity,
            flow=services.flows.get("consent"),
            patient_id=None,
            trigger="enrollment",
            services=services,
            now=now,
        )
    return Outcome.ENROLLED


def _not_enrolled(db: Session, inbound: Inbound, services: Services, now: datetime) -> None:
    # At most one such reply a day per address, and none in answer to a stranger's STOP.
    if _answered_today(db, inbound, now) or classify(inbound.text, stopped=False) == (
        Keyword.STOP,
        None,
    ):
        return
    text = "\n".join(services.translate(lang, texts.NOT_ENROLLED) for lang in services.languages)
    enqueue_to(
        db,
        channel=inbound.channel,
        address=inbound.address,
        identity=None,
        message=MessageOut(text=text),
        kind="not_enrolled",
        now=now,
    )


def _answered_today(db: Session, inbound: Inbound, now: datetime) -> bool:
    recent = db.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.channel == inbound.channel,
            OutboxMessage.address == inbound.address,
            OutboxMessage.kind == "not_enrolled",
            OutboxMessage.created_at > now - NOT_ENROLLED_EVERY,
        )
        .limit(1)
    )
    return recent is not None


def _store(
    db: Session, inbound: Inbound, identity: ChannelIdentity | None, now: datetime
) -> int | None:
    """The message's new row id, or None when it was already stored (a replay)."""
    stored = inbound_batch.take_stored(db, inbound.channel, inbound.provider_message_id)
    if isinstance(stored, inbound_batch.Missing):
        row = inbound_batch.inbound_row(inbound, identity, now)
        return insert_ignoring_duplicates(db, InboundMessage, row, returning=InboundMessage.id)
    if stored is None:
        return None
    inbound_id, identity_id = stored
    if identity is not None and identity_id is None:
        # Stored before an earlier message of the batch enrolled its sender.
        db.execute(_SET_IDENTITY, {"inbound_id": inbound_id, "identity_id": identity.id})
    return inbound_id


_SET_IDENTITY = (
    update(InboundMessage)
    .where(InboundMessage.id == bindparam("inbound_id"))
    .values(identity_id=bindparam("identity_id"))
)


# The row lock serialises concurrent messages of one contact (SQLite: BEGIN IMMEDIATE).
# Built once: every webhook runs it.
_IDENTITY = (
    select(ChannelIdentity)
    .where(
        ChannelIdentity.channel == bindparam("channel"),
        ChannelIdentity.address == bindparam("address"),
    )
    .options(joinedload(ChannelIdentity.contact, innerjoin=True))
    .with_for_update()
)


def _identity(db: Session, channel: Channel, address: str) -> ChannelIdentity | None:
    read = inbound_batch.take_identity(db, channel, address)
    if isinstance(read, inbound_batch.Missing):
        return db.scalar(_IDENTITY, {"channel": channel, "address": address})
    return read


def _dispatch(
    db: Session, identity: ChannelIdentity, inbound: Inbound, services: Services, now: datetime
) -> Outcome:
    contact = identity.contact
    keyword = classify(inbound.text, stopped=identity.stopped_at is not None)
    if inbound.choice is None and keyword is not None:
        return _keyword(db, identity, contact, keyword, services, now)
    if identity.stopped_at is not None:
        return Outcome.IGNORED_STOPPED
    reply: Input = ChoiceInput(*inbound.choice) if inbound.choice else TextInput(inbound.text)
    active = inbound_batch.take_session(db, contact.id)
    if isinstance(active, inbound_batch.Missing):
        active = sessions.active_session(db, contact.id)
    if active is not None:
        sessions.resume(db, active, identity, reply, services, now)
        return Outcome.ANSWERED
    flow = services.flows.by_keyword(inbound.text) if inbound.choice is None else None
    if flow is not None:
        sessions.start(
            db,
            contact=contact,
            identity=identity,
            flow=flow,
            patient_id=None,
            trigger="keyword",
            services=services,
            now=now,
        )
        return Outcome.STARTED
    _say(db, identity, services.translate(contact.language, texts.NOTHING_PENDING), now)
    return Outcome.IDLE


def _keyword(
    db: Session,
    identity: ChannelIdentity,
    contact: Contact,
    found: tuple[Keyword, str | None],
    services: Services,
    now: datetime,
) -> Outcome:
    keyword, argument = found
    lang = contact.language
    values = sessions.program_values(db, contact)
    if keyword == Keyword.STOP:
        _stop(db, identity, services, now)
        _say(db, identity, services.fill(lang, texts.STOPPED, values), now, force=True)
    elif keyword == Keyword.START:
        if identity.stopped_at is not None:
            identity.stopped_at = None
            sessions.audit_consent(db, identity, "channel.start", now)
        _say(db, identity, services.fill(lang, texts.RESTARTED, values), now)
    elif (
        keyword == Keyword.HELP
        and identity.stopped_at is None
        and _in_flow_help(db, identity, services, now)
    ):
        pass
    elif keyword in (Keyword.HELP, Keyword.INFO):
        _say(db, identity, services.fill(lang, texts.HELP, values), now, force=True)
    elif identity.stopped_at is None:
        _switch_language(db, identity, contact, argument, services, now)
    return Outcome.KEYWORD


def _in_flow_help(
    db: Session, identity: ChannelIdentity, services: Services, now: datetime
) -> bool:
    active = sessions.active_session(db, identity.contact_id)
    if active is None:
        return False
    sessions.resume(db, active, identity, TextInput("help"), services, now)
    lang = identity.contact.language
    _say(db, identity, services.translate(lang, texts.HELP_IN_FLOW), now)
    return True


def _stop(db: Session, identity: ChannelIdentity, services: Services, now: datetime) -> None:
    identity.stopped_at = now
    sessions.audit_consent(db, identity, "channel.stop", now)
    active = sessions.active_session(db, identity.contact_id)
    if active is not None:
        sessions.close(db, active, identity, services, now, reason="stop")
    # Nothing already queued for this address may leave after a STOP.
    db.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.identity_id == identity.id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="stopped")
    )


def _switch_language(
    db: Session,
    identity: ChannelIdentity,
    contact: Contact,
    requested: str | None,
    services: Services,
    now: datetime,
) -> None:
    languages = services.languages
    if requested not in languages:
        # LANGUAGE alone moves to the next supported language.
        current = languages.index(contact.language) if contact.language in languages else 0
        requested = languages[(current + 1) % len(languages)]
    contact.language = requested
    _say(db, identity, services.translate(requested, texts.LANGUAGE_SET), now)
    active = sessions.active_session(db, contact.id)
    if active is not None:
        sessions.repeat(db, active, identity, services, now)


def _say(
    db: Session, identity: ChannelIdentity, text: str, now: datetime, *, force: bool = False
) -> None:
    if identity.stopped_at is not None and not force:
        return
    enqueue(
        db, identity=identity, message=MessageOut(text=text), kind="reply", now=now, force=force
    )


def start_flow(
    db: Session,
    *,
    contact_id: uuid.UUID,
    flow_id: str,
    patient_id: uuid.UUID | None,
    services: Services,
    now: datetime,
    trigger: str = "manual",
    channel: Channel | None = None,
    values: dict[str, str] | None = None,
) -> StartResult:
    """Start a flow for a contact now, or queue it behind their active session."""
    contact = db.get(Contact, contact_id)
    if contact is None:
        raise StartError("unknown contact")
    flow = services.flows.get(flow_id)
    identity = sessions.preferred_identity(db, contact, channel, services.channels)
    return sessions.start(
        db,
        contact=contact,
        identity=identity,
        flow=flow,
        patient_id=patient_id,
        trigger=trigger,
        services=services,
        now=now,
        values=values,
    )


__all__ = ["Inbound", "Outcome", "StartError", "StartResult", "handle_inbound", "start_flow"]
