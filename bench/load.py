"""Load on the Procfile topology: 200 inbound messages a second for five minutes (issue 9).

The topology of bench.topology (PostgreSQL, 2 web, 2 worker, 1 clock, the fakes). 2,000
families (half Telegram, half SMS) each text "PHQ9", answer its ten questions, and start
again, one message at a time: a family's next message waits until its last was answered.
Each tick takes a free family at random (seeded), so families keep their own pace as people
do. With --lockstep they take turns in order instead: all 2,000 then move through PHQ-9
together, and for 10 s in every 110 each message completes a questionnaire (a submission,
its registry delivery and the FHIR push), a herd no network of people sends.
Webhooks leave on a fixed schedule (open loop) at --rate, round robin over the web
processes, each timed from when it was due to its 200. A webhook is answered 200 only
after its message, the engine's step and the reply's outbox row are committed (the inbound
queue's group commit), so that time is an upper bound of "webhook sent -> reply row
committed": the reply-enqueue latency. (The rows' own timestamps cannot tell it: the
service stamps the inbound row and its reply with the same `now`.) Replies then leave as
fast as the providers allow (Telegram 30/s, SMS at MPS), so a backlog builds up meanwhile.

Baseline, measured first in the same run: GET /livez at the same rate on the same web
processes (no database). Figure: the webhooks' p99 in ms; ratio = figure / baseline p99.
Goals: at least 95% of the rate achieved, p99 <= 500 ms, every webhook answered and stored
once and handled. Peak memory (VmHWM) of every process is printed. Exit status 1 when a
goal or a check fails.

    .venv/bin/python -m bench.load [--rate 200] [--duration 300] [--families 2000]
    .venv/bin/python -m bench.load --quick            # 30 s
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from bench.cluster import PUBLIC_URL, Cluster, Shape
from bench.common import (
    LOOPBACK,
    Family,
    LoadClient,
    RawClient,
    collector_paused,
    forget_c3n_environment,
    peak_rss_mib,
    percentile,
)
from bench.driver import next_serial
from bench.procs import CpuUsage
from bench.results import report
from bench.scenario import seed_batch
from bench.topology import memory_lines, stage
from bench.webhooks import Webhook, WebhookFactory
from c3n_bot.store.base import Channel
from c3n_bot.store.models import ChannelIdentity, InboundMessage, OutboxMessage

CYCLE = ("PHQ9", "1", *["0"] * 9)  # start, then the ten answers (q1 > 0 asks q10)
P99_GOAL_MS = 500.0
# Every family's first message starts a PHQ-9, so the run opens with 2,000 starts in 10 s:
# the p99 of what came after is printed too (the goal is the whole run's).
OPENING_SECONDS = 20.0
RATE_GOAL = 0.95
BASELINE_SECONDS = 10.0
LIVEZ = Webhook("/livez", b"", {})


@dataclass
class Phase:
    """What one open-loop phase measured."""

    name: str
    rate: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # due -> answered, seconds
    after_opening: list[float] = field(default_factory=list)  # those due after OPENING_SECONDS
    elapsed: float = 0.0
    skipped: int = 0  # ticks when every family still waited for an answer
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core, by process

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def p(self, fraction: float) -> float:
        """A latency percentile in ms."""
        return percentile(self.latencies, fraction) * 1000


class Speakers:
    """Families texting in turn through their cycle, one message in flight each; a message
    not answered 200 is sent again (same id) at the family's next turn."""

    def __init__(
        self,
        families: Sequence[Family],
        webhooks: WebhookFactory,
        *,
        lockstep: bool = False,
        seed: int = 9,
    ) -> None:
        self._families = families
        self._webhooks = webhooks
        self._step = [0] * len(families)
        self._pending: dict[int, Webhook] = {}
        # Families with no message in flight, in the order they became free. (A scan of all
        # families for a free one cost the generator a core's tenth once most were waiting.)
        self._free = deque(range(len(families)))
        self._pick = _first if lockstep else _any(random.Random(seed))
        self.stored = 0  # distinct webhooks answered 200 (a resent one counts once)

    def next(self) -> tuple[int, Webhook] | None:
        """A free family's message (None when all are waiting)."""
        if not self._free:
            return None
        index = self._pick(self._free)
        if index not in self._pending:
            self._pending[index] = self._message(index)
        return index, self._pending[index]

    def answered(self, index: int, status: int) -> None:
        """The family's message got `status`: on 200 it moves on in its cycle."""
        self._free.append(index)
        if status == 200:
            del self._pending[index]
            self.stored += 1
            self._step[index] = (self._step[index] + 1) % len(CYCLE)

    def _message(self, index: int) -> Webhook:
        family, text = self._families[index], CYCLE[self._step[index]]
        if family.channel == Channel.TELEGRAM:
            return self._webhooks.telegram_text(int(family.address), text, update_id=next_serial())
        return self._webhooks.sms(family.address, text, serial=next_serial())


