"""The outbox dispatcher against a scripted in-memory sender, on a manual clock.

Every test that touches the database runs on SQLite and PostgreSQL; the concurrent drain and
the cross-process NOTIFY are PostgreSQL's alone. Pacing runs on a manual monotonic clock, and
nothing waits for real beyond a few milliseconds except a bounded poll for a background thread.
"""

from __future__ import annotations

import functools
import queue
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import Settings
from c3n_bot.engine.events import MessageOut
from c3n_bot.service import dispatcher as dispatcher_module
from c3n_bot.service import workers
from c3n_bot.service.delivery import LocalSender, Outgoing, RateLimit, Sender, SendResult
from c3n_bot.service.dispatcher import (
    BACKOFF_CAP_SECONDS,
    MAX_ATTEMPTS,
    STALE_SENDING,
    Dispatcher,
    attempt_changes,
    backoff_seconds,
    claim_statement,
)
from c3n_bot.service.outbox import (
    NOTIFY_CHANNEL,
    PRIORITY,
    enqueue_rows,
    enqueue_to,
    message_row,
)
from c3n_bot.service.pacing import Pacer
from c3n_bot.service.workers import Runtime
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import ChannelIdentity, DeliveryAttempt, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus
from c3n_bot.store.notify import Listener
from tests.builders import make_contact, make_identity
from tests.conftest import sqlalchemy_url

# A background thread must finish within this; generous for a loaded CI machine.
POLL_DEADLINE = 5.0
# How fast a woken dispatcher must send (its idle interval is a minute in these tests).
WAKE_DEADLINE = 1.0
FAST_TELEGRAM = RateLimit(per_second=1_000.0, per_recipient_per_second=1.0)


class ManualClock:
    """Wall time for the dispatcher and monotonic time for its pacer, moved together."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return 10_000.0 + self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


Script = SendResult | Exception


class FakeSender:
    """Records every send and answers from a script (then "sent"); keyed by address or not."""

    def __init__(
        self,
        channel: Channel,
        *script: Script,
        keyed: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        pause: float = 0.0,
    ) -> None:
        self.channel = channel
        self.calls: list[Outgoing] = []
        self.times: list[float] = []
        self.closed = False
        self._script: deque[Script] = deque(script)
        self._keyed = keyed
        self._monotonic = monotonic
        self._pause = pause
        self._lock = threading.Lock()

    def script(self, *results: Script) -> None:
        self._script.extend(results)

    def send(self, message: Outgoing) -> SendResult:
        with self._lock:
            self.calls.append(message)
            self.times.append(self._monotonic())
            answer = self._script.popleft() if self._script else None
        if self._pause:
            time.sleep(self._pause)  # lets two dispatchers interleave
        if isinstance(answer, Exception):
            raise answer
        return answer or SendResult("sent", provider_message_id=f"p-{message.id}")

    def rate_key(self, message: Outgoing) -> str | None:
        return message.address if self._keyed else None

    def close(self) -> None:
        self.closed = True

    @property
    def sent_ids(self) -> list[int]:
        return [message.id for message in self.calls]


def _fake(sender: FakeSender) -> Sender:
    # FakeSender satisfies the protocol; this checks it for mypy.
    return sender


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def clock(now: datetime) -> ManualClock:
    return ManualClock(now)


@pytest.fixture
def make_dispatcher(
    sessions: sessionmaker[Session], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Dispatcher]]:
    """Dispatchers on the manual clock (wall and pacing), stopped after the test."""
    manual_pacer = functools.partial(Pacer, monotonic=clock.monotonic)
    monkeypatch.setattr(dispatcher_module, "Pacer", manual_pacer)
    made: list[Dispatcher] = []

    def build(*senders: FakeSender, **options: Any) -> Dispatcher:
        options.setdefault("jitter", lambda: 0.5)
        built = Dispatcher(sessions, {s.channel: _fake(s) for s in senders}, clock.now, **options)
        made.append(built)
        return built

    yield build
    for built in made:
        built.stop(timeout=POLL_DEADLINE)


def _reply(db: Session, channel: Channel, address: str, now: datetime, *, text: str) -> int:
    """A reply to an address with no identity yet, in the caller's transaction."""
    return enqueue_to(
        db,
        channel=channel,
        address=address,
        identity=None,
        message=MessageOut(text=text),
        kind="reply",
        now=now,
    )


