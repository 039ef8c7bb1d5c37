"""The outbox dispatcher: claims due rows, hands them to channel senders, records each attempt."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.store.base import Channel
from c3n_bot.store.models import DeliveryAttempt, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus

log = logging.getLogger(__name__)

# A row left in "sending" this long belongs to a dispatcher that died mid-send.
STALE_SENDING = timedelta(minutes=5)


@dataclass(frozen=True)
class SendResult:
    """What a channel made of one send: sent, or retry later, or failed for good."""

    outcome: str  # "sent" | "retry" | "failed"
    provider_message_id: str | None = None
    retry_after: float | None = None
    status_code: int | None = None
    error_code: str | None = None
    detail: str | None = None


class Sender(Protocol):
    """A channel's outbound half."""

    def send(self, message: OutboxMessage) -> SendResult:
        """Deliver one message to the provider."""
        ...


class LocalSender:
    """The web simulator and console read their messages from the outbox itself."""

    def send(self, message: OutboxMessage) -> SendResult:
        """Nothing leaves the process: the row is the delivery."""
        return SendResult(outcome="sent", provider_message_id=f"local-{message.id}")


def default_senders() -> dict[Channel, Sender]:
    """Senders that need no credentials."""
    return {Channel.WEB: LocalSender(), Channel.CONSOLE: LocalSender()}


class Dispatcher:
    """Sends due outbox rows; `wake()` after a commit makes it look at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        senders: Mapping[Channel, Sender],
        clock: Callable[[], datetime],
        *,
        batch: int = 50,
        idle_wait: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._senders = dict(senders)
        self._clock = clock
        self._batch = batch
        self._idle_wait = idle_wait
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
        """Finish the current batch and stop."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Loop until stopped: drain due rows, then wait for a wake-up or the idle interval."""
        log.info("dispatcher.started")
        while not self._stopping.is_set():
            try:
                sent = self.drain_once()
            except Exception:
                log.exception("dispatcher.error")
                sent = 0
            if sent == 0:
                self._wakeup.wait(self._idle_wait)
                self._wakeup.clear()
        log.info("dispatcher.stopped")

    def drain_once(self) -> int:
        """Claim and send one batch of due rows; returns how many were handled."""
        claimed = self._claim()
        for message_id in claimed:
            self._send(message_id)
        return len(claimed)

    def _claim(self) -> list[int]:
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
            query = (
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.next_attempt_at <= now,
                    OutboxMessage.channel.in_(list(self._senders)),
                )
                .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            )
            ids = list(db.scalars(query))
            if ids:
                db.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids))
                    .values(status=OutboxStatus.SENDING, next_attempt_at=now)
                )
            return ids

    def _send(self, message_id: int) -> None:
        with self._sessions() as db:
            message = db.get(OutboxMessage, message_id)
            if message is None or message.status != OutboxStatus.SENDING:
                return
            result = self._senders[message.channel].send(message)
            record_attempt(db, message, result, now=self._clock())
            db.commit()
        log.info("outbox.attempt", extra={"outbox_id": message_id, "outcome": result.outcome})


def record_attempt(
    db: Session, message: OutboxMessage, result: SendResult, *, now: datetime
) -> None:
    """Apply a send result to the row and keep the attempt."""
    message.attempts += 1
    db.add(
        DeliveryAttempt(
            outbox_id=message.id,
            at=now,
            outcome=result.outcome,
            status_code=result.status_code,
            error_code=result.error_code,
            detail=result.detail,
        )
    )
    if result.outcome == "sent":
        message.status = OutboxStatus.SENT
        message.sent_at = now
        message.provider_message_id = result.provider_message_id
    elif result.outcome == "retry":
        delay = result.retry_after or min(2**message.attempts, 300)
        message.status = OutboxStatus.PENDING
        message.next_attempt_at = now + timedelta(seconds=delay)
        message.last_error = result.detail
    else:
        message.status = OutboxStatus.FAILED
        message.last_error = result.detail
