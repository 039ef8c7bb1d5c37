"""Inbound webhook throughput and latency on SQLite, against a bare endpoint (issue 4).

The app runs as `c3n-bot web` runs it (uvicorn, one process, production settings, JSON logs
at INFO; no setWebhook at start-up and no background workers, so no provider is called) in
a child process on 127.0.0.1, so that the load generator has its own interpreter. The load
generator is a minimal keep-alive HTTP/1.1 client (bench.common.RawClient): httpx's
AsyncClient costs more CPU per request than the bare endpoint does and would measure itself
(`--client httpx` shows it; a check fails when the generator nears a full core). Contacts
are mid-PHQ-9, half on Telegram and half on SMS; every request answers "1" for a different
contact in turn. Phases, each --duration seconds:

1. GET /livez, which touches no database: the baseline (closed loop, --concurrency workers);
2. POST /webhooks/telegram: a JSON Update with the secret header and a new update_id;
3. POST /webhooks/twilio/sms: the form Twilio posts, validly signed, with a new MessageSid;
4. each webhook again, open loop, at half the rate it reached, on a fixed schedule.

A webhook is answered after its one transaction commits (inbound row, engine step, reply
row), so a request's time, as the client sees it, is an upper bound of "webhook received ->
reply row committed". In the open-loop phases it counts from when the request was due, so a
late start counts against the server. The server's own log gives the time it spent inside
(`srv p99`). Every request must get 200, and the database must hold one inbound row per
request: nothing lost, nothing doubled.

Goals: each webhook >= 0.25 of the baseline's throughput, and p99 <= 50 ms at half the
webhook's maximum rate. Exit status 1 when a goal or a check fails. The server and the load
generator share this machine's cores with whatever else runs: the load average is printed.

    .venv/bin/python -m bench.inbound [--duration 10] [--concurrency 16] [--contacts 8000]
    .venv/bin/python -m bench.inbound --quick
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench import results as result_line
from bench.common import (
    LOOPBACK,
    NOWHERE,
    AppServer,
    HttpxClient,
    LoadClient,
    RawClient,
    Seeded,
    collector_paused,
    cpu_seconds,
    cpu_ticks,
    forget_c3n_environment,
    loopback_only,
    migrated_sqlite,
    peak_rss_mib,
    percentile,
    seed_mid_phq9,
    settings_from,
    stolen_share,
)
from bench.webhooks import SMS_PATH, TELEGRAM_PATH, Webhook, WebhookFactory
from c3n_bot.service.workers import build_services
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import Alert, ConversationSession, InboundMessage, OutboxMessage
from c3n_bot.store.models.conversations import SessionStatus
from tests.fakes import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_BOT_TOKEN
from tests.fakes.twilio import SERVICE_NUMBER

THROUGHPUT_GOAL = 0.25  # of the bare endpoint's requests per second
P99_GOAL_MS = 50.0  # at half the webhook's maximum rate
ANSWER = "1"
LIVEZ_PATH = "/livez"
# Above this share of a core during the baseline, the load generator limits what it measures.
CLIENT_CPU_LIMIT = 0.6
PHQ9_QUESTIONS = 9  # items before the last; more answers than this may end a session

Send = Callable[[LoadClient], Awaitable[int]]


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    route: str
    elapsed: float = 0.0
    started_at: float = 0.0  # Unix time, to find the server's log lines
    ended_at: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds
    server_latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0  # seconds
    client_cpu: float = 0.0
    stolen: float = 0.0  # share of the machine's CPU the hypervisor took meanwhile
    target_rate: float | None = None  # open loop

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def p(self, fraction: float, *, server: bool = False) -> float:
        """A latency percentile in milliseconds."""
        return percentile(self.server_latencies if server else self.latencies, fraction) * 1000


class Traffic:
    """Builds and sends the three kinds of request; counts the webhooks sent per channel."""

    def __init__(self, seeded: Seeded, *, public_url: str, telegram_secret: str) -> None:
        self._chats = seeded.telegram_chats
        self._numbers = seeded.sms_numbers
        self._webhooks = WebhookFactory(public_url=public_url, telegram_secret=telegram_secret)
        self._update_ids = itertools.count(1)
        self._sids = itertools.count(1)
        self.sent: Counter[Channel] = Counter()

    async def livez(self, client: LoadClient) -> int:
        return await client.request("GET", LIVEZ_PATH, headers={})

    async def telegram(self, client: LoadClient) -> int:
        update_id = next(self._update_ids)
        chat = self._chats[update_id % len(self._chats)]
        self.sent[Channel.TELEGRAM] += 1
        return await _post(client, self._webhooks.telegram_text(chat, ANSWER, update_id=update_id))

    async def sms(self, client: LoadClient) -> int:
        serial = next(self._sids)
        number = self._numbers[serial % len(self._numbers)]
        self.sent[Channel.SMS] += 1
        return await _post(client, self._webhooks.sms(number, ANSWER, serial=serial))


async def _post(client: LoadClient, webhook: Webhook) -> int:
    return await client.request("POST", webhook.path, body=webhook.body, headers=webhook.headers)


async def closed_loop(
    phase: Phase, send: Send, client: LoadClient, *, concurrency: int, duration: float
) -> Phase:
    """`concurrency` workers, each sending its next request as soon as the last is answered."""
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            status = await send(client)
            phase.latencies.append(time.perf_counter() - began)
            phase.statuses[status] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - start
    return phase


async def open_loop(
    phase: Phase, send: Send, client: LoadClient, *, rate: float, duration: float
) -> Phase:
    """Requests started on a fixed schedule at `rate`, each timed from when it was due."""
    phase.target_rate = rate
    count = max(1, round(rate * duration))
    start = time.perf_counter() + 0.01

    async def one(due: float) -> None:
        status = await send(client)
        phase.latencies.append(time.perf_counter() - due)
        phase.statuses[status] += 1

    tasks = []
    for index in range(count):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    phase.elapsed = time.perf_counter() - start
    return phase


async def measured(server: AppServer, phase: Phase, run: Awaitable[Phase]) -> Phase:
    """Run a phase, adding the CPU time both processes spent and its wall-clock window."""
    with collector_paused():
        server_cpu, client_cpu, ticks = cpu_seconds(server.pid), cpu_seconds(), cpu_ticks()
        phase.started_at = time.time()
        await run
        phase.ended_at = time.time()
        phase.server_cpu = cpu_seconds(server.pid) - server_cpu
        phase.client_cpu = cpu_seconds() - client_cpu
        phase.stolen = stolen_share(ticks, cpu_ticks())
    return phase


@dataclass(frozen=True)
class Options:
    """The command line."""

    duration: float
    concurrency: int
    contacts: int
    warmup: float
    client: str
    workdir: Path | None


async def load(
    server: AppServer, traffic: Traffic, options: Options
) -> tuple[list[Phase], Counter[str]]:
    """Warm up, then the five phases, all through one client."""
    connections = max(64, options.concurrency)
    client: LoadClient
    if options.client == "httpx":
        client = HttpxClient(server.url, max_connections=connections)
    else:
        client = RawClient(LOOPBACK, server.port, max_connections=connections)
    duration, concurrency = options.duration, options.concurrency
    phases: list[Phase] = []
    try:
        # Connections, caches and the first SQLite pages; counted in the final check only.
        for send in (traffic.livez, traffic.telegram, traffic.sms):
            warm = Phase("warm-up", "")
            await closed_loop(warm, send, client, concurrency=concurrency, duration=options.warmup)
            if set(warm.statuses) != {200}:
                raise RuntimeError(f"warm-up answers: {dict(warm.statuses)}")
        for name, route, send in (
            ("/livez (baseline)", LIVEZ_PATH, traffic.livez),
            ("telegram max", TELEGRAM_PATH, traffic.telegram),
            ("sms max", SMS_PATH, traffic.sms),
        ):
            phase = Phase(name, route)
            run = closed_loop(phase, send, client, concurrency=concurrency, duration=duration)
            phases.append(await measured(server, phase, run))
        for top, send in ((phases[1], traffic.telegram), (phases[2], traffic.sms)):
            phase = Phase(f"{top.name.split()[0]} half rate", top.route)
            run = open_loop(phase, send, client, rate=top.rate / 2, duration=duration)
            phases.append(await measured(server, phase, run))
    finally:
        await client.aclose()
    return phases, client.errors


def server_env(db_url: str, telegram_secret: str) -> Callable[[int], dict[str, str]]:
    """The child's environment for a port: production mode, both channels on, webhook mode."""
    secret_key = secrets.token_urlsafe(32)

    def env(port: int) -> dict[str, str]:
        return {
            "C3N_DATABASE_URL": db_url,
            "C3N_SECRET_KEY": secret_key,
            "C3N_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "C3N_LOG_LEVEL": "INFO",
            "C3N_TELEGRAM_TOKEN": TEST_BOT_TOKEN,
            "C3N_TELEGRAM_MODE": "webhook",
            "C3N_TELEGRAM_WEBHOOK_SECRET": telegram_secret,
            "C3N_TELEGRAM_API_URL": NOWHERE,
            "C3N_TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "C3N_TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "C3N_TWILIO_FROM": SERVICE_NUMBER,
            "C3N_TWILIO_API_URL": NOWHERE,
        }

    return env


