"""One worker at a time sends a provider channel on PostgreSQL; a takeover resends at once."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import Settings
from c3n_bot.engine.events import MessageOut
from c3n_bot.service.delivery import Outgoing, SendResult
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.service.outbox import enqueue_to
from c3n_bot.service.workers import Runtime
from c3n_bot.store.advisory import AdvisoryLease, Holding
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus
from tests.conftest import sqlalchemy_url

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


class Recorder:
    """A Telegram sender that records what it was asked to send."""

    channel = Channel.TELEGRAM

    def __init__(self) -> None:
        self.sent: list[int] = []

    def send(self, message: Outgoing) -> SendResult:
        self.sent.append(message.id)
        return SendResult("sent", provider_message_id=f"p-{message.id}")

    def rate_key(self, message: Outgoing) -> str | None:
        return None

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def _lease(database_url: str) -> AdvisoryLease:
    return AdvisoryLease(sqlalchemy_url(database_url), "test-dispatch-telegram", retry_seconds=0)


def _enqueue(sessions: sessionmaker[Session], now: datetime, count: int) -> list[int]:
    with sessions.begin() as db:
        return [
            enqueue_to(
                db,
                channel=Channel.TELEGRAM,
                address=str(5000 + n),
                identity=None,
                message=MessageOut(text=f"m{n}"),
                kind="reply",
                now=now,
            )
            for n in range(count)
        ]


def test_one_holder_at_a_time_and_the_next_takes_over_when_it_goes(database_url: str) -> None:
    first, second = _lease(database_url), _lease(database_url)
    try:
        assert first.hold() is Holding.TAKEN
        assert first.hold() is Holding.KEPT
        assert second.hold() is Holding.NO

        first.release()  # as when its process dies: the connection closes

        assert second.hold() is Holding.TAKEN
        assert first.hold() is Holding.NO
    finally:
        first.release()
        second.release()


def test_without_the_lease_a_dispatcher_sends_nothing(
    database_url: str, sessions: sessionmaker[Session], now: datetime
) -> None:
    rows = _enqueue(sessions, now, 3)
    other, sender = _lease(database_url), Recorder()
    dispatcher = Dispatcher(
        sessions, {Channel.TELEGRAM: sender}, lambda: now, lease=_lease(database_url)
    )
    try:
        assert other.hold() is Holding.TAKEN
        assert dispatcher.drain_once() == 0
        other.release()
        assert dispatcher.drain_once() == 3
    finally:
        dispatcher.close()
    assert sender.sent == rows


def test_a_takeover_sends_at_once_what_the_dead_holder_left_sending(
    database_url: str,
    sessions: sessionmaker[Session],
    now: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stuck, waiting = _enqueue(sessions, now, 2)
    dead = _lease(database_url)
    assert dead.hold() is Holding.TAKEN
    with sessions.begin() as db:  # the holder claimed a row, then was killed mid-send
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == stuck)
            .values(status=OutboxStatus.SENDING, next_attempt_at=now)
        )
    dead.release()
    sender = Recorder()
    dispatcher = Dispatcher(
        sessions, {Channel.TELEGRAM: sender}, lambda: now, lease=_lease(database_url)
    )
    try:
        with caplog.at_level(logging.WARNING, logger="c3n_bot.service.dispatcher"):
            dispatcher.drain_once()
    finally:
        dispatcher.close()

    assert sorted(sender.sent) == [stuck, waiting]  # not after STALE_SENDING: now
    recovered = [r for r in caplog.records if r.getMessage() == "outbox.recovered"]
    assert [r.__dict__["outbox_ids"] for r in recovered] == [[stuck]]


def test_workers_lease_their_provider_channels_on_postgresql_only(settings: Settings) -> None:
    runtime = Runtime.build(settings)
    try:
        telegram = runtime.lease([Channel.TELEGRAM])
        assert telegram is not None and telegram.name == "c3n-dispatch-telegram"
        assert runtime.lease([Channel.WEB, Channel.CONSOLE]) is None
    finally:
        runtime.engine.dispose()
