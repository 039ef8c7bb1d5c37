"""One batch of conversations on a running cluster: seed, start each PHQ-9 through the JSON
API, let the families answer, and wait (bounded) until everything has settled."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import OperationalError

from bench.cluster import PUBLIC_URL, Cluster
from bench.common import Seeded, seed_families
from bench.driver import Families, Gateway, GatewayStats
from bench.ledger import Ledger, Progress, account, progress
from bench.webhooks import Webhook, WebhookFactory
from c3n_bot.service import staff
from c3n_bot.store.base import Channel, Role

STARTS_IN_FLIGHT = 16
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Batch:
    """Seeded families and an API key that may start their flows."""

    seeded: Seeded
    token: str


@dataclass
class Record:
    """What happened, in seconds from the first API call."""

    started: float = 0.0  # every PHQ-9 started (the API answered)
    completed: float = 0.0  # every session completed
    settled: float = 0.0  # and every outbox row sent, every submission pushed
    last: Progress | None = None
    polls_failed: int = 0  # progress polls that met an unreachable database
    notes: list[str] = field(default_factory=list)  # what a drill did
    lease: set[tuple[Channel, str]] = field(default_factory=set)  # in flight at a kill


@dataclass(frozen=True)
class Scene:
    """What a drill's fault acts on, while the batch converses."""

    cluster: Cluster
    batch: Batch
    families: Families
    record: Record


Fault = Callable[[Scene], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """A settled batch: its record, its checks and what its webhooks met."""

    record: Record
    ledger: Ledger
    webhooks: GatewayStats
    heard: Counter[str]

    @property
    def answered(self) -> int:
        """Questions answered: distinct webhooks, each stored once whatever the copies."""
        return self.heard["question"]

    def failures(self) -> list[str]:
        """The checks that failed."""
        failed = self.ledger.failures(self.answered)
        if self.webhooks.gave_up:
            failed.append("webhooks given up")
        return failed


def seed_batch(cluster: Cluster, *, count: int, first: int) -> Batch:
    """`count` families (addresses from `first`) and a clinician's API key for their centers."""
    now = datetime.now(UTC)
    sessions = cluster.sessions()
    seeded = seed_families(sessions, count=count, now=now, first=first)
    with sessions.begin() as db:
        email = f"bench-{first}@c3n-bot.example"
        staff.create_user(
            db,
            email=email,
            name="Bench Clinician",
            password=secrets.token_urlsafe(16),
            role=Role.CLINICIAN,
            center_ids=list(seeded.center_ids),
            now=now,
        )
        key = staff.create_api_key(db, owner_email=email, name="bench", now=now)
    return Batch(seeded, key.token)


async def start_all(api: Gateway, batch: Batch) -> None:
    """POST /api/v1/patients/{id}/sessions {"flow": "phq9"} for every family."""
    slots = asyncio.Semaphore(STARTS_IN_FLIGHT)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {batch.token}"}
    body = json.dumps({"flow": "phq9"}).encode()

    async def start(patient: str) -> None:
        async with slots:
            await api.deliver(Webhook(f"/api/v1/patients/{patient}/sessions", body, headers))

    await asyncio.gather(*(start(str(f.patient_id)) for f in batch.seeded.families))


async def converse(
    cluster: Cluster,
    batch: Batch,
    *,
    timeout: float,
    copies: int = 1,
    fault: Fault | None = None,
) -> Outcome:
    """Start every PHQ-9, run `fault` beside the traffic, wait until the batch settled
    (TimeoutError after `timeout` seconds, with the last progress), then account for it."""
    webhooks = WebhookFactory(public_url=PUBLIC_URL, telegram_secret=cluster.telegram_secret)
    ports = [cluster.web_port(child) for child in cluster.webs]
    gateway, api = Gateway(ports), Gateway(ports)
    families = Families(gateway, webhooks, copies=copies)
    families.attach(asyncio.get_running_loop())
    families.add(batch.seeded)
    cluster.providers.on_sent = families.heard
    record = Record()
    scene = Scene(cluster, batch, families, record)
    faults = asyncio.ensure_future(fault(scene)) if fault else None
    try:
        await _settle(scene, api, timeout, faults)
        if faults is not None:
            await faults
    finally:
        if faults is not None and not faults.done():
            faults.cancel()
        await gateway.aclose()
        await api.aclose()
    cluster.sample_memory()
    with cluster.sessions()() as db:
        ledger = account(db, batch.seeded.families, cluster.providers, lease=record.lease)
    return Outcome(record, ledger, gateway.stats, families.heard_counts)


async def _settle(
    scene: Scene, api: Gateway, timeout: float, faults: asyncio.Future[None] | None
) -> None:
    record = scene.record
    began = time.monotonic()
    await start_all(api, scene.batch)
    record.started = time.monotonic() - began
    while True:
        if faults is not None and faults.done():
            faults.result()  # a fault that failed ends the run with its error
        record.last = await _poll(scene.cluster, scene.batch, record)
        elapsed = time.monotonic() - began
        if record.last is not None:
            if not record.completed and record.last.completed == record.last.families:
                record.completed = elapsed
            if record.last.settled and scene.families.in_flight == 0:
                record.settled = elapsed
                return
        if elapsed > timeout:
            raise TimeoutError(f"not settled within {timeout:g} s: {record.last}")
        await asyncio.sleep(POLL_SECONDS)


async def _poll(cluster: Cluster, batch: Batch, record: Record) -> Progress | None:
    def read() -> Progress:
        with cluster.sessions()() as db:
            return progress(db, batch.seeded.families)

    try:
        return await asyncio.to_thread(read)
    except OperationalError:  # the database is down (a drill): look again later
        record.polls_failed += 1
        return None
