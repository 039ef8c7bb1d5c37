"""The outbox dispatcher: claims due rows, paces them per channel and recipient, sends, records.

At-most-once: a row is marked `sending` and committed before the provider is called, and
its result is committed right after. If the process dies between the provider's answer and
that commit, the row is left in `sending`; after STALE_SENDING it is sent again. That
window (one provider call) is the only way a message can leave twice. A message split into
several SMS records its progress only when `send()` returns, so a crash part-way through
resends the parts that already left.

On PostgreSQL each provider channel is sent by one worker at a time, the holder of its
advisory lease: the provider's limits are the bot's or the sender's, not one process's. A
worker that takes the lease over from one that died sends at once what that one left in
`sending` (logged as `outbox.recovered`), instead of after STALE_SENDING: the lease window.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    bindparam,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased, sessionmaker

from c3n_bot.service.delivery import Outgoing, RateLimit, Sender, SendResult
from c3n_bot.service.drain_loop import DrainLoop
from c3n_bot.service.pacing import Pacer
from c3n_bot.store.advisory import AdvisoryLease, Holding
from c3n_bot.store.base import Channel
from c3n_bot.store.literals import inline
from c3n_bot.store.models import ChannelIdentity, DeliveryAttempt, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus
from c3n_bot.store.types import UTCDateTime

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=5)
# How often a claim first looks for rows left in `sending` longer than STALE_SENDING.
STALE_SWEEP_EVERY = timedelta(seconds=30)
MAX_ATTEMPTS = 12
BACKOFF_CAP_SECONDS = 600.0


class Dispatcher(DrainLoop):
    """Sends due outbox rows; `wake()` after a commit makes it look at once."""

    event = "dispatcher"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        senders: Mapping[Channel, Sender],
        clock: Callable[[], datetime],
        *,
        limits: Mapping[Channel, RateLimit] | None = None,
        batch: int = 100,
        idle_wait: float = 1.0,
        jitter: Callable[[], float] = random.random,
        monotonic: Callable[[], float] | None = None,
        sleep: Callable[[float], object] | None = None,
        lease: AdvisoryLease | None = None,
    ) -> None:
        self._sessions = sessions
        self._senders = dict(senders)
        self._channels = frozenset(self._senders)
        self._clock = clock
        # A virtual clock and its sleep (tests, benchmarks) replace the pacer's real time.
        pacing = limits or {}
        self._pacer = Pacer(pacing) if monotonic is None else Pacer(pacing, monotonic=monotonic)
        self._sleep = sleep
        self._batch = batch
        self._jitter = jitter
        self._lease = lease
        self._must_recover = False
        # Built once: a claim runs on every wake-up, and building it cost more than running it.
        self._claimable = claim_statement(list(self._senders), batch)
        self._last_sweep: datetime | None = None
        super().__init__(idle_wait=idle_wait)

    def wake_for(self, channels: Collection[Channel] | None) -> None:
        """Wake up if rows were written to one of this dispatcher's channels (None: unknown)."""
        if channels is None or not self._channels.isdisjoint(channels):
            self.wake()

    def close(self) -> None:
        """Release the senders' connections (and the lease)."""
        for sender in self._senders.values():
            sender.close()
        if self._lease is not None:
            self._lease.release()

    def drain_once(self) -> int:
        """Claim one batch and send what the rate limits allow now; returns rows handled."""
        if not self._leased():
            return 0
        if self._must_recover:
            self._recover()
        claimed = self._claim()
        for message, stopped in claimed:
            if self._stopping.is_set():
                self._release(message, self._clock())
                continue
            if not self._leased() or self._must_recover:
                continue  # left in `sending`: whoever holds the lease now recovers it
            self._handle(message, stopped)
        return len(claimed)

    def _leased(self) -> bool:
        """Whether this dispatcher may send now: always, unless its lease is another's."""
        if self._lease is None:
            return True
        holding = self._lease.hold()
        if holding is Holding.TAKEN:
            self._must_recover = True
        return holding is not Holding.NO

    def _recover(self) -> None:
        """Send again what the lease's previous holder left in `sending` (it died or was cut
        off mid-send: the message it was sending may leave twice, the lease window)."""
        with self._sessions.begin() as db:
            recovered = db.scalars(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.SENDING,
                    OutboxMessage.channel.in_(list(self._senders)),
                )
                .values(status=OutboxStatus.PENDING)
                .returning(OutboxMessage.id)
            ).all()
        self._must_recover = False
        if recovered:
            log.warning("outbox.recovered", extra={"outbox_ids": sorted(recovered)})

    def _handle(self, message: Outgoing, stopped: bool) -> None:
        sender = self._senders[message.channel]
        if stopped and not message.payload.get("force"):
            self._finish(message, SendResult("cancelled", detail="recipient stopped"))
            return
        key = sender.rate_key(message)
        wait = self._pacer.recipient_wait(message.channel, key)
        if wait > 0:
            self._release(message, self._clock() + timedelta(seconds=wait))
            return
        self._pacer.take(message.channel, key, sleep=self._sleep or self._stopping.wait)
        result = _safe_send(sender, message)
        self._pacer.answered(message.channel, key)
        if result.retry_after:
            self._pacer.pause(message.channel, key, result.retry_after)
        self._finish(message, result)

    def _claim(self) -> list[tuple[Outgoing, bool]]:
        now = self._clock()
        with self._sessions.begin() as db:
            if self._last_sweep is None or now - self._last_sweep >= STALE_SWEEP_EVERY:
                db.execute(_UNSTICK, {"before": now - STALE_SENDING})
                self._last_sweep = now
            rows = db.execute(self._claimable, {"now": now}).all()
            for row, _stopped in rows:
                row.status = OutboxStatus.SENDING
                row.next_attempt_at = now
            return [(_outgoing(row), stopped_at is not None) for row, stopped_at in rows]

    def _release(self, message: Outgoing, at: datetime) -> None:
        with self._sessions.begin() as db:
            db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id)
                .values(status=OutboxStatus.PENDING, next_attempt_at=at)
            )

    def _finish(self, message: Outgoing, result: SendResult) -> None:
        now = self._clock()
        changes = attempt_changes(message, result, now=now, jitter=self._jitter())
        with self._sessions.begin() as db:
            # Core statements: the claimed row's attempts and payload are what the row holds
            # (only the lease holder changes them), so nothing is read back first.
            identity_id = db.execute(
                update(_outbox)
                .where(_outbox.c.id == message.id)
                .values(changes)
                .returning(_outbox.c.identity_id)
            ).first()
            if identity_id is None:
                return  # the row is gone: nothing to record against
            db.execute(
                _INSERT_ATTEMPT,
                {
                    "outbox_id": message.id,
                    "at": now,
                    "outcome": result.outcome,
                    "status_code": result.status_code,
                    "error_code": result.error_code,
                    "detail": (result.detail or "")[:200] or None,
                },
            )
            if result.stop_identity and identity_id[0] is not None:
                db.execute(_STOP_IDENTITY, {"identity_id": identity_id[0], "now": now})
        log.info(
            "outbox.attempt",
            extra={
                "outbox_id": message.id,
                "outcome": result.outcome,
                "channel": message.channel.value,
            },
        )


