"""Broadcast: enqueue 100,000 recipients versus a raw insert, and the time to the last send.

1. Enqueue. 100,000 families (2 in 3 on Telegram, 1 in 3 on SMS, all consenting, none in
   quiet hours) are one segment. ``broadcast_send.send_some`` sends the broadcast as the clock
   does: the segment query in batches, every member sorted out (channel, STOP, consent, quiet
   hours), its text rendered from the Jinja2 template, and one batched INSERT per batch into
   the outbox and into broadcast_recipients. The baseline writes the very same outbox rows with
   one plain bulk INSERT into the emptied table of the same database, in the same run. Both
   timings include their commit. Goal: at most 3x the raw insert.

2. Time to the last send. The real Dispatcher (claim, pace, send, record) drains those rows,
   one dispatcher per channel as ``c3n-bot worker`` runs them, at the configured limits
   (``rate_limits``: Telegram 30/s, SMS ``--mps``). Time is virtual: the pacer sleeps on a
   clock that moves only then, and in-process providers refuse any send beyond their limit in
   a sliding second (counted as a violation), so hours of sending take minutes of CPU. The
   broadcast's last send is the later channel's; the theoretical minimum is rows / rate per
   channel. Goal: within 5% of it, with no violation and every row sent once.

    .venv/bin/python -m bench.broadcast                      # SQLite file in a temp folder
    .venv/bin/python -m bench.broadcast --families 20000 --mps 10
    .venv/bin/python -m bench.broadcast --postgres postgresql://user:pw@host/db
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from bench import results as result_line
from bench.fanout import database
from c3n_bot.config import Settings
from c3n_bot.service import broadcast_send, broadcasts
from c3n_bot.service.audit import SYSTEM
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.delivery import Outgoing, RateLimit, SendResult
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.service.workers import build_services, rate_limits
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.migrate import upgrade
from c3n_bot.store.models import Broadcast, BroadcastRecipient, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus
from tests.community_seed import reachable, seed_contacts, seed_organisers
from tests.fakes.limits import SlidingWindow
from tests.fakes.virtual_time import VirtualTime

ENQUEUE_GOAL = 3.0
SEND_GOAL = 0.05  # at most this far above rows / rate
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York: nobody's quiet hours
TEMPLATE = "Hi {{ first_name }}! {{ program }} invites you to share your ideas for {{ center }}."


class PacedProvider:
    """A provider in this process: accepts a send unless it breaks the limit in virtual time."""

    def __init__(self, channel: Channel, clock: VirtualTime, limit: RateLimit) -> None:
        self.channel = channel
        self._clock = clock
        self._window = SlidingWindow(int(limit.per_second))
        self.times: list[float] = []
        self.ids: Counter[int] = Counter()
        self.violations = 0

    def send(self, message: Outgoing) -> SendResult:
        """Accept, or answer 429 when the sliding second is full."""
        now = self._clock.monotonic()
        if self._window.wait(now) > 0:
            self.violations += 1
            return SendResult("retry", retry_after=1.0, status_code=429)
        self._window.record(now)
        self.times.append(now)
        self.ids[message.id] += 1
        return SendResult("sent", provider_message_id=f"bench-{message.id}")

    def rate_key(self, message: Outgoing) -> str | None:
        """One message per chat here: the per-recipient limit never binds."""
        return None

    def close(self) -> None:
        """Nothing to release."""


@dataclasses.dataclass(frozen=True)
class ChannelRun:
    """One channel's drain in virtual time."""

    channel: Channel
    rows: int
    rate: float
    last_send: float
    violations: int
    duplicates: int
    unsent: int

    @property
    def minimum(self) -> float:
        """rows / rate: no pacing can finish sooner."""
        return self.rows / self.rate

    @property
    def over(self) -> float:
        """How far the last send is above the minimum, as a fraction."""
        return self.last_send / self.minimum - 1

    @property
    def passed(self) -> bool:
        return self.over <= SEND_GOAL and not (self.violations or self.duplicates or self.unsent)


def settings_for(url: str, mps: int) -> Settings:
    """Settings on the benchmark's database with the SMS rate under test."""
    return Settings(
        demo=False,
        secret_key=SecretStr("bench-broadcast-secret-key-0123456789abc"),
        database_url=url,
        twilio_mps=mps,
    )


def seed(sessions: sessionmaker[Session], families: int) -> uuid.UUID:
    """The network, its organiser, the families, and a draft broadcast to all of them."""
    with sessions.begin() as db:
        org = seed_organisers(db, NOW)
        seed_contacts(db, center_id=org.center_id, count=families, now=NOW, traits_of=reachable)
        draft = broadcasts.create_broadcast(
            db,
            data=BroadcastIn(name="Ideas", templates={"en": TEMPLATE}),
            allowed={org.center_id},
            actor=SYSTEM,
            user_id=org.organiser_id,
            now=NOW,
        )
        return draft.id


def enqueue(
    sessions: sessionmaker[Session], settings: Settings, broadcast_id: uuid.UUID, families: int
) -> float:
    """Send the broadcast into the outbox as the clock does; seconds, commit included."""
    services = dataclasses.replace(
        build_services(settings), channels=frozenset({Channel.TELEGRAM, Channel.SMS})
    )
    started = time.perf_counter()
    with sessions.begin() as db:
        broadcast = db.get(Broadcast, broadcast_id)
        assert broadcast is not None
        broadcast_send.send_some(db, broadcast, NOW, services, limit=families)
    return time.perf_counter() - started


