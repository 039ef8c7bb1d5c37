"""Fan-out: materialize one Sunday's due prompts of 100,000 patients versus a raw bulk insert.

Every patient has a weekly Sunday 18:00 ``ibd_checkin`` in their own timezone: 60% in
America/New_York and 40% in America/Los_Angeles, so the Sunday has two UTC slots (22:00Z and
01:00Z). The clock materializes each slot at its minute, as ``schedules.materialize`` does in
production (one indexed query per batch of due schedules, slot keys, ON CONFLICT DO NOTHING,
then the schedules advanced). The baseline writes the very same due rows (same ids and keys)
with ``schedules.raw_insert``, a plain bulk INSERT, into the same emptied table of the same
database, in the same run. Both timings include their commit.

Goal: materialize takes at most 3x the raw insert (exit status 1 otherwise). Memory: the peak
traced by tracemalloc during materialize, in a separate run (tracing slows Python down, so it
never overlaps the timings); materialize streams the schedules in batches of
``schedules.BATCH``, so a second database with half the patients shows the peak does not grow
with the row count.

    .venv/bin/python -m bench.fanout                       # SQLite file in a temp folder
    .venv/bin/python -m bench.fanout --postgres postgresql://user:pw@host/db

With --postgres the benchmark works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench import results as result_line
from c3n_bot.service import schedules, timing
from c3n_bot.store.base import Condition
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.migrate import upgrade
from c3n_bot.store.models import Center, DueWork, Network, Patient, Schedule

GOAL_RATIO = 3.0
# The peak of the full run may exceed the half run's by this much and still count as flat.
PEAK_TOLERANCE = 1.25
ZONES = (("America/New_York", 0.6), ("America/Los_Angeles", 0.4))
RULE = "FREQ=WEEKLY;BYDAY=SU"
AT_LOCAL = "18:00"
CREATED = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)  # a Friday; the slots are on Sunday 22 March
SEED_CHUNK = 10_000
MIB = 1024 * 1024


@dataclass(frozen=True)
class Zone:
    """One timezone's share of the patients and its UTC slot."""

    name: str
    patients: int
    dtstart_local: str
    slot: datetime


@dataclass(frozen=True)
class Timing:
    """Rows written and seconds taken by one way of writing them."""

    rows: int
    seconds: float


@dataclass(frozen=True)
class Result:
    """One database's measurements."""

    patients: int
    zones: tuple[Zone, ...]
    seed_seconds: float
    per_slot: tuple[tuple[datetime, Timing], ...]
    materialize: Timing
    raw: Timing
    peak_bytes: int

    @property
    def ratio(self) -> float:
        """Materialize time over raw insert time."""
        return self.materialize.seconds / self.raw.seconds


def zones_for(patients: int) -> tuple[Zone, ...]:
    """The patients split between the zones, each with its Sunday 18:00 in UTC."""
    counts = [round(patients * share) for _, share in ZONES[:-1]]
    counts.append(patients - sum(counts))
    result = []
    for (name, _), count in zip(ZONES, counts, strict=True):
        zone = timing.load_zone(name)
        local = CREATED.astimezone(zone).replace(tzinfo=None)
        hour, minute = (int(part) for part in AT_LOCAL.split(":"))
        dtstart = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        (slot,) = timing.next_slots(
            RULE, name, dtstart, CREATED, CREATED + timedelta(days=8), limit=1
        )
        result.append(Zone(name, count, dtstart.isoformat(), slot))
    return tuple(result)


