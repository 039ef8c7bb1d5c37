"""What became of broadcasts and invitations: recipients by outcome, messages by delivery,
answers by kind, and the attendee list."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from c3n_bot.service import rsvps, timing
from c3n_bot.store.models import Activity, Broadcast, BroadcastRecipient, DueWork, OutboxMessage
from c3n_bot.store.models.community import BroadcastKind, RecipientOutcome, RsvpResponse
from c3n_bot.store.models.conversations import OutboxStatus
from c3n_bot.store.models.scheduling import DueStatus

# Delivery as an organiser reads it. "sent" counts everything that left (delivered or not).
LEFT = (OutboxStatus.SENT, OutboxStatus.QUEUED, OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED)
FAILED = (OutboxStatus.FAILED, OutboxStatus.UNDELIVERED)
WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING)


@dataclass(frozen=True)
class Results:
    """Recipients by outcome and their messages by delivery state."""

    outcomes: dict[str, int]
    delivery: dict[str, int]

    @property
    def recipients(self) -> int:
        """Every member of the segment when it was sent."""
        return sum(self.outcomes.values())

    @property
    def excluded(self) -> int:
        """Members nothing was sent to (stopped, no consent, no channel)."""
        kept = (RecipientOutcome.QUEUED, RecipientOutcome.DEFERRED)
        return sum(n for outcome, n in self.outcomes.items() if outcome not in kept)


def broadcast_results(db: Session, broadcasts: Iterable[Broadcast]) -> Results:
    """Outcomes and delivery of one or more broadcasts (an activity's invitations)."""
    chosen = list(broadcasts)
    ids = [b.id for b in chosen]
    outcomes = {outcome.value: 0 for outcome in RecipientOutcome}
    for outcome, count in db.execute(
        select(BroadcastRecipient.outcome, func.count())
        .where(BroadcastRecipient.broadcast_id.in_(ids))
        .group_by(BroadcastRecipient.outcome)
    ):
        outcomes[outcome.value] = count
    statuses: Counter[OutboxStatus] = Counter()
    invitations = [b.id for b in chosen if b.kind == BroadcastKind.INVITATION]
    messages = [b.id for b in chosen if b.kind == BroadcastKind.MESSAGE]
    statuses.update(_message_statuses(db, messages))
    statuses.update(_invitation_statuses(db, invitations))
    return Results(outcomes, _delivery(statuses, _not_started(db, invitations)))


def _delivery(statuses: Counter[OutboxStatus], not_started: Counter[str]) -> dict[str, int]:
    return {
        "waiting": sum(statuses[s] for s in WAITING) + not_started["waiting"],
        "sent": sum(statuses[s] for s in LEFT),
        "delivered": statuses[OutboxStatus.DELIVERED],
        "failed": sum(statuses[s] for s in FAILED),
        "cancelled": statuses[OutboxStatus.CANCELLED] + not_started["cancelled"],
    }


def _message_statuses(db: Session, ids: list[uuid.UUID]) -> Counter[OutboxStatus]:
    if not ids:
        return Counter()
    rows = db.execute(
        select(OutboxMessage.status, func.count())
        .join(BroadcastRecipient, BroadcastRecipient.outbox_id == OutboxMessage.id)
        .where(BroadcastRecipient.broadcast_id.in_(ids))
        .group_by(OutboxMessage.status)
    )
    return Counter({status: count for status, count in rows})


def _invitation_statuses(db: Session, ids: list[uuid.UUID]) -> Counter[OutboxStatus]:
    # An invitation is the first message of the flow it started (the contact's rows are
    # indexed; the session narrows them to this flow).
    if not ids:
        return Counter()
    first = (
        select(func.min(OutboxMessage.id).label("id"))
        .select_from(BroadcastRecipient)
        .join(DueWork, DueWork.id == BroadcastRecipient.due_id)
        .join(
            OutboxMessage,
            and_(
                OutboxMessage.contact_id == BroadcastRecipient.contact_id,
                OutboxMessage.session_id == DueWork.session_id,
            ),
        )
        .where(BroadcastRecipient.broadcast_id.in_(ids))
        .group_by(BroadcastRecipient.broadcast_id, BroadcastRecipient.contact_id)
        .subquery()
    )
    rows = db.execute(
        select(OutboxMessage.status, func.count())
        .join(first, first.c.id == OutboxMessage.id)
        .group_by(OutboxMessage.status)
    )
    return Counter({status: count for status, count in rows})


def _not_started(db: Session, ids: list[uuid.UUID]) -> Counter[str]:
    # Due work that has not started its flow yet (quiet hours, a running conversation), or
    # never will (consent withdrawn, stopped since).
    found: Counter[str] = Counter()
    if not ids:
        return found
    rows = db.execute(
        select(DueWork.status, func.count())
        .join(BroadcastRecipient, BroadcastRecipient.due_id == DueWork.id)
        .where(BroadcastRecipient.broadcast_id.in_(ids), DueWork.session_id.is_(None))
        .group_by(DueWork.status)
    )
    for status, count in rows:
        waiting = status in (DueStatus.PENDING, DueStatus.DEFERRED)
        found["waiting" if waiting else "cancelled"] += count
    return found


def activity_results(db: Session, activity: Activity) -> tuple[Results, dict[str, int]]:
    """The activity's invitations (outcomes, delivery) and its answers by kind."""
    invitations = db.scalars(
        select(Broadcast).where(
            Broadcast.activity_id == activity.id, Broadcast.kind == BroadcastKind.INVITATION
        )
    ).all()
    answers = rsvps.answer_counts(db, [activity.id]).get(activity.id, dict(rsvps.NO_ANSWERS))
    return broadcast_results(db, invitations), answers


def attendees(
    db: Session, *, activity_id: uuid.UUID, allowed: Collection[uuid.UUID]
) -> tuple[Activity, list[rsvps.Answer]]:
    """Those who said yes, with a place or on the waitlist, in the order they answered."""
    activity, answers = rsvps.answers(db, activity_id=activity_id, centers=allowed)
    return activity, [a for a in answers if a.response == RsvpResponse.YES]


CSV_COLUMNS = ("name", "status", "answered_at")
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def attendees_csv(activity: Activity, answers: Iterable[rsvps.Answer]) -> str:
    """The attendee list as CSV: name, attending or waitlist, when they answered (local time)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    zone = timing.load_zone(activity.timezone)
    for answer in answers:
        status = "waitlist" if answer.waitlisted else "attending"
        when = timing.as_utc(answer.responded_at).astimezone(zone).isoformat(timespec="minutes")
        writer.writerow((_cell(answer.name), status, when))
    return out.getvalue()


def _cell(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_START) else text