_outbox = cast(Table, OutboxMessage.__table__)
_INSERT_ATTEMPT = insert(cast(Table, DeliveryAttempt.__table__))
_identities = cast(Table, ChannelIdentity.__table__)
# The provider says the address refuses messages: stopped from now, unless it already was.
_STOP_IDENTITY = (
    update(_identities)
    .where(_identities.c.id == bindparam("identity_id"), _identities.c.stopped_at.is_(None))
    .values(stopped_at=bindparam("now"))
)
# Rows a dead process left in `sending` (their send may or may not have left): pending again.
_UNSTICK = (
    update(OutboxMessage)
    .where(
        OutboxMessage.status == OutboxStatus.SENDING,
        OutboxMessage.next_attempt_at < bindparam("before", type_=UTCDateTime()),
    )
    .values(status=OutboxStatus.PENDING)
)


def claim_statement(
    channels: list[Channel], batch: int, *, now: datetime | None = None
) -> Select[OutboxMessage, datetime | None]:
    """Rows of these channels due at the parameter `now` (given when executed), pending, in
    send order (with their identity's stop), none with an earlier open row to its address,
    locked for this claim. Served by the indexes ix_outbox_claim (the order) and
    ix_outbox_open_address (the check), so a claim reads about `batch` rows however long the
    backlog."""
    return (
        select(OutboxMessage, ChannelIdentity.stopped_at)
        .outerjoin(ChannelIdentity, ChannelIdentity.id == OutboxMessage.identity_id)
        .where(
            OutboxMessage.status == inline(OutboxStatus.PENDING),
            OutboxMessage.next_attempt_at <= bindparam("now", now, type_=UTCDateTime()),
            OutboxMessage.channel.in_(channels),
            ~exists(_earlier_open_row()),
        )
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
        .limit(batch)
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )


def _earlier_open_row() -> Select[int]:
    # A recipient gets messages in order: a row waits while an earlier one of at least its
    # priority is still open (pending, retrying or being sent), so one chat has at most one
    # row in flight and a retried message is never overtaken.
    earlier = aliased(OutboxMessage)
    return select(earlier.id).where(
        earlier.channel == OutboxMessage.channel,
        earlier.address == OutboxMessage.address,
        earlier.id < OutboxMessage.id,
        earlier.priority >= OutboxMessage.priority,
        earlier.status.in_([inline(OutboxStatus.PENDING), inline(OutboxStatus.SENDING)]),
    )


def _outgoing(row: OutboxMessage) -> Outgoing:
    return Outgoing(
        id=row.id,
        channel=row.channel,
        address=row.address,
        kind=row.kind,
        body=row.body,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
    )


def _safe_send(sender: Sender, message: Outgoing) -> SendResult:
    try:
        return sender.send(message)
    except Exception as exc:  # a sender bug must not kill the loop or lose the row
        log.exception("outbox.sender_error", extra={"outbox_id": message.id})
        return SendResult("retry", detail=f"sender error: {type(exc).__name__}")


def backoff_seconds(attempts: int, jitter: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, 2.0 ** max(attempts, 1))
    return ceiling / 2 + ceiling / 2 * jitter


def attempt_changes(
    message: Outgoing, result: SendResult, *, now: datetime, jitter: float = 0.5
) -> dict[str, Any]:
    """The outbox row's new values after one send of `message` (as claimed) gave `result`."""
    attempts = message.attempts if result.outcome == "cancelled" else message.attempts + 1
    changes: dict[str, Any] = {"attempts": attempts}
    if result.progress:
        changes["payload"] = {**message.payload, **result.progress}
    if result.outcome == "sent":
        changes |= {
            "status": OutboxStatus.SENT,
            "sent_at": now,
            "provider_message_id": result.provider_message_id,
        }
    elif result.outcome == "retry" and attempts < MAX_ATTEMPTS:
        delay = result.retry_after or backoff_seconds(attempts, jitter)
        changes |= {
            "status": OutboxStatus.PENDING,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": (result.detail or "")[:200] or None,
        }
    elif result.outcome == "cancelled":
        changes |= {"status": OutboxStatus.CANCELLED, "last_error": result.detail}
    else:
        changes |= {"status": OutboxStatus.FAILED, "last_error": (result.detail or "gave up")[:200]}
    return changes
