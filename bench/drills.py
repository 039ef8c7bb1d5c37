"""Fault drills on the Procfile topology (issue 9): crashes, a database restart, storms.

One topology (bench.topology: PostgreSQL, the fakes, 2 web, 2 worker, 1 clock) runs every
drill in turn; each drill is a fresh batch of families (100 by default: half Telegram, half
SMS) conversing to completion while its fault strikes, bounded by a timeout:

- baseline: no fault. Its time is the baseline of every drill's figure.
- worker-kill: when 30% of the batch's messages are out, the worker holding the Telegram
  lease is killed (SIGKILL) the moment the fake Bot API accepts one of its messages, before
  it hears the answer: the worst moment, mid-send. A supervisor restarts it 2 s later.
- web-kill: web1 is killed (SIGKILL) while webhooks are in flight to it; the providers
  (the gateway) send what got no answer to web2 again. web1 is restarted 3 s later.
- pg-restart: PostgreSQL stops (fast shutdown) for 5 s and starts again; webhooks answer
  503 meanwhile, and the providers send them again until they are answered 200.
- storm: for a minute, both fakes answer 30% of sends with a 5xx, and every send with a 429
  for 1 s in every 5 s; everything must still arrive, once, and the rate limits hold (the
  fakes count every 429 our pacing caused, apart from those they injected).
- dedupe: every webhook is delivered five times, at once, to both web processes.

Every drill checks what bench.topology checks: nothing lost, nothing sent twice. A message
may leave twice only in the dispatcher's documented window: the row being sent when its
worker died, resent by the worker that took the lease over (logged `outbox.recovered`);
such resends are counted apart and must be to a recipient of a recovered row.

Figure per drill: seconds until the batch settled; baseline: the clean batch's. Exit status 1
when any check fails.

    .venv/bin/python -m bench.drills [--families 100] [--only worker-kill,storm]
    .venv/bin/python -m bench.drills --quick          # 40 families a drill
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bench.cluster import Cluster, Shape
from bench.common import forget_c3n_environment
from bench.procs import Child
from bench.providers import Storm
from bench.results import report
from bench.scenario import Fault, Outcome, Scene, converse, seed_batch
from bench.topology import memory_lines, outcome_lines, stage
from c3n_bot.store.base import Channel
from c3n_bot.store.models import OutboxMessage

TRIGGER_SHARE = 0.3  # of the batch's messages out before a fault strikes
MESSAGES_PER_FAMILY = 12
DOWN_SECONDS = 5.0
TELEGRAM_LEASE = "c3n-dispatch-telegram"
EVENT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Drill:
    """A named fault (or setting) applied to one batch."""

    name: str
    fault: Callable[[int], Fault] | None = None  # given the batch size
    storm: Storm | None = None
    copies: int = 1


async def _traffic(scene: Scene, families: int, share: float = TRIGGER_SHARE) -> None:
    """Wait until `share` of the batch's messages were accepted (bounded)."""
    target = scene.cluster.providers.accepted() + int(families * MESSAGES_PER_FAMILY * share)
    deadline = time.monotonic() + EVENT_TIMEOUT
    while scene.cluster.providers.accepted() < target:
        if time.monotonic() > deadline:
            raise TimeoutError("the batch's traffic did not start")
        await asyncio.sleep(0.05)


async def _recovered(scene: Scene, offsets: dict[str, int], timeout: float) -> None:
    """Add the recipients of the rows a lease takeover recovered to the lease window."""
    deadline = time.monotonic() + timeout
    while True:
        ids = [
            int(outbox_id)
            for child in scene.cluster.children.values()
            if child.name.startswith("worker")
            for entry in child.events("outbox.recovered", since=offsets.get(child.name, 0))
            for outbox_id in entry.get("outbox_ids", [])
        ]
        if ids or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    with scene.cluster.sessions()() as db:
        rows = db.execute(
            select(OutboxMessage.channel, OutboxMessage.address).where(OutboxMessage.id.in_(ids))
        )
        scene.record.lease.update((channel, address) for channel, address in rows)
    scene.record.notes.append(f"{len(ids)} rows recovered by a lease takeover")


def _offsets(cluster: Cluster) -> dict[str, int]:
    return {name: child.log_size() for name, child in cluster.children.items()}


def worker_kill(families: int) -> Fault:
    """SIGKILL the Telegram lease holder as the fake accepts one of its messages."""

    async def fault(scene: Scene) -> None:
        cluster, record = scene.cluster, scene.record
        await _traffic(scene, families)
        holder = cluster.lease_holder(TELEGRAM_LEASE)
        if holder is None:
            raise RuntimeError("no worker holds the Telegram lease")
        offsets = _offsets(cluster)
        killed: list[tuple[Channel, str]] = []

        def mid_send(channel: Channel, address: str, text: str) -> None:
            # The fake's thread, before it answers: the worker never hears "accepted".
            if channel == Channel.TELEGRAM and not killed:
                holder.send_kill()
                killed.append((channel, address))

        cluster.providers.tap = mid_send
        began = time.monotonic()
        while not killed:
            if time.monotonic() - began > EVENT_TIMEOUT:
                raise TimeoutError("no Telegram message to kill the worker on")
            await asyncio.sleep(0.01)
        cluster.providers.tap = None
        record.notes.append(f"{holder.name} (Telegram lease) killed mid-send")
        record.lease.update(killed)
        await asyncio.sleep(2.0)
        await cluster.restart(holder.name)
        await _recovered(scene, offsets, EVENT_TIMEOUT)

    return fault