@dataclass(frozen=True)
class Stored:
    """What the database holds after the run."""

    inbound: Counter[Channel]
    unhandled: int
    replies: Counter[Channel]
    completed: int
    alerts: int


def stored(db_url: str, outbox_before: int) -> Stored:
    """Count inbound rows, replies written by the run, completed sessions and alerts."""
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as db:
            inbound = Counter(
                {
                    channel: count
                    for channel, count in db.execute(
                        select(InboundMessage.channel, func.count()).group_by(
                            InboundMessage.channel
                        )
                    )
                }
            )
            unhandled = db.scalar(select(func.count()).where(InboundMessage.handled_at.is_(None)))
            replies = Counter(
                {
                    channel: count
                    for channel, count in db.execute(
                        select(OutboxMessage.channel, func.count())
                        .where(OutboxMessage.id > outbox_before)
                        .group_by(OutboxMessage.channel)
                    )
                }
            )
            completed = db.scalar(
                select(func.count()).where(ConversationSession.status == SessionStatus.COMPLETED)
            )
            alerts = db.scalar(select(func.count()).select_from(Alert))
    finally:
        engine.dispose()
    return Stored(inbound, unhandled or 0, replies, completed or 0, alerts or 0)


@dataclass(frozen=True)
class ServerLog:
    """What the server's log says beyond request times."""

    errors: int  # lines at level error or critical
    unavailable: int  # webhooks answered 503: the database (lock) was not available in time