def _first(free: deque[int]) -> int:
    return free.popleft()


def _any(rng: random.Random) -> Callable[[deque[int]], int]:
    def pick(free: deque[int]) -> int:
        # O(1): the chosen one swaps places with the last, which is popped.
        chosen = rng.randrange(len(free))
        free[chosen], free[-1] = free[-1], free[chosen]
        return free.pop()

    return pick


Next = Callable[[], tuple[int, Webhook] | None]
Done = Callable[[int, int], None]


async def open_loop(
    phase: Phase, clients: Sequence[LoadClient], duration: float, take: Next, done: Done
) -> Phase:
    """Requests started on a fixed schedule at `phase.rate`, each timed from when it was due."""
    start = time.perf_counter() + 0.05
    tasks: set[asyncio.Future[None]] = set()  # in flight only: done ones are let go

    async def one(client: LoadClient, index: int, webhook: Webhook, due: float) -> None:
        status = await client.request(
            "POST" if webhook.body else "GET",
            webhook.path,
            body=webhook.body,
            headers=webhook.headers,
        )
        latency = time.perf_counter() - due
        phase.latencies.append(latency)
        if due - start >= OPENING_SECONDS:
            phase.after_opening.append(latency)
        phase.statuses[status] += 1
        done(index, status)

    for tick in range(max(1, round(phase.rate * duration))):
        due = start + tick / phase.rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        taken = take()
        if taken is None:
            phase.skipped += 1
            continue
        client = clients[tick % len(clients)]
        task = asyncio.ensure_future(one(client, *taken, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    phase.elapsed = time.perf_counter() - start
    return phase


async def measure(
    cluster: Cluster, speakers: Speakers, rate: float, duration: float
) -> list[Phase]:
    """The /livez baseline, then the webhooks, both at `rate` over every web process."""
    ports = [cluster.web_port(child) for child in cluster.webs]
    clients: list[LoadClient] = [RawClient(LOOPBACK, port, max_connections=256) for port in ports]
    try:
        with collector_paused():  # its pauses would be counted as the server's latency
            return await _phases(cluster, clients, speakers, rate, duration)
    finally:
        for client in clients:
            await client.aclose()


async def _phases(
    cluster: Cluster,
    clients: Sequence[LoadClient],
    speakers: Speakers,
    rate: float,
    duration: float,
) -> list[Phase]:
    livez = await open_loop(
        Phase("/livez (baseline)", rate),
        clients,
        min(BASELINE_SECONDS, duration),
        lambda: (0, LIVEZ),
        lambda index, status: None,
    )
    usage = CpuUsage.start(cluster.children.values(), cluster.postgres.postmaster_pid())
    webhooks = await open_loop(
        Phase("webhooks", rate), clients, duration, speakers.next, speakers.answered
    )
    webhooks.cpu = usage.shares()
    return [livez, webhooks]


@dataclass(frozen=True)
class Stored:
    """What the database holds for the families after the run."""

    inbound: int
    unhandled: int
    replies: int
    backlog: int  # replies still waiting for the providers


def stored(cluster: Cluster, families: Sequence[Family]) -> Stored:
    """Inbound rows (handled or not) and outbox rows of the families."""
    contacts = [family.contact_id for family in families]
    identities = select(ChannelIdentity.id).where(ChannelIdentity.contact_id.in_(contacts))
    with cluster.sessions()() as db:
        inbound = db.scalar(select(func.count()).where(InboundMessage.identity_id.in_(identities)))
        unhandled = db.scalar(
            select(func.count()).where(
                InboundMessage.identity_id.in_(identities), InboundMessage.handled_at.is_(None)
            )
        )
        replies = db.scalar(select(func.count()).where(OutboxMessage.contact_id.in_(contacts)))
        backlog = db.scalar(
            select(func.count()).where(
                OutboxMessage.contact_id.in_(contacts), OutboxMessage.status == "pending"
            )
        )
    return Stored(inbound or 0, unhandled or 0, replies or 0, backlog or 0)


def phase_line(phase: Phase) -> str:
    """One phase's figures."""
    achieved = phase.requests / phase.elapsed if phase.elapsed else 0.0
    statuses = {str(status or "no answer"): n for status, n in sorted(phase.statuses.items())}
    return (
        f"{phase.name:<18} {achieved:7.1f}/s of {phase.rate:g}  p50 {phase.p(0.5):7.1f} ms  "
        f"p99 {phase.p(0.99):7.1f} ms  max {phase.p(1.0):7.0f} ms  {statuses}"
        + (f"  ({phase.skipped} ticks with every family waiting)" if phase.skipped else "")
        + (
            f"\n  after the first {OPENING_SECONDS:g} s (every family starting its PHQ-9): "
            f"p50 {percentile(phase.after_opening, 0.5) * 1000:.1f} ms  "
            f"p99 {percentile(phase.after_opening, 0.99) * 1000:.1f} ms"
            if phase.after_opening
            else ""
        )
        + (
            "\n  CPU, share of one core: "
            + ", ".join(f"{name} {share:.0%}" for name, share in phase.cpu.items())
            if phase.cpu
            else ""
        )
    )


def run(
    rate: float, duration: float, families: int, workdir: Path | None, *, lockstep: bool = False
) -> bool:
    """Seed, measure, check, print; True when every goal and check held."""
    with stage(workdir, mps=50, shape=Shape()) as cluster:
        batch = seed_batch(cluster, count=families, first=0)
        webhooks = WebhookFactory(public_url=PUBLIC_URL, telegram_secret=cluster.telegram_secret)
        speakers = Speakers(batch.seeded.families, webhooks, lockstep=lockstep)
        accepted = cluster.providers.accepted()
        livez, load = asyncio.run(measure(cluster, speakers, rate, duration))
        store = stored(cluster, batch.seeded.families)
        sent = cluster.providers.accepted() - accepted
        violations = cluster.providers.violations
        memory = memory_lines(cluster)
    achieved = load.requests / load.elapsed
    checks = {
        f"rate >= {RATE_GOAL:g} x {rate:g}/s": achieved >= RATE_GOAL * rate,
        f"p99 <= {P99_GOAL_MS:g} ms": load.p(0.99) <= P99_GOAL_MS,
        "every webhook answered 200": set(load.statuses) == {200},
        "one inbound row per webhook": store.inbound == speakers.stored,
        "every inbound row handled": store.unhandled == 0,
        "no 429 caused by our pacing": violations == 0,
    }
    print(
        f"\nload on PostgreSQL: {families} families "
        + ("in lockstep" if lockstep else "each at its own pace")
        + f", {rate:g} webhooks/s for {duration:g} s, round robin over 2 web processes "
        "(2 workers, 1 clock)",
        phase_line(livez),
        phase_line(load),
        f"inbound rows {store.inbound} for {speakers.stored} webhooks answered 200, unhandled "
        f"{store.unhandled}; outbox rows {store.replies} (replies), {store.backlog} still "
        f"pending: the providers took {sent} in the run (Telegram 30/s, SMS 50/s)",
        *memory,
        f"load generator and fakes (this process): {peak_rss_mib():.0f} MiB",
        *(f"  {name}: {'PASS' if ok else 'FAIL'}" for name, ok in checks.items()),
        sep="\n",
    )
    met = all(checks.values())
    print("result: " + ("PASS" if met else "FAIL"))
    report(
        "load",
        figure=load.p(0.99),
        baseline=livez.p(0.99),
        unit="ms p99",
        goal=f"p99<={P99_GOAL_MS:g}ms at {rate:g}/s, nothing lost",
        met=met,
    )
    return met


def main(argv: Sequence[str] | None = None) -> None:
    """The command line; exit status 1 when a goal or a check failed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks a second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--families", type=int, default=2000, help="families texting")
    parser.add_argument("--quick", action="store_true", help="30 s")
    parser.add_argument("--workdir", type=Path, help="keep the process logs here")
    parser.add_argument(
        "--lockstep", action="store_true", help="families take turns in order (a herd)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 30.0)
    if not (0 < args.rate <= 2000 and 0 < args.duration <= 3600 and 2 <= args.families <= 20000):
        parser.error("need 0 < --rate <= 2000, 0 < --duration <= 3600, 2 <= --families <= 20000")
    forget_c3n_environment()
    if not run(args.rate, args.duration, args.families, args.workdir, lockstep=args.lockstep):
        sys.exit(1)


if __name__ == "__main__":
    main()
