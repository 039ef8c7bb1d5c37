"""Sending a broadcast, set-based: its segment into the outbox, or into due work for invitations.

Members are read in batches in contact order. Each batch is sorted out in memory (a live
channel, the purpose's consent, quiet hours) and written with one batched INSERT per table.
Every member gets a BroadcastRecipient row saying what became of them, so counts are exact,
a send interrupted by a restart resumes after the last member it wrote, and no family is
handled twice (each message also carries the dedupe key ``broadcast:<id>:<contact>``).

A message goes out through the dispatcher (channel limits) at the end of the family's quiet
hours at the latest. An invitation becomes due work that starts the ``codesign_invite`` flow;
the clock starts it then, or after the family's running conversation, as for any flow.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, insert, or_, select
from sqlalchemy.orm import Session

from c3n_bot.service import outbox, reach, segments
from c3n_bot.service.context import Services
from c3n_bot.service.schedules import PRIORITY
from c3n_bot.service.send_plan import SendPlan
from c3n_bot.store.base import Channel
from c3n_bot.store.models import (
    Broadcast,
    BroadcastRecipient,
    Center,
    ChannelIdentity,
    Consent,
    Contact,
    DueWork,
    OutboxMessage,
    Patient,
)
from c3n_bot.store.models.community import BroadcastKind, BroadcastStatus, RecipientOutcome
from c3n_bot.store.models.scheduling import DueStatus

log = logging.getLogger(__name__)

BATCH = 5_000
# Members one request, or one clock tick, handles: a few seconds of writing (SQLite holds its
# write lock that long). The clock finishes a larger segment a tick at a time, far ahead of
# what the channels' limits can send in a minute.
REQUEST_LIMIT = 20_000
TICK_LIMIT = 20_000
INVITATION_FLOW = "codesign_invite"


def send_due(db: Session, now: datetime, services: Services, *, limit: int = TICK_LIMIT) -> int:
    """Clock task: send broadcasts whose time has come and finish those under way."""
    due = db.scalars(
        select(Broadcast)
        .where(
            or_(
                and_(Broadcast.status == BroadcastStatus.SCHEDULED, Broadcast.scheduled_at <= now),
                Broadcast.status == BroadcastStatus.SENDING,
            )
        )
        .order_by(Broadcast.scheduled_at)
        .with_for_update(skip_locked=True)
    ).all()
    handled = 0
    for broadcast in due:
        if handled >= limit:
            break
        handled += send_some(db, broadcast, now, services, limit=limit - handled)
    return handled


def send_some(
    db: Session, broadcast: Broadcast, now: datetime, services: Services, *, limit: int
) -> int:
    """Handle up to `limit` more members; the broadcast is sent once its last one is."""
    if broadcast.status == BroadcastStatus.SCHEDULED:
        broadcast.status, broadcast.started_at = BroadcastStatus.SENDING, now
    plan = SendPlan.build(db, broadcast, services)
    # One query streams the rest of the segment in contact order (sorted once, read in
    # batches); a send resumed after a restart starts after the last member it wrote.
    query = _segment_query(plan, _last_handled(db, broadcast.id), now)
    rows = db.connection().execute(query.execution_options(yield_per=BATCH))
    members = _members(rows)
    handled = 0
    while handled < limit:
        size = min(BATCH, limit - handled)
        batch = list(islice(members, size))
        if batch:
            _write(db, plan, batch, now)
            handled += len(batch)
        if len(batch) < size:
            broadcast.status, broadcast.finished_at = BroadcastStatus.SENT, now
            break
    rows.close()
    log.info(
        "broadcast.sent_batch",
        extra={
            "broadcast_id": str(broadcast.id),
            "members": handled,
            "status": broadcast.status.value,
        },
    )
    return handled


def _last_handled(db: Session, broadcast_id: uuid.UUID) -> uuid.UUID | None:
    return db.scalar(
        select(BroadcastRecipient.contact_id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .order_by(BroadcastRecipient.contact_id.desc())
        .limit(1)
    )


def _segment_query(plan: SendPlan, after: uuid.UUID | None, now: datetime) -> Select[Any]:
    query = (
        segments.members(
            plan.segment,
            Contact.id.label("contact_id"),
            Contact.display_name,
            Contact.language,
            Contact.timezone,
            Contact.quiet_hours_start,
            Contact.quiet_hours_end,
            Patient.id.label("patient_id"),
            Center.name.label("center_name"),
            Center.quiet_hours_start.label("center_quiet_start"),
            Center.quiet_hours_end.label("center_quiet_end"),
            Consent.granted.label("consented"),
            ChannelIdentity.id.label("identity_id"),
            ChannelIdentity.channel,
            ChannelIdentity.address,
            ChannelIdentity.stopped_at,
            now=now,
        )
        .join(Center, Center.id == Patient.center_id)
        .outerjoin(Consent, and_(Consent.contact_id == Contact.id, Consent.purpose == plan.purpose))
        .outerjoin(ChannelIdentity, ChannelIdentity.contact_id == Contact.id)
        .order_by(Contact.id, Patient.birth_date, Patient.id, ChannelIdentity.id)
    )
    return query if after is None else query.where(Contact.id > after)


@dataclass(frozen=True)
class _Identity:
    id: uuid.UUID
    channel: Channel
    address: str
    stopped_at: datetime | None


@dataclass
class Member:
    """A contact of the segment: their first link (in order) and every identity they have."""

    row: Row[Any]
    identities: list[_Identity] = field(default_factory=list)

    def add(self, row: Row[Any]) -> None:
        """Keep the identity of one more of the member's rows (each identity once)."""
        if row.identity_id is not None and all(i.id != row.identity_id for i in self.identities):
            self.identities.append(
                _Identity(row.identity_id, row.channel, row.address, row.stopped_at)
            )


