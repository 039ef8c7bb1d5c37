"""Export: 1,000,000 submissions to FHIR NDJSON versus `json.dumps` of the same dicts.

A temporary SQLite file gets 10,000 patients with 100 submissions each, bulk-inserted: the
even patients answer PHQ-9 themselves on Telegram (a scored total, so an Observation too),
the odd ones have a parent answer the IBD check-in by SMS (a RelatedPerson). The export is
what `c3n-bot export --format fhir-ndjson` runs (count, stream, map, write, fsync, rename),
in a fresh child process so that its peak memory is its own. The baseline builds the same
records in memory, maps them to the same resource dicts a batch at a time (untimed), and
times only `json.dumps` of those dicts: the serialisation an export cannot avoid.

Memory: how far the child's resident size peaks above its size before exporting (the peak
is reset first, so the imports' own do not count), for the full export and for an export of
the later half (``since`` the middle day). Streaming keeps the two equal; the goal is that
the full export's peak is at most 1.25x the half's.

    .venv/bin/python -m bench.export                  # 1,000,000 submissions
    .venv/bin/python -m bench.export --rows 100000    # quicker
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from bench import results as result_line
from bench.common import migrated_sqlite, peak_rss_mib
from c3n_bot.config import data_dir
from c3n_bot.engine.definitions import Flow
from c3n_bot.registry import export
from c3n_bot.registry.export_ndjson import NdjsonCounts, ndjson_resources, resource_line
from c3n_bot.registry.submission_record import RecordPatient, RecordReporter, SubmissionRecord
from c3n_bot.service.flows import load_dir
from c3n_bot.store.base import Channel, Condition, Relationship
from c3n_bot.store.db import make_engine, snapshot_session
from c3n_bot.store.models import (
    Center,
    Contact,
    ContactPatient,
    Network,
    Patient,
    Submission,
)
from c3n_bot.store.models.conversations import SubmissionStatus
from tests.registry.export_data import answers_for

PER_PATIENT = 100
SEED_BATCH = 10_000
DUMP_BATCH = 10_000
PEAK_TOLERANCE = 1.25
START = datetime(2025, 1, 1, 18, 0, tzinfo=UTC)
IDENTIFIER_SYSTEM = "https://example.org/fhir/patient-id"
NETWORK_ID, CENTER_ID = uuid.UUID(int=1), uuid.UUID(int=2)
FREQUENCY = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")
IBD_VARIANTS = (
    {"wellbeing": "well", "pain_days": 0, "blood": False, "missed_days": 0, "meds": "all"},
    {"wellbeing": "so-so", "pain_days": 3, "blood": True, "missed_days": 1, "meds": "all"},
    {
        "wellbeing": "unwell",
        "pain_days": 5,
        "blood": False,
        "missed_days": 2,
        "meds": "some-missed",
    },
    {"wellbeing": "very-well", "pain_days": 1, "blood": False, "missed_days": 0, "note": "ok"},
)


@dataclass(frozen=True)
class Synthetic:
    """The data both sides share: flows, and the answer sets submissions cycle through."""

    flows: dict[str, Flow]
    phq9: tuple[tuple[dict[str, Any], int, str], ...]  # answers, total, band
    ibd: tuple[dict[str, Any], ...]

    @classmethod
    def build(cls) -> Synthetic:
        """Load the shipped flows and precompute the answer sets."""
        flows, issues = load_dir(data_dir("flows"))
        assert not issues, issues
        by_id = {flow.id: flow for flow in flows}
        phq9, ibd = by_id["phq9"], by_id["ibd_checkin"]
        sets = []
        for shift in range(4):
            replies = {f"q{n}": FREQUENCY[(n + shift) % 4] for n in range(1, 10)}
            answers = answers_for(phq9, replies)
            total = sum(answer["value"] for answer in answers.values())
            band = phq9.scores[0].band(total)
            sets.append((answers, total, band.code if band else ""))
        variants = tuple(answers_for(ibd, replies) for replies in IBD_VARIANTS)
        return cls(by_id, tuple(sets), variants)


def patient_ids(p: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The patient's id and the id of whoever answers for them; ascending with p."""
    return uuid.UUID(int=(1 << 64) + p), uuid.UUID(int=(2 << 64) + p)