def _enqueue(
    sessions: sessionmaker[Session],
    *,
    channel: Channel = Channel.TELEGRAM,
    address: str = "1001",
    kind: str = "reply",
    at: datetime,
    identity_id: uuid.UUID | None = None,
    not_before: datetime | None = None,
    extra: dict[str, Any] | None = None,
    body: str = "hello",
) -> int:
    with sessions.begin() as db:
        identity = db.get(ChannelIdentity, identity_id) if identity_id else None
        row_id = enqueue_to(
            db,
            channel=channel,
            address=identity.address if identity else address,
            identity=identity,
            message=MessageOut(text=body),
            kind=kind,
            now=at,
            not_before=not_before,
            extra=extra,
        )
        db.flush()
        return row_id


def _identity(sessions: sessionmaker[Session], now: datetime, address: str) -> uuid.UUID:
    with sessions.begin() as db:
        contact = make_contact(db, now=now)
        return make_identity(
            db, contact=contact, now=now, channel=Channel.TELEGRAM, address=address
        ).id


def _rows(sessions: sessionmaker[Session]) -> dict[int, OutboxMessage]:
    with sessions() as db:
        return {row.id: row for row in db.scalars(select(OutboxMessage))}


def _row(sessions: sessionmaker[Session], row_id: int) -> OutboxMessage:
    return _rows(sessions)[row_id]


def _attempts(sessions: sessionmaker[Session], row_id: int) -> list[DeliveryAttempt]:
    with sessions() as db:
        query = select(DeliveryAttempt).where(DeliveryAttempt.outbox_id == row_id)
        return list(db.scalars(query.order_by(DeliveryAttempt.id)))


def _wait_until(condition: Callable[[], bool], deadline: float = POLL_DEADLINE) -> float:
    """Poll (every few ms) until the condition holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > deadline:
            raise AssertionError(f"not within {deadline} s")
        time.sleep(0.005)
    return time.monotonic() - started


# -- claiming ---------------------------------------------------------------------------------


def test_due_rows_are_sent_in_priority_then_id_order(
    sessions: sessionmaker[Session], make_dispatcher: Callable[..., Dispatcher], now: datetime
) -> None:
    kinds = ["broadcast", "prompt", "reply", "safety", "reply", "ack", "invitation", "prompt"]
    ids = [
        _enqueue(sessions, kind=kind, address=str(2000 + n), at=now) for n, kind in enumerate(kinds)
    ]
    sender = FakeSender(Channel.TELEGRAM, keyed=False)

    handled = make_dispatcher(sender).drain_once()

    expected = sorted(zip(ids, kinds, strict=True), key=lambda r: (-PRIORITY[r[1]], r[0]))
    assert handled == len(ids)
    assert sender.sent_ids == [row_id for row_id, _ in expected]
    rows = _rows(sessions)
    assert {rows[i].status for i in ids} == {OutboxStatus.SENT}
    assert all(rows[i].sent_at == now and rows[i].attempts == 1 for i in ids)
    assert rows[ids[0]].provider_message_id == f"p-{ids[0]}"


def test_batch_size_limits_one_pass(
    sessions: sessionmaker[Session], make_dispatcher: Callable[..., Dispatcher], now: datetime
) -> None:
    ids = [_enqueue(sessions, address=str(3000 + n), at=now) for n in range(5)]
    sender = FakeSender(Channel.TELEGRAM, keyed=False)
    dispatcher = make_dispatcher(sender, batch=2)

    assert [dispatcher.drain_once() for _ in range(4)] == [2, 2, 1, 0]
    assert sender.sent_ids == ids


def _sql_literal(value: object) -> str:
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _scanned(plan: dict[str, Any]) -> int:
    """Rows the plan's scans of outbox_messages as the claimed relation produced, in all."""
    own = plan.get("Relation Name") == "outbox_messages" and plan.get("Alias") == "outbox_messages"
    rows = int(plan["Actual Rows"] * plan["Actual Loops"]) if own else 0
    return rows + sum(_scanned(child) for child in plan.get("Plans", []))