def _members(rows: Iterable[Row[Any]]) -> Iterator[Member]:
    # One row per link and identity: a parent of two children is one member.
    current: Member | None = None
    for row in rows:
        if current is None or current.row.contact_id != row.contact_id:
            if current is not None:
                yield current
            current = Member(row)
        current.add(row)
    if current is not None:
        yield current


def _write(db: Session, plan: SendPlan, members: list[Member], now: datetime) -> None:
    recipients: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    work: list[dict[str, Any]] = []
    for member in members:
        row = member.row
        identity, refused = reach.choose(member.identities, plan.channels)
        if refused is None and not row.consented:
            refused = RecipientOutcome.NO_CONSENT
        recipient = {
            "broadcast_id": plan.broadcast_id,
            "contact_id": row.contact_id,
            "outcome": refused,
            "outbox_id": None,
            "due_id": None,
        }
        recipients.append(recipient)
        if identity is None or refused is not None:
            continue
        start, end = reach.quiet_window(
            row.quiet_hours_start, row.quiet_hours_end, row.center_quiet_start, row.center_quiet_end
        )
        when = reach.send_time(now, row.timezone, start, end)
        recipient["outcome"] = RecipientOutcome.DEFERRED if when > now else RecipientOutcome.QUEUED
        if plan.kind == BroadcastKind.INVITATION:
            recipient["due_id"] = uuid.uuid4()
            work.append(_due_row(plan, row, recipient["due_id"], when, now))
        else:
            messages.append(plan.message_row(row, identity, when, now))
    _insert(db, plan, recipients, messages, work)


def _insert(
    db: Session,
    plan: SendPlan,
    recipients: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    work: list[dict[str, Any]],
) -> None:
    outbox.enqueue_rows(db, messages)
    connection = db.connection()  # Core inserts: no unit-of-work bookkeeping per row
    if work:
        connection.execute(insert(cast(Table, DueWork.__table__)), work)
    if messages:
        # The rows' ids by their keys, in one indexed query (RETURNING in order would cost a
        # statement per row on SQLite).
        found = connection.execute(
            select(OutboxMessage.dedupe_key, OutboxMessage.id).where(
                OutboxMessage.dedupe_key.in_([m["dedupe_key"] for m in messages])
            )
        )
        ids = {key: outbox_id for key, outbox_id in found}
        by_contact = {m["contact_id"]: ids[m["dedupe_key"]] for m in messages}
        for recipient in recipients:
            recipient["outbox_id"] = by_contact.get(recipient["contact_id"])
    connection.execute(insert(cast(Table, BroadcastRecipient.__table__)), recipients)
    plan.count(Counter(r["outcome"].value for r in recipients))


def _due_row(
    plan: SendPlan, member: Row[Any], due_id: uuid.UUID, when: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "id": due_id,
        "key": plan.dedupe_key(member.contact_id),
        "kind": "invitation",
        "priority": PRIORITY["invitation"],
        "patient_id": member.patient_id,
        "contact_id": member.contact_id,
        "flow_id": INVITATION_FLOW,
        "slot_at": now,
        "due_at": when,
        "status": DueStatus.PENDING,
        "reason": "quiet hours" if when > now else None,
        "detail": {
            "values": plan.activity_values(member.language, member.timezone),
            "broadcast_id": str(plan.broadcast_id),
        },
        "created_at": now,
    }