def records(data: Synthetic, patients: int, first_day: int) -> Iterator[SubmissionRecord]:
    """Every submission from `first_day` on, as the database will return them (by patient)."""
    for p in range(patients):
        patient_id, contact_id = patient_ids(p)
        person = RecordPatient(
            patient_id, f"BENCH-{p:06d}", "Sam", "Bench", date(2012, 5, 17), CENTER_ID,
            IDENTIFIER_SYSTEM,
        )  # fmt: skip
        proxy = p % 2 == 1
        relationship = Relationship.PARENT if proxy else Relationship.SELF
        reporter = RecordReporter(contact_id, relationship, "Alex Bench")
        for day in range(first_day, PER_PATIENT):
            n = p * PER_PATIENT + day
            authored = START + timedelta(days=day, seconds=p)
            if proxy:
                answers, scores, bands = data.ibd[n % len(data.ibd)], {}, {}
            else:
                answers, total, band = data.phq9[n % len(data.phq9)]
                scores, bands = {"total": total}, {"total": band}
            yield SubmissionRecord(
                id=uuid.UUID(int=(3 << 64) + n),
                flow_id="ibd_checkin" if proxy else "phq9",
                flow_version="1",
                status="completed",
                answers=answers,
                scores=scores,
                bands=bands,
                channel="sms" if proxy else "telegram",
                started_at=authored - timedelta(minutes=4),
                authored_at=authored,
                version=1,
                replaces_id=None,
                center_id=CENTER_ID,
                patient=person,
                reporter=reporter,
            )


# -- the database ---------------------------------------------------------------------------


def seed(engine: Engine, data: Synthetic, patients: int) -> None:
    """The network, center, people and every submission, in bulk inserts."""
    with engine.begin() as connection:
        connection.execute(
            insert(Network).values(
                id=NETWORK_ID, name="Bench", slug="bench", identifier_system=IDENTIFIER_SYSTEM,
                created_at=START,
            )
        )  # fmt: skip
        connection.execute(
            insert(Center).values(
                id=CENTER_ID, network_id=NETWORK_ID, name="Bench Center", slug="bench",
                timezone="America/New_York", created_at=START,
            )
        )  # fmt: skip
        people = [_people(p) for p in range(patients)]
        connection.execute(insert(Patient), [patient for patient, _, _ in people])
        connection.execute(insert(Contact), [contact for _, contact, _ in people])
        connection.execute(insert(ContactPatient), [link for _, _, link in people])
        rows = (_submission_row(record) for record in records(data, patients, 0))
        while batch := list(itertools.islice(rows, SEED_BATCH)):
            connection.execute(insert(Submission), batch)