def test_a_claim_reads_its_batch_not_the_whole_backlog(
    engine: Engine, backend: str, now: datetime
) -> None:
    if backend != "postgresql":
        pytest.skip("how a claim is planned is PostgreSQL's choice (workers claim on it)")
    # A backlog: 500 chats with 12 pending replies each behind 2 sent, statistics up to date.
    rows = [
        {
            "channel": "telegram",
            "address": str(10_000 + n % 500),
            "kind": "reply",
            "priority": PRIORITY["reply"],
            "body": "hello",
            "status": "sent" if n < 1000 else "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n in range(7000)
    ]
    with engine.begin() as connection:
        connection.execute(insert(OutboxMessage), rows)
        connection.exec_driver_sql("ANALYZE outbox_messages")
    claim = claim_statement([Channel.TELEGRAM], 100, now=now)
    # As a worker runs it: prepared (psycopg prepares what it runs five times), planned once
    # for any values of its parameters (PostgreSQL's generic plan).
    numbered = claim.compile(
        dialect=asyncpg.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},
    )
    values = [getattr(v, "value", v) for v in map(numbered.params.get, numbered.positiontup or [])]
    with Session(engine) as db:
        connection = db.connection()
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE claim AS {numbered}")
        arguments = ", ".join(map(_sql_literal, values))
        [[plan]] = connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim({arguments})"
        )
        connection.exec_driver_sql("DEALLOCATE claim")
        claimed = [row for row, _stopped in db.execute(claim)]
    # The first pending row of each chat is claimable: the first 100 in order are claimed,
    # and reading them took about as many rows, not the 6,000 pending ones.
    assert [row.id for row in claimed] == sorted(row.id for row in claimed)
    assert len({row.address for row in claimed}) == 100
    assert _scanned(plan[0]["Plan"]) <= 200


def test_a_row_not_yet_due_is_untouched_until_it_is(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    later = _enqueue(sessions, at=now, not_before=now + timedelta(minutes=10))
    sender = FakeSender(Channel.TELEGRAM)
    dispatcher = make_dispatcher(sender)

    assert dispatcher.drain_once() == 0
    row = _row(sessions, later)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        OutboxStatus.PENDING,
        0,
        now + timedelta(minutes=10),
    )
    assert sender.calls == [] and _attempts(sessions, later) == []

    clock.advance(600)
    assert dispatcher.drain_once() == 1
    assert _row(sessions, later).status == OutboxStatus.SENT


def test_rows_of_channels_without_a_sender_are_left_alone(
    sessions: sessionmaker[Session], make_dispatcher: Callable[..., Dispatcher], now: datetime
) -> None:
    sms = _enqueue(sessions, channel=Channel.SMS, address="+16175550123", at=now)
    telegram = _enqueue(sessions, at=now)
    sender = FakeSender(Channel.TELEGRAM)

    assert make_dispatcher(sender).drain_once() == 1
    assert sender.sent_ids == [telegram]
    assert _row(sessions, sms).status == OutboxStatus.PENDING


def test_rows_of_a_stopped_identity_are_cancelled_unless_forced(
    sessions: sessionmaker[Session], make_dispatcher: Callable[..., Dispatcher], now: datetime
) -> None:
    stopped = _identity(sessions, now, "4001")
    with sessions.begin() as db:
        identity = db.get(ChannelIdentity, stopped)
        assert identity is not None
        identity.stopped_at = now - timedelta(hours=1)
    prompt = _enqueue(sessions, identity_id=stopped, kind="prompt", at=now)
    confirmation = _enqueue(sessions, identity_id=stopped, at=now, extra={"force": True})
    stranger = _enqueue(sessions, address="4002", at=now)  # no identity: never "stopped"
    sender = FakeSender(Channel.TELEGRAM, keyed=False)

    make_dispatcher(sender).drain_once()

    rows = _rows(sessions)
    assert rows[prompt].status == OutboxStatus.CANCELLED
    assert rows[prompt].last_error == "recipient stopped"
    assert rows[prompt].attempts == 0  # a cancellation is not a try
    assert [a.outcome for a in _attempts(sessions, prompt)] == ["cancelled"]
    assert rows[confirmation].status == OutboxStatus.SENT
    assert rows[stranger].status == OutboxStatus.SENT
    assert sorted(sender.sent_ids) == sorted([confirmation, stranger])


# -- per-recipient order and pacing -----------------------------------------------------------


