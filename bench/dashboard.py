"""Dashboard: p95 server time of the inbox and of a patient page versus their main query alone.

Seeds 50,000 patients in 20 centers and 1,000,000 submissions over a year (1% with an alert)
into a temporary SQLite file with bulk inserts (`bench.dashboard_seed`), then signs in a
clinician of two centers and, alternately in the same run:

- `GET /` through the real app in-process (httpx ASGITransport; the server time is taken
  around the ASGI call, so no client cost is counted), versus the inbox's main query alone
  (`inbox.submissions_query`: the first page of the newest submissions with their patients);
- `GET /patients/{id}` for a different patient each time, versus the page's submission
  timeline (`patient_timeline.timeline`, one query and its rows in words).

Goal: each page's p95 at most 3x its query's p95 (exit status 1 otherwise).

    .venv/bin/python -m bench.dashboard
    .venv/bin/python -m bench.dashboard --patients 5000 --submissions 100000 --requests 100
    .venv/bin/python -m bench.dashboard --keep-seed /tmp/c3n-seeds   # later runs skip seeding
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from bench import results as result_line
from bench.common import cpu_ticks, migrated_sqlite, percentile, stolen_share
from bench.dashboard_seed import NOW, Seeded, seed
from c3n_bot.config import Settings
from c3n_bot.service import inbox, patient_timeline, staff
from c3n_bot.service.workers import build_services
from c3n_bot.store.base import Role
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.web.app import create_app, prepare_to_serve

GOAL_RATIO = 3.0
WARMUP = 20
EMAIL, PASSWORD = "bench-clinician@example.org", "bench-password-1"
SECRET = "bench-only-secret-key-0123456789abcdefghij"


class ServerTimer:
    """ASGI middleware recording each HTTP request's time inside the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.last = time.perf_counter() - start


@dataclass
class Samples:
    """Seconds per request of a page, and per run of its query, measured alternately."""

    page: list[float]
    query: list[float]

    @property
    def ratio(self) -> float:
        """p95 page over p95 query."""
        return percentile(self.page, 0.95) / percentile(self.query, 0.95)


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


async def _page(client: httpx.AsyncClient, timer: ServerTimer, path: str) -> float:
    response = await client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}")
    return timer.last


async def measure(url: str, seeded: Seeded, requests: int) -> tuple[Samples, Samples]:
    """Sign in, then time each page and its query alternately; warm-up rounds not counted."""
    settings = Settings(demo=False, secret_key=SECRET, database_url=url, public_url="http://bench")
    services = build_services(settings)
    centers = set(seeded.center_ids[:2])
    sessions = make_session_factory(make_engine(settings.sqlalchemy_url))
    with sessions.begin() as db:
        staff.create_user(
            db, email=EMAIL, name="Bench", password=PASSWORD, role=Role.CLINICIAN,
            center_ids=sorted(centers), now=NOW,
        )  # fmt: skip
    app = create_app(settings, clock=lambda: NOW, senders={}, register=False)
    prepare_to_serve()  # as `c3n-bot web` does once its app is built
    timer = ServerTimer(app)
    patients = [p for c in sorted(centers) for p in seeded.patient_ids_by_center[c]]
    inbox_query = inbox.submissions_query(
        centers=centers, filters=inbox.InboxFilter(), zone=ZoneInfo("UTC")
    )
    translate = services.translator("en")
    inbox_samples, patient_samples = Samples([], []), Samples([], [])
    transport = httpx.ASGITransport(app=timer)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        await _login(client)
        for round_ in range(WARMUP + requests):
            patient_id = patients[(round_ * 7919) % len(patients)]
            page = await _page(client, timer, "/")
            query = _in_session(
                sessions, lambda db: db.execute(inbox_query.statement, inbox_query.params).all()
            )
            chart = await _page(client, timer, f"/patients/{patient_id}")
            timeline = _in_session(
                sessions,
                functools.partial(
                    patient_timeline.timeline,
                    patient_id=patient_id,
                    flows=services.flows,
                    translate=translate,
                ),
            )
            if round_ >= WARMUP:
                inbox_samples.page.append(page)
                inbox_samples.query.append(query)
                patient_samples.page.append(chart)
                patient_samples.query.append(timeline)
    return inbox_samples, patient_samples


