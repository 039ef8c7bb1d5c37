"""Conversation sessions: start, resume, repeat and close one, persisting what the engine says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from c3n_bot.engine import runner
from c3n_bot.engine.definitions import Flow, FlowKind
from c3n_bot.engine.events import (
    AlertRaised,
    Context,
    Event,
    FlowEnded,
    Input,
    MessageOut,
    Step,
    Subject,
    SubjectChosen,
    SubmissionCompleted,
)
from c3n_bot.service import audit, completion
from c3n_bot.service.context import Services
from c3n_bot.service.errors import ServiceError
from c3n_bot.service.outbox import enqueue_deferred
from c3n_bot.store import deferred
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.literals import inline
from c3n_bot.store.models import (
    Center,
    ChannelIdentity,
    Contact,
    ContactPatient,
    ConversationSession,
    DueWork,
    InboundMessage,
    Patient,
)
from c3n_bot.store.models.conversations import SessionStatus
from c3n_bot.store.models.scheduling import DueStatus

CHANNEL_PREFERENCE = (Channel.TELEGRAM, Channel.SMS, Channel.WEB, Channel.CONSOLE)
ENDED = {"completed": SessionStatus.COMPLETED, "expired": SessionStatus.EXPIRED,
         "stopped": SessionStatus.STOPPED}  # fmt: skip


class StartError(ServiceError):
    """A flow cannot be started for this contact (unknown, unlinked, or unreachable)."""


@dataclass(frozen=True)
class StartResult:
    """A started session, or the queued start waiting for the active one to end."""

    status: str  # started | queued
    session_id: uuid.UUID | None = None
    queued_id: uuid.UUID | None = None


def active_session(db: Session, contact_id: uuid.UUID) -> ConversationSession | None:
    """The contact's active session, locked for this transaction."""
    return db.scalar(_ACTIVE, {"contact_id": contact_id})


_ACTIVE = (
    select(ConversationSession)
    .where(
        ConversationSession.contact_id == bindparam("contact_id"),
        ConversationSession.status == inline(SessionStatus.ACTIVE),  # store.literals
    )
    .with_for_update()
)


def preferred_identity(
    db: Session,
    contact: Contact,
    channel: Channel | None = None,
    available: frozenset[Channel] = frozenset(Channel),
) -> ChannelIdentity:
    """Where to reach a contact: the asked channel, else the one they last wrote from."""
    usable = [i for i in contact.identities if i.stopped_at is None and i.channel in available]
    if channel is not None:
        usable = [i for i in usable if i.channel == channel]
    if not usable:
        raise StartError(
            "the contact has no reachable channel" + (f" on {channel}" if channel else "")
        )
    last = db.scalar(
        select(InboundMessage.identity_id)
        .where(InboundMessage.identity_id.in_([i.id for i in usable]))
        .order_by(InboundMessage.received_at.desc())
        .limit(1)
    )
    by_id = {i.id: i for i in usable}
    if last in by_id:
        return by_id[last]
    return min(usable, key=lambda i: CHANNEL_PREFERENCE.index(i.channel))


def start(
    db: Session,
    *,
    contact: Contact,
    identity: ChannelIdentity,
    flow: Flow,
    patient_id: uuid.UUID | None,
    trigger: str,
    services: Services,
    now: datetime,
    values: dict[str, str] | None = None,
) -> StartResult:
    """Start a flow, or queue it when the contact is already in one."""
    links = _links(db, contact, patient_id)
    if active_session(db, contact.id) is not None:
        queued = _queue(db, contact, links[0].patient_id, flow, trigger, values, now)
        # Started later, a parent of several children must still be asked which child.
        queued_row = db.get(DueWork, queued.queued_id)
        if queued_row is not None and patient_id is None and len(links) > 1:
            queued_row.detail = {**queued_row.detail, "ask_subject": True}
        return queued
    subjects = tuple(Subject(str(link.patient_id), link.patient.given_name) for link in links)
    if flow.kind == FlowKind.CONSENT:
        subjects = subjects[:1]  # consent is the contact's own, not about one child
    all_values = {**program_values(db, contact, links[0].patient), **(values or {})}
    ctx = _context(
        contact,
        services,
        subjects=subjects,
        proxy=_is_proxy(links),
        values=all_values,
        previous={},
        now=now,
    )
    step = runner.start(flow, ctx, now)
    step.state["values"] = all_values
    row = ConversationSession(
        contact_id=contact.id,
        patient_id=links[0].patient_id if len(links) == 1 else None,
        identity_id=identity.id,
        flow_id=flow.id,
        flow_version=flow.version,
        state=step.state,
        status=SessionStatus.ACTIVE,
        trigger=trigger,
        started_at=now,
        updated_at=now,
        expires_at=now + timedelta(hours=flow.expires_after_hours),
    )
    db.add(row)
    db.flush()
    kind = "reply" if trigger == "keyword" else "prompt"
    # The row was inserted with the step's state and times: nothing to write again.
    _apply(db, row, identity, flow, step, now, services, kind=kind, write=False)
    return StartResult(status="started", session_id=row.id)


