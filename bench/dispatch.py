"""Outbox dispatch rate against fake provider APIs that enforce their limits (issue 4).

The real Dispatcher (its drain loop in its own thread, in real time) sends through the real
TelegramSender (python-telegram-bot) and TwilioSender (twilio Client) to the fake Bot API,
which refuses more than 30 sendMessage a second overall or 1 a second per chat, and to the
fake Twilio API, which refuses more than C3N_TWILIO_MPS creates a second (sliding 1 s
windows, 429 counted as a violation). Both fakes listen on 127.0.0.1. The dispatcher is
built as `c3n-bot worker` builds it, so its limits come from `rate_limits(settings)`.

The outbox holds 600 Telegram messages over 300 chats (10 chats get 5, most get 2, a few 1)
with a PHQ-9-like keyboard, and 200 one-segment SMS to 200 numbers, written in a shuffled
(seeded) order with each chat's messages in sequence; both channels drain at once.

Achieved rate = (messages - 1) / (last accepted send - first), from the times the fakes
accepted each message: n messages span n - 1 intervals, which is stricter than n / span.
Goal per channel: at least 95% of the configured limit, no 429 caused by us (the fakes'
`violations`), and every row sent exactly once (every row ends `sent`, no message twice in
the fake's log, each chat's messages in order). Exit status 1 when anything fails.

    .venv/bin/python -m bench.dispatch [--telegram 600 --chats 300 --sms 200 --mps 10]
    .venv/bin/python -m bench.dispatch --quick
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import results as result_line
from bench.common import (
    NOWHERE,
    forget_c3n_environment,
    loopback_only,
    migrated_sqlite,
    peak_rss_mib,
    sms_number,
)
from c3n_bot.channels.registry import build_senders
from c3n_bot.config import load_settings
from c3n_bot.engine.events import Choice, MessageOut
from c3n_bot.service.outbox import enqueue
from c3n_bot.service.workers import Runtime, rate_limits
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import DeliveryAttempt, OutboxMessage
from tests.builders import make_contact, make_identity
from tests.fakes import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TEST_BOT_TOKEN,
    FakeTelegramApi,
    FakeTwilioApi,
)
from tests.fakes.twilio import SERVICE_NUMBER

RATE_GOAL = 0.95  # of the configured limit
TELEGRAM_GLOBAL, TELEGRAM_PER_CHAT = 30, 1  # what the fake Bot API enforces
FIRST_CHAT_ID = 810_000_000
BUSY_CHATS, BUSY_MESSAGES = 10, 5
MARKER = re.compile(r"\[m(\d+)\]")
OPTIONS = ("Not at all", "Several days", "More than half the days", "Nearly every day")


class StampedLog(list[dict[str, Any]]):
    """A fake's `sent` log that also keeps when each entry was accepted (time.monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: dict[str, Any], /) -> None:
        # Called under the fake's lock, right after it accepted the message.
        self.times.append(time.monotonic())
        super().append(item)


@dataclass(frozen=True)
class Options:
    """The command line."""

    telegram: int
    chats: int
    sms: int
    mps: int
    seed: int


@dataclass(frozen=True)
class Planned:
    """One outbox row: its marker number, channel and address."""

    number: int
    channel: Channel
    address: str


def plan(options: Options) -> list[Planned]:
    """Every message in creation order: chats' counts as described, interleaved at random."""
    busy = min(BUSY_CHATS, options.chats)
    rest_messages = options.telegram - busy * BUSY_MESSAGES
    rest_chats = options.chats - busy
    if not rest_chats <= rest_messages <= 2 * rest_chats:
        raise SystemExit("--telegram must lie between --chats + 40 and 2 x --chats + 30")
    twos = rest_messages - rest_chats
    counts = [BUSY_MESSAGES] * busy + [2] * twos + [1] * (rest_chats - twos)
    slots = [(Channel.TELEGRAM, str(FIRST_CHAT_ID + chat)) for chat, n in enumerate(counts)]
    slots = [slot for slot, n in zip(slots, counts, strict=True) for _ in range(n)]
    slots += [(Channel.SMS, sms_number(index)) for index in range(options.sms)]
    random.Random(options.seed).shuffle(slots)
    return [Planned(number, channel, address) for number, (channel, address) in enumerate(slots)]


