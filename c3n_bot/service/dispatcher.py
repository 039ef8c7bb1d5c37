"""The outbox dispatcher: claims due rows, paces them per channel and recipient, sends, records.

At-most-once: a row is marked `sending` and committed before the provider is called, and
its result is committed right after. If the process dies between the provider's answer and
that commit, the row is left in `sending`; after STALE_SENDING it is sent again. That
window (one provider call) is the only way a message can leave twice. A message split into
several SMS records its progress only when `send()` returns, so a crash part-way through
resends the parts that already left.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from c3n_bot.service.delivery import Outgoing, RateLimit, Sender, SendResult
from c3n_bot.service.pacing import Pacer
from c3n_bot.store.base import Channel
from c3n_bot.store.models import ChannelIdentity, DeliveryAttempt, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=5)
MAX_ATTEMPTS = 12
BACKOFF_CAP_SECONDS = 600.0


class Dispatcher:
    """Sends due outbox rows; `wake()` after a commit makes it look at once."""

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
    ) -> None:
        self._sessions = sessions
        self._senders = dict(senders)
        self._clock = clock
        self._pacer = Pacer(limits or {})
        self._batch = batch
        self._idle_wait = idle_wait
        self._jitter = jitter
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Ask the loop to look for due rows now."""
        self._wakeup.set()

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current message and stop."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for sender in self._senders.values():
            sender.close()

    def run(self) -> None:
        """Loop until stopped: drain due rows, then wait for a wake-up or the idle interval."""
        log.info("dispatcher.started")
        while not self._stopping.is_set():
            try:
                handled = self.drain_once()
            except Exception:
                log.exception("dispatcher.error")
                handled = 0
            if handled == 0:
                self._wakeup.wait(self._idle_wait)
                self._wakeup.clear()
        log.info("dispatcher.stopped")

    def drain_once(self) -> int:
        """Claim one batch and send what the rate limits allow now; returns rows handled."""
        claimed = self._claim()
        for message, stopped in claimed:
            if self._stopping.is_set():
                self._release(message, self._clock())
                continue
            self._handle(message, stopped)
        return len(claimed)

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
        self._pacer.take(message.channel, key, sleep=self._stopping.wait)
        result = _safe_send(sender, message)
        self._pacer.answered(message.channel)
        if result.retry_after:
            self._pacer.pause(message.channel, key, result.retry_after)
        self._finish(message, result)

    def _claim(self) -> list[tuple[Outgoing, bool]]:
        now = self._clock()
        with self._sessions.begin() as db:
            db.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.SENDING,
                    OutboxMessage.next_attempt_at < now - STALE_SENDING,
                )
                .values(status=OutboxStatus.PENDING)
            )
            rows = db.execute(
                select(OutboxMessage, ChannelIdentity.stopped_at)
                .outerjoin(ChannelIdentity, ChannelIdentity.id == OutboxMessage.identity_id)
                .where(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.channel.in_(list(self._senders)),
                    ~exists(_earlier_open_row()),
                )
                .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True, of=OutboxMessage)
            ).all()
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
        with self._sessions.begin() as db:
            row = db.get(OutboxMessage, message.id)
            if row is None:
                return
            record_attempt(db, row, result, now=now, jitter=self._jitter())
        log.info(
            "outbox.attempt",
            extra={
                "outbox_id": message.id,
                "outcome": result.outcome,
                "channel": message.channel.value,
            },
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
        earlier.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
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


def record_attempt(
    db: Session, message: OutboxMessage, result: SendResult, *, now: datetime, jitter: float = 0.5
) -> None:
    """Apply a send result to the row and keep the attempt."""
    if result.outcome != "cancelled":
        message.attempts += 1
    db.add(
        DeliveryAttempt(
            outbox_id=message.id,
            at=now,
            outcome=result.outcome,
            status_code=result.status_code,
            error_code=result.error_code,
            detail=(result.detail or "")[:200] or None,
        )
    )
    if result.progress:
        message.payload = {**(message.payload or {}), **result.progress}
    if result.stop_identity and message.identity_id is not None:
        identity = db.get(ChannelIdentity, message.identity_id)
        if identity is not None and identity.stopped_at is None:
            identity.stopped_at = now
    if result.outcome == "sent":
        message.status = OutboxStatus.SENT
        message.sent_at = now
        message.provider_message_id = result.provider_message_id
    elif result.outcome == "retry" and message.attempts < MAX_ATTEMPTS:
        delay = result.retry_after or backoff_seconds(message.attempts, jitter)
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now + timedelta(seconds=delay)
        message.last_error = (result.detail or "")[:200] or None
    elif result.outcome == "cancelled":
        message.status = OutboxStatus.CANCELLED
        message.last_error = result.detail
    else:
        message.status = OutboxStatus.FAILED
        message.last_error = (result.detail or "gave up")[:200]