def web_kill(families: int) -> Fault:
    """SIGKILL web1 while webhooks are in flight to it; restart it 3 s later."""

    async def fault(scene: Scene) -> None:
        await _traffic(scene, families)
        web: Child = scene.cluster.webs[0]
        gateway = scene.families.gateway
        deadline = time.monotonic() + EVENT_TIMEOUT
        while gateway.in_flight[0] == 0:
            if time.monotonic() > deadline:
                raise TimeoutError("no webhook in flight to web1")
            await asyncio.sleep(0.001)
        scene.record.notes.append(f"web1 killed with {gateway.in_flight[0]} requests in flight")
        web.send_kill()
        await asyncio.sleep(3.0)
        await scene.cluster.restart(web.name)

    return fault


def pg_restart(families: int) -> Fault:
    """PostgreSQL down for DOWN_SECONDS mid-traffic, then up again."""

    async def fault(scene: Scene) -> None:
        cluster = scene.cluster
        await _traffic(scene, families)
        offsets = _offsets(cluster)
        began = time.monotonic()
        await asyncio.to_thread(cluster.postgres.halt, "fast")
        scene.record.notes.append(f"database stopped in {time.monotonic() - began:.1f} s")
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(cluster.postgres.resume)
        scene.record.notes.append(f"back {time.monotonic() - began:.1f} s after the stop began")
        await _recovered(scene, offsets, 15.0)

    return fault


DRILLS = (
    Drill("worker-kill", fault=worker_kill),
    Drill("web-kill", fault=web_kill),
    Drill("pg-restart", fault=pg_restart),
    Drill("storm", storm=Storm(error_share=0.3, burst_every=5.0, burst_seconds=1.0, lasts=60.0)),
    Drill("dedupe", copies=5),
)


async def _batch(cluster: Cluster, drill: Drill, size: int, first: int) -> Outcome:
    batch = seed_batch(cluster, count=size, first=first)
    cluster.providers.set_storm(drill.storm or Storm())
    try:
        return await converse(
            cluster,
            batch,
            timeout=300.0 + size * 3,
            copies=drill.copies,
            fault=drill.fault(size) if drill.fault else None,
        )
    finally:
        cluster.providers.set_storm(Storm())


async def _revive(cluster: Cluster) -> None:
    """Restart whatever a drill left dead, and PostgreSQL if it is down."""
    try:
        with cluster.sessions()() as db:
            db.execute(select(1))
    except OperationalError:
        await asyncio.to_thread(cluster.postgres.resume)
    for child in cluster.children.values():
        if not child.alive:
            await cluster.restart(child.name)


async def _run_drill(cluster: Cluster, drill: Drill, size: int, first: int) -> tuple[bool, float]:
    """One drill: its lines and RESULT (baseline filled in by the caller); (passed, seconds)."""
    violations = cluster.providers.violations
    try:
        outcome = await _batch(cluster, drill, size, first)
    except (TimeoutError, RuntimeError) as exc:
        print(f"\n== {drill.name}: FAIL ({exc})", flush=True)
        await _revive(cluster)
        return False, math.nan
    violations = cluster.providers.violations - violations
    failed = outcome.failures() + (["rate limits"] if violations else [])
    notes = "; ".join(outcome.record.notes)
    lines = [f"\n== {drill.name}" + (f": {notes}" if notes else ""), *outcome_lines(outcome)]
    if drill.storm is not None:
        lines.append(f"injected by the storm: {dict(drill.storm.injected)}")
    lines.append(f"429s our pacing caused: {violations}")
    lines.append("result: " + ("PASS" if not failed else f"FAIL {failed}"))
    print("\n".join(lines), flush=True)
    await _revive(cluster)
    return not failed, outcome.record.settled


async def run_drills(cluster: Cluster, drills: Sequence[Drill], size: int) -> bool:
    """The baseline batch, then each drill's; prints a RESULT line for each."""
    passed, baseline = await _run_drill(cluster, Drill("baseline"), size, 0)
    report(
        "drill-baseline",
        figure=baseline,
        baseline=baseline,
        unit="s",
        goal="nothing lost or twice",
        met=passed,
    )
    for number, drill in enumerate(drills, start=1):
        ok, seconds = await _run_drill(cluster, drill, size, number * size)
        report(
            f"drill-{drill.name}",
            figure=seconds,
            baseline=baseline,
            unit="s",
            goal="nothing lost or twice",
            met=ok,
        )
        passed = passed and ok
    print("\n".join(memory_lines(cluster)))
    return passed


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with the chosen drills in `drills`."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.drills", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    names = [drill.name for drill in DRILLS]
    parser.add_argument("--families", type=int, default=100, help="families per drill")
    parser.add_argument("--mps", type=int, default=50, help="C3N_TWILIO_MPS, enforced by the fake")
    parser.add_argument("--only", help=f"comma list of drills (default all: {','.join(names)})")
    parser.add_argument("--quick", action="store_true", help="40 families per drill")
    parser.add_argument("--workdir", type=Path, help="keep the process logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.families = min(args.families, 40)
    chosen = args.only.split(",") if args.only else names
    if unknown := set(chosen) - set(names):
        parser.error(f"unknown drills: {sorted(unknown)}")
    if not 2 <= args.families <= 2_000:
        parser.error("need 2 <= --families <= 2000")
    args.drills = [drill for drill in DRILLS if drill.name in chosen]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the drills on one topology; exit status 1 when any check failed."""
    args = parse_options(argv)
    forget_c3n_environment()
    with stage(args.workdir, mps=args.mps, shape=Shape()) as cluster:
        passed = asyncio.run(run_drills(cluster, args.drills, args.families))
    print("\nresult: " + ("PASS" if passed else "FAIL"))
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
