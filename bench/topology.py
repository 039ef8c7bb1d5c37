"""The Procfile topology on PostgreSQL, 1,000 concurrent conversations to completion (issue 9).

A throwaway PostgreSQL 15 server (tests/pgserver.py), the fake Telegram, Twilio and FHIR
servers on loopback in this process (enforcing Telegram's 30 messages a second and 1 a
second per chat, and C3N_TWILIO_MPS), then the Procfile as real processes: `c3n-bot migrate`
once, two `c3n-bot web` (each on its own port), two `c3n-bot worker` and one `c3n-bot clock`
(`--clocks 2` adds a second), configured by C3N_* variables only (webhook mode).

N families (half Telegram, half SMS) are seeded; a clinician's API key starts a PHQ-9 for
each through `POST /api/v1/patients/{id}/sessions`, round robin over the web processes; then
each family answers every question the moment a fake accepts it, by a webhook posted to the
next web process (the load balancer's part). The run is over when every session completed,
every outbox row was sent and every submission pushed to the FHIR sink.

Checks: all sessions completed, one submission each, created once at the FHIR sink, one
stored inbound message per answer, and the fakes accepted exactly the messages the sent rows
render to (nothing lost, nothing sent twice), with no 429 our pacing caused.

Figure: seconds until everything settled. Baseline, from the same run: the seconds the
providers' limits alone require for the messages it sent (Telegram's 30/s and 1/s per chat,
SMS at MPS). Goal: at most 2x that, and every check passes (exit status 1 otherwise).

    .venv/bin/python -m bench.topology [--families 1000] [--mps 50] [--workers 2] [--clocks 1]
    .venv/bin/python -m bench.topology --quick        # 100 families
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import Cluster, Shape
from bench.common import forget_c3n_environment, loopback_only, percentile
from bench.ledger import Ledger
from bench.providers import TELEGRAM_GLOBAL, TELEGRAM_PER_CHAT, Providers
from bench.results import report
from bench.scenario import Outcome, converse, seed_batch
from c3n_bot.store.base import Channel

GOAL_RATIO = 2.0  # conversations are interactive: few families leave the limits idle at times


@dataclass(frozen=True)
class Options:
    """The command line."""

    families: int
    mps: int
    workers: int
    clocks: int
    workdir: Path | None


@contextlib.contextmanager
def stage(workdir: Path | None, *, mps: int, shape: Shape) -> Iterator[Cluster]:
    """Fakes and cluster up (logs in `workdir`, else a temporary folder); all down after."""
    with (
        loopback_only(),
        tempfile.TemporaryDirectory(prefix="c3n-topology-") as tmp,
        Providers(mps=mps) as providers,
    ):
        folder = workdir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        with Cluster(folder, providers, shape) as cluster:
            yield cluster


def limits_seconds(ledger: Ledger, mps: int) -> float:
    """The shortest time the providers' limits allow for the messages the rows sent."""
    per_channel: Counter[Channel] = Counter()
    per_address: Counter[tuple[Channel, str]] = Counter()
    for (channel, address, _), count in ledger.expected.items():
        per_channel[channel] += count
        per_address[(channel, address)] += count
    busiest_chat = max(
        (n for (channel, _), n in per_address.items() if channel == Channel.TELEGRAM), default=0
    )
    return max(
        per_channel[Channel.TELEGRAM] / TELEGRAM_GLOBAL,
        (busiest_chat - 1) / TELEGRAM_PER_CHAT,
        per_channel[Channel.SMS] / mps,
    )