# -- databases ----------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    """A SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="c3n-fanout-") as folder:
        yield f"sqlite:///{Path(folder) / 'fanout.db'}"


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A schema of its own on the given PostgreSQL server, dropped afterwards."""
    plain = make_url(url).set(drivername="postgresql")
    libpq = plain.render_as_string(hide_password=False)
    name = f"c3n_fanout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        scoped = plain.set(drivername="postgresql+psycopg").update_query_dict(
            {"options": f"-csearch_path={name}"}
        )
        yield scoped.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def database(postgres: str | None) -> contextlib.AbstractContextManager[str]:
    """Where to run: the given PostgreSQL, else a temporary SQLite file."""
    return postgres_database(postgres) if postgres else sqlite_database()


# -- seeding (bulk, never one ORM object per patient) -------------------------------------


def seed(engine: Engine, zones: tuple[Zone, ...]) -> None:
    """A network, a center, and every patient with their weekly schedule."""
    with engine.begin() as connection:
        network_id, center_id = uuid.uuid4(), uuid.uuid4()
        connection.execute(
            insert(Network).values(
                id=network_id,
                name="Fan-out Network",
                slug="fanout",
                identifier_system="urn:fanout",
                created_at=CREATED,
            )
        )
        connection.execute(
            insert(Center).values(
                id=center_id,
                network_id=network_id,
                name="Fan-out Center",
                slug="fanout",
                timezone=zones[0].name,
                created_at=CREATED,
            )
        )
        serial = 0
        for zone in zones:
            for start in range(0, zone.patients, SEED_CHUNK):
                count = min(SEED_CHUNK, zone.patients - start)
                ids = [uuid.uuid4() for _ in range(count)]
                connection.execute(
                    insert(Patient),
                    [patient_row(pid, center_id, serial + n, zone) for n, pid in enumerate(ids)],
                )
                connection.execute(insert(Schedule), [schedule_row(pid, zone) for pid in ids])
                serial += count


def patient_row(patient_id: uuid.UUID, center_id: uuid.UUID, n: int, zone: Zone) -> dict[str, Any]:
    """One patient, as a bulk-insert row."""
    return {
        "id": patient_id,
        "center_id": center_id,
        "external_id": f"FAN-{n:07d}",
        "given_name": "Sam",
        "family_name": "Fanout",
        "birth_date": date(2012, 5, 17),
        "condition": Condition.IBD,
        "language": "en",
        "timezone": zone.name,
        "schedules_paused": False,
        "created_at": CREATED,
    }


def schedule_row(patient_id: uuid.UUID, zone: Zone) -> dict[str, Any]:
    """The patient's Sunday 18:00 check-in, as ``schedules.create_schedule`` would store it."""
    return {
        "id": uuid.uuid4(),
        "patient_id": patient_id,
        "template_id": None,
        "contact_id": None,
        "flow_id": "ibd_checkin",
        "rrule": RULE,
        "timezone": zone.name,
        "dtstart_local": zone.dtstart_local,
        "starts_at": CREATED,
        "min_age": None,
        "active": True,
        "last_slot_at": CREATED,
        "next_due_at": zone.slot,
        "created_at": CREATED,
    }


def rewind(engine: Engine, factory: sessionmaker[Session], zones: tuple[Zone, ...]) -> None:
    """Back to the seeded state: no due work, every schedule due at its slot again."""
    with factory.begin() as db:
        db.execute(delete(DueWork))
        for zone in zones:
            db.execute(
                update(Schedule)
                .where(Schedule.timezone == zone.name)
                .values(last_slot_at=CREATED, next_due_at=zone.slot)
            )
    settle(engine)