def _in_session(sessions: sessionmaker[Session], run: Callable[[Session], Any]) -> float:
    with sessions() as db:
        return _timed(lambda: run(db))


async def _login(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"email": EMAIL, "password": PASSWORD, "csrf_token": token}
    response = await client.post("/login", data=data)
    if response.status_code != 303:
        raise RuntimeError(f"sign-in failed: {response.status_code}")


def report(name: str, samples: Samples) -> list[str]:
    """The lines printed for one page."""

    def ms(values: Sequence[float], fraction: float) -> str:
        return f"{percentile(values, fraction) * 1000:7.2f} ms"

    return [
        f"{name}",
        f"  page   p50 {ms(samples.page, 0.5)}  p95 {ms(samples.page, 0.95)}",
        f"  query  p50 {ms(samples.query, 0.5)}  p95 {ms(samples.query, 0.95)}",
        f"  ratio  {samples.ratio:5.2f}x (p95 page / p95 query; goal: at most {GOAL_RATIO:g}x)",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=50_000, help="default 50,000")
    parser.add_argument("--submissions", type=int, default=1_000_000, help="default 1,000,000")
    parser.add_argument("--requests", type=int, default=200, help="per page, default 200")
    parser.add_argument(
        "--keep-seed",
        type=Path,
        metavar="DIR",
        help="keep the seeded database in DIR and start later runs of the same size from a "
        "copy of it (the measured run is the same; only the seeding is skipped)",
    )
    return parser.parse_args(argv)


def seeded_database(folder: Path, args: argparse.Namespace) -> tuple[str, Seeded]:
    """A freshly seeded database in `folder` (copied from --keep-seed's when kept before)."""
    name = "dashboard.db"
    kept = (
        args.keep_seed / f"dashboard-{args.patients}-{args.submissions}" if args.keep_seed else None
    )
    if kept is not None and (kept / "seeded.pickle").exists():
        shutil.copyfile(kept / name, folder / name)
        with (kept / "seeded.pickle").open("rb") as file:
            found: Seeded = pickle.load(file)  # written by an earlier run, below
        print(f"seed copied from {kept}", flush=True)
        return f"sqlite:///{folder / name}", found
    url = migrated_sqlite(folder, name)
    settings = Settings(demo=False, secret_key=SECRET, database_url=url)
    engine = make_engine(settings.sqlalchemy_url)
    found = seed(
        engine, build_services(settings).flows, patients=args.patients, submissions=args.submissions
    )
    engine.dispose()
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, kept / name)
        with (kept / "seeded.pickle").open("wb") as file:
            pickle.dump(found, file)
    return url, found


def main(argv: list[str] | None = None) -> None:
    """Seed, measure both pages, print the ratios, exit 1 when a goal is missed."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="c3n-dashboard-") as folder:
        started = time.perf_counter()
        url, seeded = seeded_database(Path(folder), args)
        print(
            f"dashboard benchmark on sqlite: {args.patients:,} patients in "
            f"{len(seeded.center_ids)} centers, {seeded.submissions:,} submissions, "
            f"{seeded.alerts:,} alerts; seeded (or copied) in "
            f"{time.perf_counter() - started:.1f} s; "
            f"a clinician of 2 centers; {args.requests} requests per page",
            flush=True,
        )
        ticks = cpu_ticks()
        results = asyncio.run(measure(url, seeded, args.requests))
        stolen = stolen_share(ticks, cpu_ticks())
    print(
        f"the hypervisor took {stolen:.0%} of the machine's CPU time meanwhile "
        "(on a shared host, much of it slows the pages' tail more than the shorter queries')"
    )
    met = True
    pages = ("inbox GET /", "patient GET /patients/{id}")
    for name, samples in zip(pages, results, strict=True):
        print("\n".join(report(name, samples)))
        met = met and samples.ratio <= GOAL_RATIO
    print("goal met" if met else f"GOAL MISSED (a page over {GOAL_RATIO:g}x its query)")
    for label, samples in zip(("dashboard-inbox", "dashboard-patient"), results, strict=True):
        result_line.report(
            label,
            figure=percentile(samples.page, 0.95) * 1000,
            baseline=percentile(samples.query, 0.95) * 1000,
            unit="ms p95",
            goal=f"ratio<={GOAL_RATIO:g}",
            met=samples.ratio <= GOAL_RATIO,
        )
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