def resume(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    reply: Input,
    services: Services,
    now: datetime,
) -> None:
    """Hand one reply to the engine and persist the result."""
    flow = services.flows.get(session.flow_id)
    step = runner.resume(
        flow, session.state, reply, _resume_context(db, session, services, now), now
    )
    _apply(db, session, identity, flow, step, now, services, kind="reply", answered_on=identity)


def repeat(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    services: Services,
    now: datetime,
    *,
    nudge: bool = False,
) -> None:
    """Ask the current question again (in the contact's language now, or as a nudge)."""
    flow = services.flows.get(session.flow_id)
    ctx = _resume_context(db, session, services, now)
    step = runner.reprompt(flow, session.state, ctx, nudge=nudge)
    _apply(
        db,
        session,
        identity,
        flow,
        step,
        now,
        services,
        kind="prompt" if nudge else "reply",
        touch=not nudge,
    )


def close(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    services: Services,
    now: datetime,
    *,
    reason: str,
) -> None:
    """End a session early: 'expire' (left too long) or 'stop' (the contact stopped)."""
    flow = services.flows.get(session.flow_id)
    ctx = _resume_context(db, session, services, now)
    end = runner.expire if reason == "expire" else runner.stop
    step = end(flow, session.state, ctx, now)
    # After a STOP nothing else starts: the contact asked for silence.
    _apply(
        db, session, identity, flow, step, now, services, kind="reply", start_next=reason != "stop"
    )