def raw_insert(engine: Engine) -> tuple[int, float]:
    """Read the outbox rows back, empty the tables, and time a plain bulk INSERT of them."""
    with engine.begin() as connection:
        columns = [c for c in OutboxMessage.__table__.columns if c.name != "id"]
        rows = [dict(row._mapping) for row in connection.execute(select(*columns))]
        connection.execute(delete(BroadcastRecipient))
        connection.execute(delete(OutboxMessage))
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(insert(OutboxMessage), rows)
    return len(rows), time.perf_counter() - started


def drain(sessions: sessionmaker[Session], settings: Settings, channel: Channel) -> ChannelRun:
    """Send one channel's rows through the real Dispatcher on a virtual clock."""
    limit = rate_limits(settings)[channel]
    clock = VirtualTime(NOW)
    provider = PacedProvider(channel, clock, limit)
    dispatcher = Dispatcher(
        sessions, {channel: provider}, clock, limits={channel: limit}, batch=1000,
        monotonic=clock.monotonic, sleep=clock.sleep,
    )  # fmt: skip
    start = clock.monotonic()
    while dispatcher.drain_once():
        pass
    with sessions() as db:
        rows = (
            db.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.channel == channel)
            )
            or 0
        )
        unsent = (
            db.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.channel == channel, OutboxMessage.status != OutboxStatus.SENT)
            )
            or 0
        )
    return ChannelRun(
        channel=channel,
        rows=rows,
        rate=limit.per_second,
        last_send=(provider.times[-1] - start) if provider.times else 0.0,
        violations=provider.violations,
        duplicates=sum(n - 1 for n in provider.ids.values() if n > 1),
        unsent=unsent,
    )


def run(families: int, mps: int, postgres: str | None) -> bool:
    """Both measurements on one database; prints them and returns whether both goals were met."""
    with database(postgres) as url:
        settings = settings_for(url, mps)
        engine = make_engine(settings.sqlalchemy_url)
        try:
            upgrade(engine)
            sessions = make_session_factory(engine)
            started = time.perf_counter()
            broadcast_id = seed(sessions, families)
            seeded = time.perf_counter() - started
            enqueued = enqueue(sessions, settings, broadcast_id, families)
            rows, raw = raw_insert(engine)
            runs = [
                drain(sessions, settings, channel) for channel in (Channel.TELEGRAM, Channel.SMS)
            ]
        finally:
            engine.dispose()
    backend = "PostgreSQL" if postgres else "SQLite"
    return report(backend, families, seeded, rows, enqueued, raw, runs)


def report(
    backend: str,
    families: int,
    seeded: float,
    rows: int,
    enqueued: float,
    raw: float,
    runs: list[ChannelRun],
) -> bool:
    """Print the figures; True when every goal was met."""
    ratio = enqueued / raw
    enqueue_ok = ratio <= ENQUEUE_GOAL and rows == families
    verdict = {True: "PASS", False: "FAIL"}
    print(f"\nbroadcast on {backend}: {families:,} families (2/3 Telegram, 1/3 SMS)")
    print(f"seeded in {seeded:.1f} s")
    print(
        f"enqueue (segment, sort-out, render, outbox + recipients): {rows:,} rows, {enqueued:.2f} s"
    )
    print(f"raw INSERT of the same outbox rows:                        {rows:,} rows, {raw:.2f} s")
    print(f"ratio {ratio:.2f}x (goal <= {ENQUEUE_GOAL:g}x)  {verdict[enqueue_ok]}")
    print(
        "\ntime to the last send: the real Dispatcher per channel, virtual clock, limits enforced"
    )
    header = (
        f"{'channel':<10}{'rows':>8}{'limit/s':>9}{'last send s':>13}{'rows/rate s':>13}"
        f"{'over':>8}{'429s':>6}{'dupes':>7}{'unsent':>8}  result"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r.channel.value:<10}{r.rows:>8,}{r.rate:>9g}{r.last_send:>13.1f}{r.minimum:>13.1f}"
            f"{r.over:>+8.2%}{r.violations:>6}{r.duplicates:>7}{r.unsent:>8}  {verdict[r.passed]}"
        )
    last = max(r.last_send for r in runs)
    minimum = max(r.minimum for r in runs)
    send_ok = all(r.passed for r in runs)
    print(
        f"broadcast: last send at {last:.1f} s (virtual) vs {minimum:.1f} s = rows / rate "
        f"({last / minimum - 1:+.2%}; goal <= +{SEND_GOAL:.0%})  {verdict[send_ok]}"
    )
    result_line.report(
        "broadcast-enqueue",
        figure=enqueued,
        baseline=raw,
        unit="s",
        goal=f"ratio<={ENQUEUE_GOAL:g}",
        met=enqueue_ok,
    )
    result_line.report(
        "broadcast-send",
        figure=last,
        baseline=minimum,
        unit="s virtual",
        goal=f"ratio<={1 + SEND_GOAL:g}, no 429, once",
        met=send_ok,
    )
    return enqueue_ok and send_ok


def main(argv: list[str] | None = None) -> None:
    """Command line; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.broadcast", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--families", type=int, default=100_000)
    parser.add_argument("--mps", type=int, default=10, help="the SMS sender's messages per second")
    parser.add_argument("--postgres", help="a PostgreSQL URL (a schema of its own is used)")
    args = parser.parse_args(argv)
    sys.exit(0 if run(args.families, args.mps, args.postgres) else 1)


if __name__ == "__main__":
    main()
