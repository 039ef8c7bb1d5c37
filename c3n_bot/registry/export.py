"""Registry exports: every submission matching a filter, streamed into a CSV or NDJSON file."""

from __future__ import annotations

import contextlib
import enum
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.engine.definitions import Flow, FlowKind
from c3n_bot.registry import submission_query
from c3n_bot.registry.export_csv import CsvLayout, write_csv
from c3n_bot.registry.export_ndjson import write_ndjson
from c3n_bot.registry.submission_query import SubmissionFilter
from c3n_bot.registry.submission_record import SubmissionRecord
from c3n_bot.service import staff
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.store.models import Center

# Progress is reported every this many submissions: a callback per row would cost more.
PROGRESS_EVERY = 1000


class ExportFormat(enum.StrEnum):
    """What an export file holds."""

    FHIR_NDJSON = "fhir-ndjson"
    CSV = "csv"


@dataclass(frozen=True)
class ExportPlan:
    """What to export: the filter, the questionnaires whose columns or items it maps, a count."""

    format: ExportFormat
    where: SubmissionFilter
    flows: tuple[Flow, ...]
    total: int


@dataclass(frozen=True)
class ExportResult:
    """What was written: submissions, lines after the CSV header, and submissions skipped."""

    submissions: int
    lines: int
    skipped: int


def plan(
    db: Session,
    *,
    fmt: ExportFormat,
    since: datetime,
    catalog: Sequence[Flow],
    centers: Sequence[str] = (),
    flow_ids: Sequence[str] = (),
) -> ExportPlan:
    """Check the center references and flow ids and count what will be written.

    `centers` are ids, slugs or NETWORK/CENTER (all centers when empty); `flow_ids` name
    questionnaires of the catalog (all of them when empty); columns follow flow id order.
    """
    questionnaires = sorted(
        (flow for flow in catalog if flow.kind == FlowKind.QUESTIONNAIRE), key=lambda f: f.id
    )
    known = {flow.id for flow in questionnaires}
    for flow_id in flow_ids:
        if flow_id not in known:
            raise InvalidInput("flow", f"not a questionnaire flow: {flow_id}")
    chosen = [flow for flow in questionnaires if not flow_ids or flow.id in flow_ids]
    center_ids = {center_id(db, ref) for ref in centers} or staff.all_center_ids(db)
    where = SubmissionFilter(
        centers=frozenset(center_ids), since=since, flow_ids=frozenset(flow_ids)
    )
    total = submission_query.count(db, where)
    return ExportPlan(format=fmt, where=where, flows=tuple(chosen), total=total)


def run(
    db: Session, job: ExportPlan, path: Path, *, progress: Callable[[int], None] | None = None
) -> ExportResult:
    """Write the file: complete at `path` when this returns, untouched when it raises."""
    by_patient = job.format == ExportFormat.FHIR_NDJSON
    records = submission_query.stream(db, job.where, by_patient=by_patient)
    if progress is not None:
        records = _reporting(records, progress)
    with atomic_text(path) as out:
        return _write(db, job, records, out)


def _write(
    db: Session, job: ExportPlan, records: Iterable[SubmissionRecord], out: TextIO
) -> ExportResult:
    if job.format == ExportFormat.CSV:
        slugs = {row.id: row.slug for row in db.execute(select(Center.id, Center.slug))}
        written = write_csv(records, CsvLayout(job.flows, slugs), out)
        return ExportResult(submissions=written, lines=written, skipped=0)
    counts = write_ndjson(records, {flow.id: flow for flow in job.flows}, out)
    return ExportResult(
        submissions=counts.submissions, lines=counts.lines, skipped=counts.unknown_flow
    )


def center_id(db: Session, ref: str) -> uuid.UUID:
    """A center's id from its id, slug or NETWORK/CENTER; NotFound when there is none."""
    try:
        wanted = uuid.UUID(ref)
    except ValueError:
        return staff.find_center_id(db, ref)
    if db.get(Center, wanted) is None:
        raise NotFound(f"unknown center: {ref}")
    return wanted


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text file that appears at `path` complete, or not at all.

    It is written beside `path` under a hidden name, synced, then renamed over it. The
    temporary file is private to its owner (0600), and so is the export: it holds PHI.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _reporting(
    records: Iterator[SubmissionRecord], progress: Callable[[int], None]
) -> Iterator[SubmissionRecord]:
    done = 0
    for done, record in enumerate(records, 1):
        yield record
        if done % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    progress(done % PROGRESS_EVERY)