def fill_outbox(db_url: str, planned: Sequence[Planned], now: datetime) -> None:
    """A contact and identity per address, then one pending outbox row per planned message."""
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine).begin() as db:
            identities = {}
            for address in dict.fromkeys((p.channel, p.address) for p in planned):
                contact = make_contact(db, now=now)
                identities[address] = make_identity(
                    db, contact=contact, now=now, channel=address[0], address=address[1]
                )
            for item in planned:
                identity = identities[(item.channel, item.address)]
                if item.channel == Channel.TELEGRAM:
                    text = f"Little interest or pleasure in doing things? [m{item.number}]"
                    choices = tuple(
                        Choice(item_id="q1", code=str(value), label=label, number=str(value))
                        for value, label in enumerate(OPTIONS)
                    )
                    message = MessageOut(text=text, choices=choices)
                else:
                    message = MessageOut(text=f"Your visit is tomorrow at 10:00. [m{item.number}]")
                enqueue(db, identity=identity, message=message, kind="prompt", now=now)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class ChannelResult:
    """What one channel achieved, from the fake's log."""

    channel: Channel
    rows: int
    accepted: int
    limit: float
    achieved: float
    violations: int
    duplicates: int
    missing: int
    out_of_order: int
    min_chat_gap: float | None  # seconds between two sends to one chat (Telegram)

    @property
    def ratio(self) -> float:
        return self.achieved / self.limit

    @property
    def passed(self) -> bool:
        return (
            self.ratio >= RATE_GOAL
            and self.violations == 0
            and self.duplicates == self.missing == self.out_of_order == 0
        )


def analyse(
    channel: Channel,
    log: StampedLog,
    violations: int,
    planned: Sequence[Planned],
    limit: float,
    text_field: str,
    address_field: str,
) -> ChannelResult:
    """Rate, duplicates, gaps and order of one fake's log against the planned messages."""
    expected = {p.number: p for p in planned if p.channel == channel}
    numbers: list[int] = []
    for entry in log:
        found = MARKER.search(str(entry.get(text_field, "")))
        numbers.append(int(found.group(1)) if found else -1)
    counts = Counter(numbers)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    missing = len(set(expected) - set(counts))
    by_address: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for at, number, entry in zip(log.times, numbers, log, strict=True):
        by_address[str(entry.get(address_field))].append((at, number))
    out_of_order = sum(
        1
        for sends in by_address.values()
        for (_, a), (_, b) in zip(sends, sends[1:], strict=False)
        if b < a
    )
    gaps = [
        b - a
        for sends in by_address.values()
        for (a, _), (b, _) in zip(sends, sends[1:], strict=False)
    ]
    span = log.times[-1] - log.times[0] if len(log.times) > 1 else 0.0
    return ChannelResult(
        channel=channel,
        rows=len(expected),
        accepted=len(log),
        limit=limit,
        achieved=(len(log) - 1) / span if span > 0 else 0.0,
        violations=violations,
        duplicates=duplicates,
        missing=missing,
        out_of_order=out_of_order,
        min_chat_gap=min(gaps) if gaps and channel == Channel.TELEGRAM else None,
    )


@dataclass(frozen=True)
class Rows:
    """The outbox after the run."""

    statuses: Counter[tuple[Channel, str]]
    attempts: Counter[str]  # "outcome status/error" of every delivery attempt
    max_attempts: int


