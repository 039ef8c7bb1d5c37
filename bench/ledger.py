"""What a batch of families left behind, from the database and the fakes: the run's checks.

Nothing lost: every session completed, one submission each (created once at the FHIR sink),
every webhook stored and handled, every outbox row sent. Nothing twice: the messages the
fakes accepted are, address by address and text by text, exactly the ones the sent rows
render to (split into parts as the channels split them). A message accepted more often is a
resend; one to a recipient whose message was being sent when a worker died is the
dispatcher's documented at-most-once window (its lease), any other is a duplicate.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.common import Family
from bench.providers import Providers
from c3n_bot.channels.sms_encoding import sms_body
from c3n_bot.channels.sms_split import split_for_sms
from c3n_bot.channels.telegram_render import message_text, split_text
from c3n_bot.channels.text import render_text
from c3n_bot.registry.fhir_ids import SUBMISSION_IDENTIFIER_SYSTEM
from c3n_bot.store.base import Channel
from c3n_bot.store.models import (
    ChannelIdentity,
    ConversationSession,
    InboundMessage,
    OutboxMessage,
    RegistryDelivery,
    Submission,
)
from c3n_bot.store.models.conversations import OutboxStatus, SessionStatus
from c3n_bot.store.models.registry import DeliveryStatus

Message = tuple[Channel, str, str]  # channel, address, text
OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
ACK = "ack"  # a button press's acknowledgement: no message to the chat


@dataclass(frozen=True)
class Progress:
    """Where a batch stands: the run is over when `settled`."""

    families: int
    sessions: int
    completed: int
    open_rows: int
    pending_pushes: int

    @property
    def settled(self) -> bool:
        done = self.completed == self.sessions == self.families
        return done and not self.open_rows and not self.pending_pushes


@dataclass
class Ledger:
    """The checks of one batch."""

    families: int
    sessions: Counter[str] = field(default_factory=Counter)
    submissions: int = 0
    inbound: int = 0
    unhandled: int = 0
    rows: Counter[str] = field(default_factory=Counter)  # outbox rows by status
    expected: Counter[Message] = field(default_factory=Counter)  # from the sent rows
    accepted: Counter[Message] = field(default_factory=Counter)  # by the fakes
    fhir_created: int = 0  # QuestionnaireResponses at the sink for this batch
    fhir_pushes: int = 0  # transactions carrying them (a re-push creates nothing)
    pushes_delivered: int = 0
    lease: frozenset[tuple[Channel, str]] = frozenset()  # recipients in flight at a kill

    @property
    def lost(self) -> Counter[Message]:
        """Messages the rows say were sent that no fake accepted."""
        return self.expected - self.accepted

    @property
    def resent(self) -> Counter[Message]:
        """Messages accepted more often than sent rows account for."""
        return self.accepted - self.expected

    @property
    def lease_resends(self) -> int:
        """Resends to a recipient whose message was in flight when a worker was killed."""
        return sum(n for (ch, addr, _), n in self.resent.items() if (ch, addr) in self.lease)

    @property
    def duplicates(self) -> int:
        """Resends outside the lease window: never allowed."""
        return sum(self.resent.values()) - self.lease_resends

    def failures(self, webhooks: int) -> list[str]:
        """What went wrong (empty when everything held); `webhooks` the driver got 200 for."""
        checks = {
            "sessions not all completed": self.sessions[SessionStatus.COMPLETED] != self.families,
            "submissions != sessions": self.submissions != self.families,
            "FHIR sink: a submission missing or twice": self.fhir_created != self.families,
            "registry pushes not all delivered": self.pushes_delivered != self.families,
            "inbound rows != webhooks answered": self.inbound != webhooks,
            "inbound rows not handled": self.unhandled > 0,
            "outbox rows not all sent": self.rows[OutboxStatus.SENT] != sum(self.rows.values()),
            "messages lost": bool(self.lost),
            "messages sent twice": self.duplicates > 0,
        }
        return [name for name, failed in checks.items() if failed]

    def lines(self, webhooks: int) -> list[str]:
        """The figures, as printed."""
        resent = f"{self.lease_resends} resent in the lease window, {self.duplicates} duplicates"
        return [
            f"sessions {dict(self.sessions)} of {self.families}; submissions {self.submissions}; "
            f"FHIR sink: {self.fhir_created} created by {self.fhir_pushes} pushes",
            f"webhooks answered 200 (distinct) {webhooks}; inbound rows {self.inbound}, "
            f"unhandled {self.unhandled}",
            f"outbox rows {dict(self.rows)}; provider messages expected "
            f"{sum(self.expected.values())}, accepted {sum(self.accepted.values())}; "
            f"lost {sum(self.lost.values())}; {resent}",
        ]


def progress(db: Session, families: Sequence[Family]) -> Progress:
    """Sessions completed, open outbox rows and pending pushes of the batch."""
    contacts = [family.contact_id for family in families]
    statuses = dict(_session_statuses(db, contacts))
    open_rows = db.scalar(
        select(func.count()).where(
            OutboxMessage.contact_id.in_(contacts), OutboxMessage.status.in_(OPEN)
        )
    )
    pending = db.scalar(
        select(func.count())
        .select_from(RegistryDelivery)
        .join(Submission, Submission.id == RegistryDelivery.submission_id)
        .where(
            Submission.reporter_contact_id.in_(contacts),
            RegistryDelivery.status == DeliveryStatus.PENDING,
        )
    )
    return Progress(
        families=len(families),
        sessions=sum(statuses.values()),
        completed=statuses.get(SessionStatus.COMPLETED, 0),
        open_rows=open_rows or 0,
        pending_pushes=pending or 0,
    )


def account(
    db: Session,
    families: Sequence[Family],
    providers: Providers,
    *,
    lease: Iterable[tuple[Channel, str]] = (),
) -> Ledger:
    """Everything the batch left in the database and at the fakes."""
    contacts = [family.contact_id for family in families]
    addresses = {(family.channel, family.address) for family in families}
    ledger = Ledger(families=len(families), lease=frozenset(lease))
    ledger.sessions.update({str(k): v for k, v in _session_statuses(db, contacts)})
    submissions = list(
        db.scalars(select(Submission.id).where(Submission.reporter_contact_id.in_(contacts)))
    )
    ledger.submissions = len(submissions)
    ledger.pushes_delivered = (
        db.scalar(
            select(func.count()).where(
                RegistryDelivery.submission_id.in_(submissions),
                RegistryDelivery.status == DeliveryStatus.DELIVERED,
            )
        )
        or 0
    )
    _count_inbound(db, contacts, ledger)
    for row in db.scalars(select(OutboxMessage).where(OutboxMessage.contact_id.in_(contacts))):
        ledger.rows[str(row.status)] += 1
        if row.status == OutboxStatus.SENT and row.kind != ACK:
            ledger.expected.update((row.channel, row.address, part) for part in parts(row))
    ledger.accepted.update(m for m in providers.sent() if (m[0], m[1]) in addresses)
    ledger.fhir_created, ledger.fhir_pushes = _at_sink(providers, {str(s) for s in submissions})
    return ledger


def parts(row: OutboxMessage) -> list[str]:
    """The texts a sent row reached its provider as, split as its channel splits them."""
    payload = row.payload or {}
    if row.channel == Channel.TELEGRAM:
        return split_text(message_text(row.body, payload))
    return split_for_sms(sms_body(render_text(row.body, payload)))


def _session_statuses(db: Session, contacts: list[uuid.UUID]) -> list[tuple[str, int]]:
    rows = db.execute(
        select(ConversationSession.status, func.count())
        .where(ConversationSession.contact_id.in_(contacts))
        .group_by(ConversationSession.status)
    )
    return [(str(status), count) for status, count in rows]


def _count_inbound(db: Session, contacts: list[uuid.UUID], ledger: Ledger) -> None:
    identities = select(ChannelIdentity.id).where(ChannelIdentity.contact_id.in_(contacts))
    for handled, count in db.execute(
        select(InboundMessage.handled_at.is_not(None), func.count())
        .where(InboundMessage.identity_id.in_(identities))
        .group_by(InboundMessage.handled_at.is_not(None))
    ):
        ledger.inbound += count
        if not handled:
            ledger.unhandled += count


def _at_sink(providers: Providers, submissions: set[str]) -> tuple[int, int]:
    """QuestionnaireResponses created for these submissions, and the pushes carrying them."""
    created = sum(
        1
        for resource in list(providers.fhir.resources.get("QuestionnaireResponse", []))
        if _submission_of(resource) in submissions
    )
    pushes = sum(
        1
        for bundle in list(providers.fhir.transactions)
        for entry in bundle.get("entry", [])
        if entry["resource"].get("resourceType") == "QuestionnaireResponse"
        and _submission_of(entry["resource"]) in submissions
    )
    return created, pushes


def _submission_of(resource: dict[str, object]) -> str | None:
    identifiers = resource.get("identifier")
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for identifier in identifiers if isinstance(identifiers, list) else []:
        if (
            isinstance(identifier, dict)
            and identifier.get("system") == SUBMISSION_IDENTIFIER_SYSTEM
        ):
            return str(identifier.get("value"))
    return None