def _people(p: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    patient_id, contact_id = patient_ids(p)
    patient = {
        "id": patient_id, "center_id": CENTER_ID, "external_id": f"BENCH-{p:06d}",
        "given_name": "Sam", "family_name": "Bench", "birth_date": date(2012, 5, 17),
        "condition": Condition.IBD, "language": "en", "timezone": "America/New_York",
        "schedules_paused": False, "created_at": START,
    }  # fmt: skip
    contact = {
        "id": contact_id, "display_name": "Alex Bench", "language": "en",
        "timezone": "America/New_York", "created_at": START,
    }  # fmt: skip
    relation = Relationship.PARENT if p % 2 else Relationship.SELF
    return (
        patient,
        contact,
        {"contact_id": contact_id, "patient_id": patient_id, "relationship": relation},
    )


def _submission_row(record: SubmissionRecord) -> dict[str, Any]:
    assert record.reporter is not None
    return {
        "id": record.id, "patient_id": record.patient.id, "center_id": CENTER_ID,
        "reporter_contact_id": record.reporter.contact_id, "session_id": None,
        "flow_id": record.flow_id, "flow_version": "1", "channel": Channel(record.channel),
        "status": SubmissionStatus.COMPLETED, "answers": record.answers,
        "scores": record.scores, "bands": record.bands, "started_at": record.started_at,
        "authored_at": record.authored_at, "version": 1, "replaces_id": None,
    }  # fmt: skip


# -- the measurements -------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """One export in a child process."""

    submissions: int
    lines: int
    seconds: float
    rss_before: float  # MiB
    rss_peak: float

    @property
    def peak(self) -> float:
        """How far exporting raised the process's resident size above where it started (MiB)."""
        return self.rss_peak - self.rss_before


def export_in_child(url: str, since: datetime, path: Path) -> Exported:
    """What `c3n-bot export --format fhir-ndjson --since ...` does (runs in a fresh process)."""
    catalog = list(Synthetic.build().flows.values())
    engine = make_engine(url)
    before = _reset_peak()
    started = time.perf_counter()
    with snapshot_session(engine) as db:
        job = export.plan(db, fmt=export.ExportFormat.FHIR_NDJSON, since=since, catalog=catalog)
        result = export.run(db, job, path)
    seconds = time.perf_counter() - started
    peak = peak_rss_mib(os.getpid())
    engine.dispose()
    return Exported(result.submissions, result.lines, seconds, before, peak)


def _reset_peak() -> float:
    # Linux: "5" sets the peak resident size (VmHWM) back to the current one, so the peak read
    # after the export is the export's own, not that of the imports before it.
    Path("/proc/self/clear_refs").write_text("5")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child_export(url: str, since: datetime, path: Path) -> Exported:
    """Run `export_in_child` in a new (spawned, not forked) process."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(export_in_child, url, since, path).result()


def dumps_baseline(data: Synthetic, patients: int) -> tuple[float, int]:
    """Seconds spent in json.dumps of every exported resource, and how many there were."""
    resources = ndjson_resources(records(data, patients, 0), data.flows, NdjsonCounts())
    seconds, count = 0.0, 0
    while batch := list(itertools.islice(resources, DUMP_BATCH)):
        started = time.perf_counter()
        for item in batch:
            resource_line(item)
        seconds += time.perf_counter() - started
        count += len(batch)
    return seconds, count


def same_start(data: Synthetic, patients: int, path: Path, lines: int = 1000) -> bool:
    """Whether the file begins with exactly the lines the baseline dumps."""
    resources = ndjson_resources(records(data, patients, 0), data.flows, NdjsonCounts())
    expected = [resource_line(item) for item in itertools.islice(resources, lines)]
    with path.open(encoding="utf-8") as exported:
        return [line for _, line in zip(range(lines), exported, strict=False)] == expected


def main(argv: list[str] | None = None) -> None:
    """Seed, export at full and half size, dump the baseline, print, exit 1 if memory grows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="default 1,000,000")
    args = parser.parse_args(argv)
    patients = max(1, args.rows // PER_PATIENT)
    rows = patients * PER_PATIENT
    data = Synthetic.build()
    print(f"export benchmark on SQLite: {rows:,} submissions of {patients:,} patients", flush=True)
    with tempfile.TemporaryDirectory(prefix="c3n-export-") as folder:
        url = migrated_sqlite(Path(folder))
        engine = make_engine(url)
        started = time.perf_counter()
        seed(engine, data, patients)
        engine.dispose()
        print(f"  seed (bulk inserts)      {time.perf_counter() - started:8.1f} s", flush=True)
        full = child_export(url, START, Path(folder) / "full.ndjson")
        matches = same_start(data, patients, Path(folder) / "full.ndjson")
        middle = START + timedelta(days=PER_PATIENT // 2)
        half = child_export(url, middle, Path(folder) / "half.ndjson")
    dumps, resources = dumps_baseline(data, patients)
    ratio = full.seconds / dumps
    flat = full.peak <= half.peak * PEAK_TOLERANCE
    for label, run in (("export", full), ("export, later half", half)):
        print(
            f"  {label:<24} {run.seconds:8.1f} s  {run.submissions:>9,} submissions "
            f"{run.lines:>10,} lines  {run.submissions / run.seconds:>8,.0f}/s  "
            f"peak +{run.peak:.1f} MiB"
        )
    print(f"  json.dumps baseline      {dumps:8.1f} s  {resources:>31,} lines (same dicts)")
    print(f"  ratio                    {ratio:8.2f}x json.dumps alone")
    print(f"  first 1,000 lines equal to the baseline's: {'yes' if matches else 'NO'}")
    print(
        f"peak memory +{full.peak:.1f} MiB at {full.submissions:,} submissions, "
        f"+{half.peak:.1f} MiB at {half.submissions:,}: "
        + ("flat" if flat else f"GROWS with the row count (more than {PEAK_TOLERANCE:g}x)")
    )
    met = flat and matches and resources == full.lines
    result_line.report(
        "export",
        figure=full.seconds,
        baseline=dumps,
        unit="s",
        goal="same lines as json.dumps, memory flat",
        met=met,
    )
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