def expire_due(db: Session, now: datetime, services: Services, *, batch: int = 500) -> int:
    """Clock task: close every active session past its expiry as a partial submission."""
    due = db.scalars(
        select(ConversationSession)
        .where(
            ConversationSession.status == SessionStatus.ACTIVE,
            ConversationSession.expires_at <= now,
        )
        .order_by(ConversationSession.expires_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for session in due:
        identity = db.get(ChannelIdentity, session.identity_id)
        if identity is not None:
            close(db, session, identity, services, now, reason="expire")
    return len(due)


def program_values(db: Session, contact: Contact, patient: Patient | None = None) -> dict[str, str]:
    """Placeholders every message may use: the network ({program}) and center ({center})."""
    if patient is None:
        link = db.scalar(select(ContactPatient).where(ContactPatient.contact_id == contact.id))
        patient = link.patient if link else None
    if patient is None:
        return {"program": "c3n-bot", "center": ""}
    return {"program": patient.center.network.name, "center": patient.center.name}


def audit_consent(db: Session, identity: ChannelIdentity, action: str, now: datetime) -> None:
    """Keep the history of a channel-level opt-out or opt-in."""
    actor = audit.Actor(type="contact", id=str(identity.contact_id))
    audit.record(
        db,
        actor=actor,
        action=action,
        subject=str(identity.id),
        now=now,
        detail={"channel": identity.channel.value},
    )


def _links(db: Session, contact: Contact, patient_id: uuid.UUID | None) -> list[ContactPatient]:
    query = select(ContactPatient).where(ContactPatient.contact_id == contact.id)
    if patient_id is not None:
        query = query.where(ContactPatient.patient_id == patient_id)
    # The patients (with their center and network, which program_values names) come in the
    # same statement: lazily, each was a round trip of its own when a flow started.
    loaded = contains_eager(ContactPatient.patient).joinedload(Patient.center)
    query = query.join(Patient).options(loaded.joinedload(Center.network))
    links = list(db.scalars(query.order_by(Patient.birth_date)))
    if not links:
        raise StartError("the contact does not report for this patient")
    return links


def _is_proxy(links: list[ContactPatient]) -> bool:
    return any(link.relation != Relationship.SELF for link in links)


def _queue(
    db: Session,
    contact: Contact,
    patient_id: uuid.UUID,
    flow: Flow,
    trigger: str,
    values: dict[str, str] | None,
    now: datetime,
) -> StartResult:
    waiting = DueWork(
        key=f"queued:{uuid.uuid4()}",
        kind="flow",
        patient_id=patient_id,
        contact_id=contact.id,
        flow_id=flow.id,
        slot_at=now,
        due_at=now,
        status=DueStatus.PENDING,
        reason="waiting for the active session to end",
        detail={"trigger": trigger, "values": values or {}},
        created_at=now,
    )
    db.add(waiting)
    db.flush()
    return StartResult(status="queued", queued_id=waiting.id)


def _context(
    contact: Contact,
    services: Services,
    *,
    subjects: tuple[Subject, ...],
    proxy: bool,
    values: dict[str, str],
    previous: dict[str, Any],
    now: datetime,
    lang: str | None = None,
) -> Context:
    language = lang or contact.language
    return Context(
        lang=language,
        translate=services.translator(language),
        subjects=subjects,
        proxy=proxy,
        previous_scores=previous,
        today=now.astimezone(ZoneInfo(contact.timezone)).date(),
        values=values,
    )


def _reads_previous(flow: Flow) -> bool:
    texts = [rule.when for rule in flow.alerts] + [score.expr for score in flow.scores]
    return any("prev." in text for text in texts)


def _resume_context(
    db: Session, session: ConversationSession, services: Services, now: datetime
) -> Context:
    contact = db.get(Contact, session.contact_id)
    assert contact is not None
    state = session.state
    if state.get("awaiting") == runner.SUBJECT or "proxy" not in state:
        links = _links(db, contact, session.patient_id)
        subjects = tuple(Subject(str(link.patient_id), link.patient.given_name) for link in links)
        proxy = _is_proxy(links)
    else:
        # The child is chosen and the state keeps who and whether a parent reports: the
        # links need not be read again for every answer.
        chosen = state.get("subject")
        subjects = (Subject(chosen["id"], chosen["name"]),) if chosen else ()
        proxy = bool(state["proxy"])
    # Only flows whose rules read prev.<score> (a PUCAI rise) need the last report.
    flow = services.flows.get(session.flow_id)
    previous = (
        completion.previous_scores(db, session.patient_id, session.flow_id)
        if session.patient_id and _reads_previous(flow)
        else {}
    )
    return _context(
        contact,
        services,
        subjects=subjects,
        proxy=proxy,
        values=dict(state.get("values", {})),
        previous=previous,
        now=now,
    )


def _apply(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    flow: Flow,
    step: Step,
    now: datetime,
    services: Services,
    *,
    kind: str,
    touch: bool = True,
    start_next: bool = True,
    answered_on: ChannelIdentity | None = None,
    write: bool = True,
) -> None:
    if write:
        _write(
            db,
            session,
            state=step.state,
            identity_id=answered_on.id if answered_on else session.identity_id,
            updated_at=now if touch else session.updated_at,
            expires_at=(
                now + timedelta(hours=flow.expires_after_hours) if touch else session.expires_at
            ),
        )
    # Events that end the session or choose its subject change it through the unit of work.
    for event in step.events:
        _apply_event(db, session, identity, flow, event, now, kind, services)
    if session.status != SessionStatus.ACTIVE and start_next:
        db.flush()
        start_waiting(db, session.contact_id, services, now)


# What every step changes in its session row, written by one statement built once: a
# unit-of-work flush of the same row costs several times more, on every answer.
_table = cast(Table, ConversationSession.__table__)
_WRITE_STEP = (
    update(_table)
    .where(_table.c.id == bindparam("session_id"))
    .values(
        {name: bindparam(name) for name in ("state", "identity_id", "updated_at", "expires_at")}
    )
)


def _write(db: Session, session: ConversationSession, **values: Any) -> None:
    if not inspect(session).persistent:
        for name, value in values.items():
            setattr(session, name, value)  # a row not yet inserted: the unit of work writes it
        return
    with db.no_autoflush:  # else other pending changes would be flushed first, the slow way
        deferred.execute(db, _WRITE_STEP, {"session_id": session.id, **values})
    for name, value in values.items():
        set_committed_value(session, name, value)  # the object agrees with its row


def start_waiting(db: Session, contact_id: uuid.UUID, services: Services, now: datetime) -> bool:
    """Start the most urgent queued flow of a contact who has no active session."""
    waiting = db.scalar(
        select(DueWork)
        .where(
            DueWork.contact_id == contact_id,
            DueWork.kind == "flow",
            DueWork.status == DueStatus.PENDING,
            DueWork.due_at <= now,
        )
        .order_by(DueWork.priority.desc(), DueWork.due_at)
        .limit(1)
        .with_for_update()
    )
    contact = db.get(Contact, contact_id)
    if waiting is None or contact is None or active_session(db, contact_id) is not None:
        return False
    waiting.status = DueStatus.DONE
    waiting.done_at = now
    try:
        identity = preferred_identity(db, contact, available=services.channels)
    except StartError:
        waiting.status = DueStatus.CANCELLED
        waiting.reason = "no reachable channel"
        return False
    start(
        db,
        contact=contact,
        identity=identity,
        flow=services.flows.get(waiting.flow_id),
        patient_id=None if waiting.detail.get("ask_subject") else waiting.patient_id,
        trigger=waiting.detail.get("trigger", "queued"),
        services=services,
        now=now,
        values=waiting.detail.get("values"),
    )
    return True


def _apply_event(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    flow: Flow,
    event: Event,
    now: datetime,
    kind: str,
    services: Services,
) -> None:
    if isinstance(event, MessageOut):
        if identity.stopped_at is None:
            enqueue_deferred(
                db, identity=identity, message=event, kind=kind, now=now, session_id=session.id
            )
    elif isinstance(event, SubjectChosen):
        session.patient_id = uuid.UUID(event.patient_id)
    elif isinstance(event, AlertRaised):
        completion.raise_alert(db, session, identity, event, now)
    elif isinstance(event, SubmissionCompleted):
        completion.record(db, session, identity, flow, event, now, sinks=services.sinks)
    elif isinstance(event, FlowEnded):
        session.status = ENDED[event.reason]
        session.ended_at = now