def outcome_lines(outcome: Outcome) -> list[str]:
    """What a settled batch shows: timings, the ledger, the webhooks' way."""
    record, stats = outcome.record, outcome.webhooks
    latencies = sorted(stats.latencies)
    answers = {str(status or "no answer"): n for status, n in sorted(stats.answers.items())}
    return [
        f"started {record.started:.1f} s, all completed {record.completed:.1f} s, "
        f"settled {record.settled:.1f} s (from the first API call)",
        *outcome.ledger.lines(outcome.answered),
        f"webhooks: {outcome.answered} answers, {stats.delivered} deliveries answered 2xx, "
        f"every try {answers}; first try -> 2xx p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms; given up {stats.gave_up}",
        f"families heard {dict(outcome.heard)}",
    ]


def memory_lines(cluster: Cluster) -> list[str]:
    """Each process's peak resident memory."""
    cluster.sample_memory()
    peaks = ", ".join(f"{c.name} {c.peak_mib:.0f}" for c in cluster.children.values())
    return [f"peak memory (MiB): {peaks}"]


async def _run(cluster: Cluster, families: int, timeout: float) -> tuple[Outcome, float]:
    began = time.monotonic()
    batch = seed_batch(cluster, count=families, first=0)
    seeded = time.monotonic() - began
    return await converse(cluster, batch, timeout=timeout), seeded


def run(options: Options) -> bool:
    """Start everything, converse, check, print; True when the goal and every check held."""
    shape = Shape(workers=options.workers, clocks=options.clocks)
    began = time.monotonic()
    with stage(options.workdir, mps=options.mps, shape=shape) as cluster:
        up = time.monotonic() - began
        # Bounded: ten times what the limits need for 12 messages a conversation, plus start-up.
        timeout = 120 + 10 * options.families * 12 / 2 / TELEGRAM_GLOBAL
        outcome, seeded = asyncio.run(_run(cluster, options.families, timeout))
        violations = cluster.providers.violations
        pids = ", ".join(f"{c.name} {c.pid}" for c in cluster.children.values())
        lines = [
            f"\ntopology on PostgreSQL: {pids}; {cluster.migrate_output}",
            f"up in {up:.1f} s; {options.families} families seeded in {seeded:.1f} s",
            *outcome_lines(outcome),
            f"429s our pacing caused (the fakes' violations): Telegram "
            f"{cluster.providers.telegram.violations}, SMS {cluster.providers.twilio.violations}",
            *memory_lines(cluster),
        ]
    print("\n".join(lines))
    baseline = limits_seconds(outcome.ledger, options.mps)
    failed = outcome.failures() + (["rate limits"] if violations else [])
    met = not failed and outcome.record.settled <= GOAL_RATIO * baseline
    print(
        f"settled in {outcome.record.settled:.1f} s; the providers' limits allow "
        f"{baseline:.1f} s for these messages: {outcome.record.settled / baseline:.2f}x "
        f"(goal <= {GOAL_RATIO:g}x)\nresult: " + ("PASS" if met else f"FAIL {failed}")
    )
    report(
        "topology",
        figure=outcome.record.settled,
        baseline=baseline,
        unit="s",
        goal=f"ratio<={GOAL_RATIO:g}, nothing lost or twice",
        met=met,
    )
    return met


def parse_options(argv: Sequence[str] | None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.topology", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--families", type=int, default=1000, help="concurrent conversations")
    parser.add_argument("--mps", type=int, default=50, help="C3N_TWILIO_MPS, enforced by the fake")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--clocks", type=int, default=1, choices=(1, 2), help="clock processes")
    parser.add_argument("--quick", action="store_true", help="100 families")
    parser.add_argument("--workdir", type=Path, help="keep the process logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.families = min(args.families, 100)
    if not 2 <= args.families <= 10_000 or not 1 <= args.mps <= 1000:
        parser.error("need 2 <= --families <= 10000 and 1 <= --mps <= 1000")
    return Options(args.families, args.mps, args.workers, args.clocks, args.workdir)


def main(argv: Sequence[str] | None = None) -> None:
    """Run once; exit status 1 when the goal or a check failed."""
    options = parse_options(argv)
    forget_c3n_environment()
    if not run(options):
        sys.exit(1)


if __name__ == "__main__":
    main()