UNAVAILABLE_EVENTS = ("webhook.database_unavailable", "twilio.database_unavailable")


def read_server_log(server: AppServer, phases: Sequence[Phase]) -> ServerLog:
    """Fill each phase's server-side latencies from the log; count errors and 503s."""
    errors = unavailable = 0
    requests = []
    for entry in server.log_entries():
        if entry.fields.get("level") in ("error", "critical"):
            errors += 1
        if entry.fields.get("event") in UNAVAILABLE_EVENTS:
            unavailable += 1
        if entry.fields.get("event") == "http.request":
            requests.append(entry)
    for phase in phases:
        phase.server_latencies = [
            float(str(entry.fields["ms"])) / 1000
            for entry in requests
            if entry.fields.get("route") == phase.route
            and phase.started_at - 0.002 <= entry.at <= phase.ended_at + 0.002
        ]
    return ServerLog(errors, unavailable)


def report(
    phases: Sequence[Phase],
    options: Options,
    seeded: Seeded,
    traffic: Traffic,
    store: Stored,
    server_log: ServerLog,
    client_errors: Counter[str],
    server_peak: float,
) -> bool:
    """Print the table, the goals and the checks; True when all pass."""
    base, telegram, sms, telegram_half, sms_half = phases
    print(
        f"\ninbound webhooks on SQLite: {options.contacts} contacts mid-PHQ-9 "
        f"({len(seeded.telegram_chats)} Telegram, {len(seeded.sms_numbers)} SMS), "
        f"{options.concurrency} concurrent requests, {options.duration:g} s per phase"
    )
    header = (
        f"{'phase':<19}{'req/s':>8}{'base req/s':>11}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}"
        f"{'srv p99':>9}{'srv cpu':>9}{'cpu/req':>9}{'cli cpu':>9}{'stolen':>8}{'requests':>10}"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        compared = phase is not base and phase.target_rate is None
        rate = f"{phase.target_rate:.0f}*" if phase.target_rate else f"{phase.rate:.0f}"
        print(
            f"{phase.name:<19}{rate:>8}"
            f"{f'{base.rate:.0f}' if compared else '':>11}"
            f"{f'{phase.rate / base.rate:.3f}' if compared else '':>7}"
            f"{phase.p(0.50):>8.1f}{phase.p(0.99):>8.1f}{phase.p(1.0):>8.0f}"
            f"{phase.p(0.99, server=True):>9.1f}"
            f"{phase.server_cpu / phase.elapsed:>9.0%}"
            f"{phase.server_cpu / max(1, phase.requests) * 1000:>9.2f}"
            f"{phase.client_cpu / phase.elapsed:>9.0%}{phase.stolen:>8.0%}{phase.requests:>10}"
        )
    print(
        "* open loop: requests started on a fixed schedule at this rate; latency counted from "
        "when each was due.\n"
        "p50/p99/max: client-side request time (an upper bound of webhook received -> reply row "
        "committed);\nsrv p99: from the server's request log (middleware in -> out); srv cpu, "
        "cli cpu: share of one core used by the server, the load generator; cpu/req: server CPU "
        "ms per request;\nstolen: share of the machine's CPU time its hypervisor took (on a "
        "shared host, a phase with much stolen is slowed down by others)."
    )
    results: list[tuple[str, bool]] = []
    print("\ngoals")
    for phase in (telegram, sms):
        ratio = phase.rate / base.rate
        ok = ratio >= THROUGHPUT_GOAL
        results.append((phase.name, ok))
        print(
            f"  {phase.name.split()[0]:<9} throughput >= {THROUGHPUT_GOAL} x baseline: "
            f"{ratio:.3f} ({phase.rate:.0f} / {base.rate:.0f} req/s)  {_verdict(ok)}"
        )
    for phase in (telegram_half, sms_half):
        p99 = phase.p(0.99)
        ok = p99 <= P99_GOAL_MS
        results.append((phase.name, ok))
        print(
            f"  {phase.name.split()[0]:<9} p99 <= {P99_GOAL_MS:g} ms at half max rate "
            f"({phase.target_rate or 0:.0f} req/s): {p99:.1f} ms  {_verdict(ok)}"
        )
    print("\nchecks")
    for channel, channel_phases in (
        (Channel.TELEGRAM, (telegram, telegram_half)),
        (Channel.SMS, (sms, sms_half)),
    ):
        sent = traffic.sent[channel]
        # Warm-up requests are checked in load(); these are the measured ones plus them.
        ok_answers = sum(p.statuses[200] for p in channel_phases)
        measured = sum(p.requests for p in channel_phases)
        warm = sent - measured
        rows = store.inbound[channel]
        ok = ok_answers == measured and rows == sent
        results.append((f"{channel.value} nothing lost", ok))
        other = {
            status: count
            for p in channel_phases
            for status, count in p.statuses.items()
            if status != 200
        }
        print(
            f"  {channel.value:<9} {sent} webhooks sent ({warm} in warm-up), "
            f"{ok_answers + warm} answered 200"
            + (f", others {other}" if other else "")
            + f"; {rows} inbound rows; {store.replies[channel]} outbox rows written  "
            + _verdict(ok)
        )
    ok = store.unhandled == 0 and server_log.errors == 0
    results.append(("handled, no errors", ok))
    print(
        f"  every inbound row handled: {store.unhandled} not; server log errors: "
        f"{server_log.errors}  {_verdict(ok)}"
    )
    if server_log.unavailable:
        print(
            f"  {server_log.unavailable} webhooks answered 503 'database unavailable': the "
            "SQLite write lock was not free within its busy timeout"
        )
    client_share = base.client_cpu / base.elapsed
    ok = client_share <= CLIENT_CPU_LIMIT
    results.append(("baseline measures the server", ok))
    print(
        f"  the baseline measures the server, not the load generator: it used {client_share:.0%} "
        f"of a core (at most {CLIENT_CPU_LIMIT:.0%})  {_verdict(ok)}"
    )
    if client_errors:
        print(f"  requests without an answer, by client error: {dict(client_errors)}")
    contacts = max(len(seeded.telegram_chats), len(seeded.sms_numbers))
    most = math.ceil(max(traffic.sent.values()) / contacts)
    # Every request must be an answer in the middle of a PHQ-9: a contact who ran out of
    # questions gets a cheaper "nothing pending" reply, and the run would flatter the server.
    ok = store.completed == 0
    results.append(("every answer mid-PHQ-9", ok))
    print(
        f"  every answer mid-PHQ-9: at most {most} answers per contact (PHQ-9 asks "
        f"{PHQ9_QUESTIONS}+1), sessions completed: {store.completed}, alerts raised: "
        f"{store.alerts}  {_verdict(ok)}" + ("" if ok else " (raise --contacts)") + "\n"
        f"  peak memory: server {server_peak:.0f} MiB, load generator {peak_rss_mib():.0f} MiB"
    )
    failed = [name for name, ok in results if not ok]
    print("\nresult: " + ("PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"))
    return not failed


def result_lines(phases: Sequence[Phase]) -> None:
    """One RESULT line per goal: each webhook's throughput, and the p99 at half rate."""
    base, telegram, sms, telegram_half, sms_half = phases
    for label, phase in (("inbound-telegram", telegram), ("inbound-sms", sms)):
        result_line.report(
            label,
            figure=phase.rate,
            baseline=base.rate,
            unit="req/s",
            goal=f"ratio>={THROUGHPUT_GOAL:g}",
            met=phase.rate >= THROUGHPUT_GOAL * base.rate,
        )
    p99 = max(telegram_half.p(0.99), sms_half.p(0.99))
    result_line.report(
        "inbound-p99",
        figure=p99,
        baseline=base.p(0.99),
        unit="ms p99",
        goal=f"p99<={P99_GOAL_MS:g}ms at half rate",
        met=p99 <= P99_GOAL_MS,
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inbound", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--contacts", type=int, default=8000, help="contacts mid-PHQ-9")
    parser.add_argument("--quick", action="store_true", help="2 s phases, 2,000 contacts")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: raw HTTP/1.1 (default) or httpx.AsyncClient, for comparison",
    )
    parser.add_argument("--workdir", type=Path, help="keep the database and server log here")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.contacts = 2.0, min(args.contacts, 2000)
    if args.duration <= 0 or args.duration > 60 or args.concurrency < 1 or args.contacts < 2:
        parser.error("need 0 < --duration <= 60, --concurrency >= 1, --contacts >= 2")
    warmup = min(1.0, args.duration / 4)
    return Options(
        args.duration, args.concurrency, args.contacts, warmup, args.client, args.workdir
    )


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_options(argv)
    forget_c3n_environment()
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    with loopback_only(), tempfile.TemporaryDirectory(prefix="c3n-bench-") as tmp:
        workdir = options.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db_url = migrated_sqlite(workdir)
        telegram_secret = secrets.token_urlsafe(24)
        env_for = server_env(db_url, telegram_secret)
        settings = settings_from(env_for(0))
        engine = make_engine(db_url)
        try:
            seeded = seed_mid_phq9(
                make_session_factory(engine),
                build_services(settings),
                count=options.contacts,
                now=datetime.now(UTC),
            )
            with make_session_factory(engine)() as db:
                outbox_before = db.scalar(select(func.max(OutboxMessage.id))) or 0
        finally:
            engine.dispose()
        seeded_in = time.perf_counter() - began
        with AppServer(env_for, workdir, max_seconds=options.duration * 6 + 120) as server:
            traffic = Traffic(seeded, public_url=server.url, telegram_secret=telegram_secret)
            phases, client_errors = asyncio.run(load(server, traffic, options))
            server_peak = peak_rss_mib(server.pid)
        server_log = read_server_log(server, phases)
        store = stored(db_url, outbox_before)
        passed = report(
            phases, options, seeded, traffic, store, server_log, client_errors, server_peak
        )
        result_lines(phases)
    print(
        f"(seeding {seeded_in:.1f} s, total {time.perf_counter() - began:.1f} s; {os.cpu_count()} "
        f"CPUs, load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after: other "
        "processes' load takes CPU from both sides and shows in the latencies)"
    )
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