def settle(engine: Engine) -> None:
    """Start a timing from the same state: SQLite's WAL folded into the file, caches cold."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside any transaction, as the pragma needs
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    else:
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
    schedules._slots.cache_clear()
    schedules._next_slot.cache_clear()


# -- the measurements ---------------------------------------------------------------------


def materialize_slots(
    factory: sessionmaker[Session], zones: tuple[Zone, ...]
) -> list[tuple[datetime, Timing]]:
    """What the clock does on that Sunday: materialize each slot at its minute."""
    timings = []
    for slot in sorted({zone.slot for zone in zones}):
        started = time.perf_counter()
        with factory.begin() as db:
            rows = schedules.materialize(db, slot)
        timings.append((slot, Timing(rows, time.perf_counter() - started)))
    return timings


def raw_insert(factory: sessionmaker[Session], rows: list[dict[str, Any]]) -> Timing:
    """The baseline: the same rows in one plain bulk insert."""
    started = time.perf_counter()
    with factory.begin() as db:
        schedules.raw_insert(db, rows)
    return Timing(len(rows), time.perf_counter() - started)


def materialized_rows(factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """The due rows materialize wrote, as the dicts a bulk insert takes."""
    with factory() as db:
        return [dict(row) for row in db.execute(select(DueWork.__table__)).mappings()]


def peak_of_materialize(factory: sessionmaker[Session], zones: tuple[Zone, ...]) -> int:
    """The highest memory traced while materializing the slots (bytes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        materialize_slots(factory, zones)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(url: str, patients: int) -> Result:
    """Seed a fresh database, then time materialize and the raw insert, then trace memory."""
    zones = zones_for(patients)
    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        seed(engine, zones)
        seed_seconds = time.perf_counter() - started
        settle(engine)
        per_slot = materialize_slots(factory, zones)
        materialized = Timing(sum(t.rows for _, t in per_slot), sum(t.seconds for _, t in per_slot))
        rows = materialized_rows(factory)
        if len(rows) != patients or materialized.rows != patients:
            raise SystemExit(f"materialize wrote {materialized.rows} rows for {patients} patients")
        # The baseline gets the emptied table (and, on SQLite, its free pages) second.
        with factory.begin() as db:
            db.execute(delete(DueWork))
        settle(engine)
        raw = raw_insert(factory, rows)
        del rows
        rewind(engine, factory, zones)
        peak = peak_of_materialize(factory, zones)
    finally:
        engine.dispose()
    return Result(patients, zones, seed_seconds, tuple(per_slot), materialized, raw, peak)


# -- the report ---------------------------------------------------------------------------


def report(result: Result) -> list[str]:
    """The lines printed for one database."""
    slots = "; ".join(
        f"{slot:%H:%MZ} {t.rows:,} rows {t.seconds:.2f} s" for slot, t in result.per_slot
    )
    zones = ", ".join(
        f"{zone.patients:,} in {zone.name} (18:00 local = {zone.slot:%Y-%m-%d %H:%MZ})"
        for zone in result.zones
    )
    return [
        f"{result.patients:,} patients: {zones}",
        f"  seed (bulk inserts)   {result.seed_seconds:7.2f} s",
        f"  materialize           {result.materialize.rows:>9,} rows {result.materialize.seconds:7.2f} s"  # noqa: E501
        f"  ({slots})",
        f"  raw bulk insert       {result.raw.rows:>9,} rows {result.raw.seconds:7.2f} s",
        f"  ratio                 {result.ratio:7.2f}x (goal: at most {GOAL_RATIO:g}x)",
        f"  peak memory           {result.peak_bytes / MIB:7.1f} MiB (tracemalloc, materialize)",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=100_000, help="default 100,000")
    parser.add_argument(
        "--half", type=int, default=None, help="the second run's patients (default: half)"
    )
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to use instead")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run both databases, print the results, exit 1 when a goal is missed."""
    args = parse_args(argv)
    half = args.half or args.patients // 2
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"fan-out benchmark on {backend}: one Sunday 18:00 slot per patient, two time zones")
    print(f"materialize streams the due schedules in batches of schedules.BATCH = "
          f"{schedules.BATCH:,}")  # fmt: skip
    results = []
    for patients in (args.patients, half):
        with database(args.postgres) as url:
            result = measure(url, patients)
        results.append(result)
        print("\n".join(report(result)), flush=True)
    full, smaller = results
    ratio_ok = full.ratio <= GOAL_RATIO
    flat = full.peak_bytes <= smaller.peak_bytes * PEAK_TOLERANCE
    print(
        f"ratio {full.ratio:.2f}x at {full.patients:,} patients: "
        + ("goal met" if ratio_ok else f"GOAL MISSED (more than {GOAL_RATIO:g}x)")
    )
    print(
        f"peak memory {full.peak_bytes / MIB:.1f} MiB at {full.patients:,} patients, "
        f"{smaller.peak_bytes / MIB:.1f} MiB at {smaller.patients:,}: "
        + (
            "flat (bounded by the batch, not the row count)"
            if flat
            else f"GROWS with the row count (more than {PEAK_TOLERANCE:g}x)"
        )
    )
    result_line.report(
        "fanout",
        figure=full.materialize.seconds,
        baseline=full.raw.seconds,
        unit="s",
        goal=f"ratio<={GOAL_RATIO:g}, memory flat",
        met=ratio_ok and flat,
    )
    sys.exit(0 if ratio_ok and flat else 1)


if __name__ == "__main__":
    main()