def test_later_rows_of_a_chat_wait_behind_its_first_in_order(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    a1 = _enqueue(sessions, address="A", at=now, body="a1")
    b1 = _enqueue(sessions, address="B", at=now, body="b1")
    a2 = _enqueue(sessions, address="A", at=now, body="a2")
    a3 = _enqueue(sessions, address="A", at=now, body="a3")
    b2 = _enqueue(sessions, address="B", at=now, body="b2")
    sender = FakeSender(Channel.TELEGRAM, monotonic=clock.monotonic)
    dispatcher = make_dispatcher(sender, limits={Channel.TELEGRAM: FAST_TELEGRAM})

    dispatcher.drain_once()

    assert sender.sent_ids == [a1, b1]
    rows = _rows(sessions)
    for deferred in (a2, a3, b2):
        # Not claimed while an earlier row of the chat is open: pending, no attempt spent.
        assert rows[deferred].status == OutboxStatus.PENDING
        assert rows[deferred].attempts == 0 and _attempts(sessions, deferred) == []

    for _ in range(4):
        clock.advance(1.1)
        dispatcher.drain_once()

    per_chat: dict[str, list[tuple[float, str]]] = {}
    for message, at in zip(sender.calls, sender.times, strict=True):
        per_chat.setdefault(message.address, []).append((at, message.body))
    assert [body for _, body in per_chat["A"]] == ["a1", "a2", "a3"]
    assert [body for _, body in per_chat["B"]] == ["b1", "b2"]
    for sends in per_chat.values():
        gaps = [later[0] - earlier[0] for earlier, later in zip(sends, sends[1:], strict=False)]
        assert min(gaps) >= 1.0  # never more than one message a second to one chat
    assert {row.status for row in _rows(sessions).values()} == {OutboxStatus.SENT}


def test_a_retried_row_is_not_overtaken_by_later_rows_of_its_chat(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    first = _enqueue(sessions, address="A", at=now, body="question 1")
    second = _enqueue(sessions, address="A", at=now, body="question 2")
    sender = FakeSender(
        Channel.TELEGRAM, SendResult("retry", status_code=502, detail="bad gateway")
    )
    dispatcher = make_dispatcher(sender, jitter=lambda: 1.0)  # no rate limits configured

    for _ in range(5):
        dispatcher.drain_once()
        clock.advance(1.0)

    assert [m.body for m in sender.calls] == ["question 1", "question 1", "question 2"]
    assert [m.id for m in sender.calls] == [first, first, second]


def test_a_new_row_for_a_chat_never_goes_out_sooner_than_its_spacing(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    sender = FakeSender(Channel.TELEGRAM, monotonic=clock.monotonic)
    dispatcher = make_dispatcher(sender, limits={Channel.TELEGRAM: FAST_TELEGRAM})
    _enqueue(sessions, address="A", at=now, body="first")
    dispatcher.drain_once()

    clock.advance(0.98)  # the next answer of the same chat arrives just under a second later
    _enqueue(sessions, address="A", at=clock.now(), body="second")
    for _ in range(6):
        dispatcher.drain_once()
        clock.advance(0.02)

    assert [m.body for m in sender.calls] == ["first", "second"]
    assert sender.times[1] - sender.times[0] >= 1.0


# -- results ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("jitter", "delay"), [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)])
def test_retry_goes_back_to_pending_after_an_equal_jitter_backoff(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    now: datetime,
    jitter: float,
    delay: float,
) -> None:
    row_id = _enqueue(sessions, at=now)
    sender = FakeSender(Channel.TELEGRAM, SendResult("retry", status_code=503, detail="down"))

    make_dispatcher(sender, jitter=lambda: jitter).drain_once()

    row = _row(sessions, row_id)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.next_attempt_at == now + timedelta(seconds=delay)
    assert row.last_error == "down"


def test_retry_backoff_with_random_jitter_stays_between_half_and_full_ceiling(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    row_id = _enqueue(sessions, at=now)
    retries = [SendResult("retry", detail="timeout") for _ in range(6)]
    sender = FakeSender(Channel.TELEGRAM, *retries)
    dispatcher = make_dispatcher(sender, jitter=random.random)

    for attempt in range(1, 7):
        dispatcher.drain_once()
        row = _row(sessions, row_id)
        delay = (row.next_attempt_at - clock.now()).total_seconds()
        ceiling = min(BACKOFF_CAP_SECONDS, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
        clock.advance(delay)


@pytest.mark.parametrize("attempts", [1, 2, 3, 5, 9, 10, 11, 30])
def test_backoff_seconds_is_exponential_with_equal_jitter_and_capped(attempts: int) -> None:
    ceiling = min(BACKOFF_CAP_SECONDS, 2.0**attempts)

    assert backoff_seconds(attempts, 0.0) == ceiling / 2
    assert backoff_seconds(attempts, 1.0) == ceiling
    assert ceiling / 2 <= backoff_seconds(attempts, 0.37) <= ceiling
    assert backoff_seconds(attempts, 1.0) <= BACKOFF_CAP_SECONDS


def test_retry_after_is_honoured_and_holds_the_chat_back(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    first = _enqueue(sessions, address="A", at=now)
    second = _enqueue(sessions, address="A", at=now)
    other = _enqueue(sessions, address="B", at=now)
    too_many = SendResult("retry", retry_after=17.0, status_code=429, detail="too many requests")
    sender = FakeSender(Channel.TELEGRAM, too_many, monotonic=clock.monotonic)
    dispatcher = make_dispatcher(sender, limits={Channel.TELEGRAM: FAST_TELEGRAM})

    dispatcher.drain_once()

    rows = _rows(sessions)
    assert rows[first].status == OutboxStatus.PENDING
    assert rows[first].next_attempt_at == now + timedelta(seconds=17)
    assert rows[second].status == OutboxStatus.PENDING  # held back with its chat
    assert rows[second].attempts == 0
    assert rows[other].status == OutboxStatus.SENT  # other chats are not held
    (attempt,) = _attempts(sessions, first)
    assert (attempt.outcome, attempt.status_code) == ("retry", 429)

    clock.advance(17.0)
    dispatcher.drain_once()
    clock.advance(1.1)
    dispatcher.drain_once()
    assert sender.sent_ids == [first, other, first, second]


def test_failure_marks_the_row_failed_with_its_error(
    sessions: sessionmaker[Session], make_dispatcher: Callable[..., Dispatcher], now: datetime
) -> None:
    row_id = _enqueue(sessions, channel=Channel.SMS, address="+15005550001", at=now)
    invalid = SendResult("failed", status_code=400, error_code="21211", detail="invalid number")
    sender = FakeSender(Channel.SMS, invalid)

    dispatcher = make_dispatcher(sender)
    dispatcher.drain_once()
    dispatcher.drain_once()

    row = _row(sessions, row_id)
    assert (row.status, row.attempts, row.last_error) == (
        OutboxStatus.FAILED,
        1,
        "invalid number",
    )
    assert row.sent_at is None
    (attempt,) = _attempts(sessions, row_id)
    assert (attempt.outcome, attempt.status_code, attempt.error_code, attempt.detail) == (
        "failed",
        400,
        "21211",
        "invalid number",
    )
    assert attempt.at == now
    assert len(sender.calls) == 1  # a failed row is never tried again


def test_stop_identity_marks_the_identity_stopped_and_cancels_what_follows(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    identity_id = _identity(sessions, now, "5001")
    first = _enqueue(sessions, identity_id=identity_id, at=now)
    blocked = SendResult(
        "failed", status_code=403, detail="bot was blocked by the user", stop_identity=True
    )
    sender = FakeSender(Channel.TELEGRAM, blocked)
    dispatcher = make_dispatcher(sender)

    dispatcher.drain_once()
    later = _enqueue(sessions, identity_id=identity_id, at=clock.now(), kind="prompt")
    clock.advance(60)
    dispatcher.drain_once()

    with sessions() as db:
        identity = db.get(ChannelIdentity, identity_id)
        assert identity is not None and identity.stopped_at == now
    rows = _rows(sessions)
    assert rows[first].status == OutboxStatus.FAILED
    assert rows[later].status == OutboxStatus.CANCELLED
    assert sender.sent_ids == [first]


def test_progress_is_merged_into_the_payload_and_resumed(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    row_id = _enqueue(sessions, at=now, extra={"hint": "1-4"})
    partly = SendResult("retry", detail="timeout after part 2", progress={"parts_sent": 2})
    sender = FakeSender(Channel.TELEGRAM, partly)
    dispatcher = make_dispatcher(sender)

    dispatcher.drain_once()
    payload = _row(sessions, row_id).payload
    assert payload["parts_sent"] == 2
    assert payload["hint"] == "1-4" and payload["choices"] == []  # the rest is kept

    clock.advance(BACKOFF_CAP_SECONDS)
    dispatcher.drain_once()
    assert sender.calls[1].payload["parts_sent"] == 2  # the retry sees where it stopped
    assert sender.calls[1].attempts == 1
    assert _row(sessions, row_id).status == OutboxStatus.SENT


def test_max_attempts_turns_retry_into_failure(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    row_id = _enqueue(sessions, at=now)
    sender = FakeSender(
        Channel.TELEGRAM, *[SendResult("retry", detail=f"try {n}") for n in range(1, 30)]
    )
    dispatcher = make_dispatcher(sender)

    for _ in range(MAX_ATTEMPTS + 3):
        dispatcher.drain_once()
        clock.advance(BACKOFF_CAP_SECONDS + 1)

    row = _row(sessions, row_id)
    assert row.status == OutboxStatus.FAILED
    assert row.attempts == MAX_ATTEMPTS
    assert row.last_error == f"try {MAX_ATTEMPTS}"
    assert len(sender.calls) == MAX_ATTEMPTS
    attempts = _attempts(sessions, row_id)
    assert len(attempts) == MAX_ATTEMPTS
    assert {a.outcome for a in attempts} == {"retry"}


def test_every_attempt_leaves_a_delivery_attempt_row(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    row_id = _enqueue(sessions, at=now)
    sender = FakeSender(
        Channel.TELEGRAM,
        SendResult("retry", status_code=500, detail="internal error"),
        ConnectionError("reset by peer"),
        SendResult("retry", retry_after=3.0, status_code=429, error_code="429", detail="x" * 500),
    )
    dispatcher = make_dispatcher(sender)

    for _ in range(6):
        dispatcher.drain_once()
        clock.advance(BACKOFF_CAP_SECONDS)

    attempts = _attempts(sessions, row_id)
    assert [(a.outcome, a.status_code) for a in attempts] == [
        ("retry", 500),
        ("retry", None),
        ("retry", 429),
        ("sent", None),
    ]
    assert attempts[1].detail == "sender error: ConnectionError"
    assert attempts[2].detail == "x" * 200  # clipped to the column
    assert [a.at for a in attempts] == [now + timedelta(seconds=600 * n) for n in range(4)]
    row = _row(sessions, row_id)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 4)


def test_a_cancellation_is_not_counted_as_an_attempt(now: datetime) -> None:
    claimed = Outgoing(
        id=1, channel=Channel.SMS, address="+16175550123", kind="reply", body="hi", attempts=3
    )

    changes = attempt_changes(claimed, SendResult("cancelled", detail="recipient stopped"), now=now)

    assert changes == {
        "attempts": 3,
        "status": OutboxStatus.CANCELLED,
        "last_error": "recipient stopped",
    }


def test_a_row_stuck_in_sending_is_claimed_again_after_stale_sending(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    stale = _enqueue(sessions, address="6001", at=now)
    recent = _enqueue(sessions, address="6002", at=now)
    with sessions.begin() as db:
        # Claimed by a process that died before recording the answer.
        old = now - STALE_SENDING - timedelta(seconds=1)
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == stale)
            .values(status=OutboxStatus.SENDING, next_attempt_at=old)
        )
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == recent)
            .values(status=OutboxStatus.SENDING, next_attempt_at=now - timedelta(minutes=1))
        )
    sender = FakeSender(Channel.TELEGRAM)
    dispatcher = make_dispatcher(sender)

    dispatcher.drain_once()

    assert sender.sent_ids == [stale]
    assert _row(sessions, recent).status == OutboxStatus.SENDING  # maybe still in flight

    clock.advance(STALE_SENDING.total_seconds())
    dispatcher.drain_once()
    assert sender.sent_ids == [stale, recent]
    assert {row.status for row in _rows(sessions).values()} == {OutboxStatus.SENT}


def test_a_sender_raising_does_not_kill_the_loop_and_the_row_is_retried(
    sessions: sessionmaker[Session],
    make_dispatcher: Callable[..., Dispatcher],
    clock: ManualClock,
    now: datetime,
) -> None:
    row_id = _enqueue(sessions, at=now)
    sender = FakeSender(Channel.TELEGRAM, RuntimeError("adapter bug"))
    dispatcher = make_dispatcher(sender, idle_wait=0.01, jitter=lambda: 0.0)

    dispatcher.start()
    _wait_until(lambda: len(_attempts(sessions, row_id)) == 1)
    row = _row(sessions, row_id)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert row.last_error == "sender error: RuntimeError"
    assert row.next_attempt_at == now + timedelta(seconds=1)

    clock.advance(1.0)
    dispatcher.wake()
    _wait_until(lambda: _row(sessions, row_id).status == OutboxStatus.SENT)
    assert sender.sent_ids == [row_id, row_id]

    dispatcher.stop(timeout=POLL_DEADLINE)
    assert sender.closed


def test_stop_releases_senders(
    make_dispatcher: Callable[..., Dispatcher], sessions: sessionmaker[Session]
) -> None:
    sender = FakeSender(Channel.TELEGRAM)
    dispatcher = make_dispatcher(sender, idle_wait=60.0)
    dispatcher.start()

    started = time.monotonic()
    dispatcher.stop(timeout=POLL_DEADLINE)

    assert time.monotonic() - started < 1.0  # stop wakes the idle loop
    assert sender.closed


# -- several dispatchers, wake-ups --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_dispatchers_never_send_a_row_twice(
    sessions: sessionmaker[Session], database_url: str, now: datetime
) -> None:
    ids = []
    with sessions.begin() as db:
        for n in range(200):
            row_id = enqueue_to(
                db,
                channel=Channel.TELEGRAM,
                address=str(7000 + n % 37),
                identity=None,
                message=MessageOut(text=f"m{n}"),
                kind="reply",
                now=now,
            )
            db.flush()
            ids.append(row_id)
    engines = [make_engine(sqlalchemy_url(database_url)) for _ in range(2)]  # two "processes"
    senders = [FakeSender(Channel.TELEGRAM, pause=0.0005) for _ in engines]
    dispatchers = [
        Dispatcher(make_session_factory(e), {Channel.TELEGRAM: _fake(s)}, lambda: now, batch=10)
        for e, s in zip(engines, senders, strict=True)
    ]
    start = threading.Barrier(len(dispatchers))
    errors: list[BaseException] = []

    def drain(dispatcher: Dispatcher) -> None:
        try:
            start.wait()
            while dispatcher.drain_once():
                pass
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(d,)) for d in dispatchers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for engine in engines:
            engine.dispose()

    assert errors == []
    sent = Counter(row_id for s in senders for row_id in s.sent_ids)
    assert set(sent) == set(ids)
    assert set(sent.values()) == {1}  # each row exactly once in total
    assert all(s.calls for s in senders)  # both really worked, side by side
    assert {row.status for row in _rows(sessions).values()} == {OutboxStatus.SENT}


class ObservedDispatcher(Dispatcher):
    """A dispatcher that says when it has finished a pass (so a test knows it is idle)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes = threading.Event()

    def drain_once(self) -> int:
        handled = super().drain_once()
        self.passes.set()
        return handled


def _observed_dispatchers(monkeypatch: pytest.MonkeyPatch) -> list[ObservedDispatcher]:
    """Make Runtime.dispatcher() build watchable dispatchers that idle for a minute."""
    made: list[ObservedDispatcher] = []

    def build(*args: Any, **kwargs: Any) -> Dispatcher:
        made.append(ObservedDispatcher(*args, **{**kwargs, "idle_wait": 60.0}))
        return made[-1]

    monkeypatch.setattr(workers, "Dispatcher", build)
    return made


def _status(sessions: sessionmaker[Session], row_id: int) -> OutboxStatus:
    with sessions() as db:
        row = db.get(OutboxMessage, row_id)
        assert row is not None
        return row.status


def test_a_commit_wakes_a_started_dispatcher_at_once(
    settings: Settings, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    observed = _observed_dispatchers(monkeypatch)
    runtime = Runtime.build(settings)
    dispatcher = runtime.dispatcher()
    dispatcher.start()
    try:
        assert observed[0].passes.wait(POLL_DEADLINE)  # first pass done: idle for a minute
        with runtime.sessions() as db:
            row_id = _reply(
                db, Channel.WEB, "web-visitor", runtime.clock(), text="Thanks, recorded."
            )
            db.commit()
        took = _wait_until(
            lambda: _status(runtime.sessions, row_id) == OutboxStatus.SENT, WAKE_DEADLINE
        )
        assert took < WAKE_DEADLINE
        assert (runtime.listener(lambda payload: None) is None) == (backend == "sqlite")
    finally:
        dispatcher.stop()
        runtime.engine.dispose()


def test_a_rolled_back_enqueue_does_not_leave_a_wake_up_behind(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    observed = _observed_dispatchers(monkeypatch)
    runtime = Runtime.build(settings)
    runtime.dispatcher()
    woken: list[bool] = []
    observed[0].wake = lambda: woken.append(True)  # type: ignore[method-assign]
    try:
        with runtime.sessions() as db:
            _reply(db, Channel.WEB, "web-visitor", runtime.clock(), text="never sent")
            db.rollback()
            db.commit()  # a later commit writes no outbox row
        assert woken == []
        with runtime.sessions() as db:
            assert db.scalars(select(OutboxMessage)).all() == []
    finally:
        runtime.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_commit_in_another_process_wakes_the_worker_through_notify(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    observed = _observed_dispatchers(monkeypatch)
    worker = Runtime.build(settings)  # the worker process, with its own engine
    dispatcher = worker.dispatcher()
    notified = threading.Semaphore(0)

    def on_notify(payload: str) -> None:
        notified.release()
        dispatcher.wake()

    listener = worker.listener(on_notify)
    assert isinstance(listener, Listener)
    dispatcher.start()
    listener.start()
    try:
        assert observed[0].passes.wait(POLL_DEADLINE)
        assert notified.acquire(timeout=POLL_DEADLINE)  # the call made once LISTEN is on
        # The web process: another engine, whose commits the worker's session hook never sees.
        with sessions() as db:
            row_id = _reply(
                db, Channel.WEB, "web-visitor", worker.clock(), text="Thanks, recorded."
            )
            db.commit()
        assert notified.acquire(timeout=WAKE_DEADLINE)
        took = _wait_until(lambda: _status(sessions, row_id) == OutboxStatus.SENT, WAKE_DEADLINE)
        assert took < WAKE_DEADLINE
    finally:
        listener.stop()
        dispatcher.stop()
        worker.engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_listener_gets_one_notify_per_channel_of_a_committed_transaction(
    database_url: str, sessions: sessionmaker[Session], now: datetime
) -> None:
    payloads: queue.SimpleQueue[str] = queue.SimpleQueue()
    listener = Listener(sqlalchemy_url(database_url), NOTIFY_CHANNEL, payloads.put)
    listener.start()
    try:
        assert payloads.get(timeout=POLL_DEADLINE) == ""  # connected: look at everything
        with sessions.begin() as db:
            # Several rows to two channels, one transaction: one NOTIFY for each channel.
            for n, channel in enumerate([Channel.WEB, Channel.SMS, Channel.WEB, Channel.SMS]):
                _reply(db, channel, f"addr-{n}", now, text="x")
        got = {payloads.get(timeout=WAKE_DEADLINE), payloads.get(timeout=WAKE_DEADLINE)}
        assert got == {"web", "sms"}
        with sessions.begin() as db:
            enqueue_rows(
                db,
                [
                    message_row(
                        channel=Channel.TELEGRAM,
                        address=str(n),
                        identity_id=None,
                        contact_id=None,
                        message=MessageOut(text="x"),
                        kind="broadcast",
                        now=now,
                    )
                    for n in range(3)
                ],
            )
        assert payloads.get(timeout=WAKE_DEADLINE) == "telegram"
    finally:
        listener.stop()
    assert payloads.empty()


def _record_wakes(
    dispatchers: list[ObservedDispatcher], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The wake-ups of these dispatchers, each named by the channels it serves."""
    woken: list[str] = []
    for dispatcher in dispatchers:

        def wake(served: str = "+".join(sorted(dispatcher._senders))) -> None:
            woken.append(served)

        monkeypatch.setattr(dispatcher, "wake", wake)
    return woken


# Senders for the provider channels that need no provider: only the dispatchers' grouping counts.
_PROVIDER_STANDINS: dict[Channel, Sender] = {
    Channel.TELEGRAM: LocalSender(Channel.TELEGRAM),
    Channel.SMS: LocalSender(Channel.SMS),
}


def test_a_commit_wakes_only_the_dispatchers_of_the_channels_it_wrote(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    observed = _observed_dispatchers(monkeypatch)
    runtime = Runtime.build(settings, senders=_PROVIDER_STANDINS)
    for channels in ([Channel.TELEGRAM], [Channel.SMS], [Channel.WEB, Channel.CONSOLE]):
        runtime.dispatcher(channels)
    woken = _record_wakes(observed, monkeypatch)
    try:
        with runtime.sessions() as db:
            for channel in (Channel.SMS, Channel.SMS):
                _reply(db, channel, "+12025550101", runtime.clock(), text="x")
            db.commit()
        assert woken == ["sms"]
        with runtime.sessions() as db:
            _reply(db, Channel.WEB, "web-visitor", runtime.clock(), text="x")
            db.commit()
        assert woken == ["sms", "console+web"]
    finally:
        runtime.engine.dispose()


def test_a_notification_wakes_the_dispatchers_of_its_channel_or_all_when_it_names_none(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    listeners: list[Callable[[str], None]] = []

    def listener(self: Runtime, on_notify: Callable[[str], None]) -> None:
        listeners.append(on_notify)  # and no LISTEN thread: the test calls it

    monkeypatch.setattr(Runtime, "listener", listener)
    observed = _observed_dispatchers(monkeypatch)
    runtime = Runtime.build(settings, senders=_PROVIDER_STANDINS)
    runtime.background(tick=False)
    woken = _record_wakes(observed, monkeypatch)
    try:
        (on_notify,) = listeners
        on_notify("telegram")
        assert woken == ["telegram"]
        woken.clear()
        on_notify("")  # (re)connected, or a payload it does not know: every dispatcher looks
        on_notify("fax")
        assert sorted(woken) == sorted(2 * ["console+web", "sms", "telegram"])
    finally:
        runtime.engine.dispose()


def test_local_senders_need_no_provider(sessions: sessionmaker[Session], now: datetime) -> None:
    row_id = _enqueue(sessions, channel=Channel.WEB, address="web-1", at=now)
    dispatcher = Dispatcher(sessions, {Channel.WEB: LocalSender(Channel.WEB)}, lambda: now)

    assert dispatcher.drain_once() == 1
    row = _row(sessions, row_id)
    assert (row.status, row.provider_message_id) == (OutboxStatus.SENT, f"local-{row_id}")