def outbox_rows(db_url: str) -> Rows:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as db:
            statuses: Counter[tuple[Channel, str]] = Counter()
            for channel, status, count in db.execute(
                select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
                    OutboxMessage.channel, OutboxMessage.status
                )
            ):
                statuses[(channel, str(status))] = count
            attempts: Counter[str] = Counter()
            for outcome, status_code, error_code, count in db.execute(
                select(
                    DeliveryAttempt.outcome,
                    DeliveryAttempt.status_code,
                    DeliveryAttempt.error_code,
                    func.count(),
                ).group_by(
                    DeliveryAttempt.outcome, DeliveryAttempt.status_code, DeliveryAttempt.error_code
                )
            ):
                detail = " ".join(str(part) for part in (status_code, error_code) if part)
                attempts[f"{outcome} {detail}".strip()] += count
            most = db.scalar(select(func.max(OutboxMessage.attempts))) or 0
    finally:
        engine.dispose()
    return Rows(statuses, attempts, most)


def run(options: Options, workdir: Path) -> bool:
    """Fill the outbox, drain it through the fakes, print the table; True when all passed."""
    planned = plan(options)
    with FakeTelegramApi() as telegram_api, FakeTwilioApi() as twilio_api:
        telegram_api.enforce_limits(TELEGRAM_GLOBAL, TELEGRAM_PER_CHAT)
        twilio_api.enforce_rate(options.mps)
        telegram_log, twilio_log = StampedLog(), StampedLog()
        telegram_api.sent, twilio_api.sent = telegram_log, twilio_log
        db_url = migrated_sqlite(workdir)
        os.environ.update(
            {
                "C3N_DATABASE_URL": db_url,
                "C3N_SECRET_KEY": secrets.token_urlsafe(32),
                "C3N_PUBLIC_URL": NOWHERE,
                "C3N_LOG_LEVEL": "WARNING",
                "C3N_TELEGRAM_TOKEN": TEST_BOT_TOKEN,
                "C3N_TELEGRAM_API_URL": telegram_api.url,
                "C3N_TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
                "C3N_TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
                "C3N_TWILIO_FROM": SERVICE_NUMBER,
                "C3N_TWILIO_API_URL": twilio_api.url,
                "C3N_TWILIO_MPS": str(options.mps),
            }
        )
        settings = load_settings(_env_file=None)
        limits = rate_limits(settings)
        fill_outbox(db_url, planned, datetime.now(UTC))
        telegram_rows = sum(p.channel == Channel.TELEGRAM for p in planned)
        sms_rows = len(planned) - telegram_rows
        expected = max(
            telegram_rows / limits[Channel.TELEGRAM].per_second,
            sms_rows / limits[Channel.SMS].per_second,
        )
        runtime = Runtime.build(settings, senders=build_senders(settings))
        # The worker process's own composition: one dispatcher per provider channel.
        workers = runtime.background(tick=False)
        started = time.monotonic()
        for worker in workers:
            worker.start()
        try:
            deadline = started + expected * 2 + 15
            telegram_api.wait_sent(telegram_rows, timeout=max(0.1, deadline - time.monotonic()))
            twilio_api.wait_sent(sms_rows, timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError as exc:
            print(f"not everything was sent in time: {exc}")
        finally:
            for worker in reversed(workers):
                worker.stop()
            runtime.engine.dispose()
        elapsed = time.monotonic() - started
        results = [
            analyse(
                Channel.TELEGRAM,
                telegram_log,
                telegram_api.violations,
                planned,
                limits[Channel.TELEGRAM].per_second,
                "text",
                "chat_id",
            ),
            analyse(
                Channel.SMS,
                twilio_log,
                twilio_api.violations,
                planned,
                limits[Channel.SMS].per_second,
                "Body",
                "To",
            ),
        ]
    rows = outbox_rows(db_url)
    passed = report(results, rows, options, elapsed, expected)
    for result in results:
        result_line.report(
            f"dispatch-{result.channel.value}",
            figure=result.achieved,
            baseline=result.limit,
            unit="msg/s",
            goal=f"ratio>={RATE_GOAL:g}, once, in order",
            met=result.passed,
        )
    return passed


def report(
    results: Sequence[ChannelResult],
    rows: Rows,
    options: Options,
    elapsed: float,
    expected: float,
) -> bool:
    print(
        f"\noutbox dispatch on SQLite: {options.telegram} Telegram messages to {options.chats} "
        f"chats and {options.sms} SMS, a dispatcher per channel, fakes enforcing 30/s + 1/s "
        f"per chat and {options.mps}/s"
    )
    header = (
        f"{'channel':<10}{'rows':>6}{'sent':>6}{'limit/s':>9}{'achieved/s':>12}{'ratio':>7}"
        f"{'goal':>7}{'429s':>6}{'dupes':>7}{'missing':>9}{'order':>7}  result"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result.channel.value:<10}{result.rows:>6}{result.accepted:>6}"
            f"{result.limit:>9.1f}{result.achieved:>12.2f}{result.ratio:>7.3f}"
            f"{'>=' + format(RATE_GOAL, 'g'):>7}{result.violations:>6}{result.duplicates:>7}"
            f"{result.missing:>9}{'ok' if not result.out_of_order else result.out_of_order:>7}"
            f"  {'PASS' if result.passed else 'FAIL'}"
        )
    print(
        "achieved/s: (sent - 1) / (last - first accepted send), from the fakes' logs; 429s: the "
        "fakes' violations\n(a 429 our pacing caused); dupes: a message in a fake's log more "
        "than once; order: each chat's messages in sequence."
    )
    gap = next((r.min_chat_gap for r in results if r.min_chat_gap is not None), None)
    if gap is not None:
        print(f"shortest gap between two messages to one Telegram chat: {gap:.3f} s")
    total = sum(rows.statuses.values())
    sent = sum(n for (_, status), n in rows.statuses.items() if status == "sent")
    rows_ok = sent == total
    print(
        f"outbox: {sent} of {total} rows sent  {'PASS' if rows_ok else 'FAIL'}; attempts per row "
        f"at most {rows.max_attempts}, outcomes {dict(rows.attempts)} (a retry follows a 429)"
    )
    others = {f"{c.value} {s}": n for (c, s), n in rows.statuses.items() if s != "sent"}
    if others:
        print(f"rows not sent: {others}")
    passed = rows_ok and all(r.passed for r in results)
    print(
        f"drained in {elapsed:.1f} s (the limits allow {expected:.1f} s); "
        f"peak memory {peak_rss_mib():.0f} MiB\n\nresult: {'PASS' if passed else 'FAIL'}"
    )
    return passed


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dispatch", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--telegram", type=int, default=600, help="Telegram messages")
    parser.add_argument("--chats", type=int, default=300, help="Telegram chats")
    parser.add_argument("--sms", type=int, default=200, help="SMS messages (one per number)")
    parser.add_argument("--mps", type=int, default=10, help="C3N_TWILIO_MPS, enforced by the fake")
    parser.add_argument("--seed", type=int, default=4, help="seed of the creation order")
    parser.add_argument("--quick", action="store_true", help="300 Telegram (150 chats), 100 SMS")
    args = parser.parse_args(argv)
    if args.quick:
        args.telegram, args.chats, args.sms = 300, 150, 100
    if not (1 <= args.mps <= 100 and 2 <= args.sms <= 5000 and 2 <= args.telegram <= 5000):
        parser.error("need 1 <= --mps <= 100, 2 <= --sms <= 5000, 2 <= --telegram <= 5000")
    return Options(args.telegram, args.chats, args.sms, args.mps, args.seed)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    forget_c3n_environment()
    with loopback_only(), tempfile.TemporaryDirectory(prefix="c3n-bench-") as tmp:
        passed = run(options, Path(tmp))
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
