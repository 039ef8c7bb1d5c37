"""CSV import of appointments on both databases: per-row results, idempotent re-imports.

``now`` is 2026-03-02 15:00Z; starts_at_local is the patient's New York time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from c3n_bot.cli import app
from c3n_bot.service import audit, visit_import
from c3n_bot.service.errors import InvalidInput
from c3n_bot.service.visit_import import RowResult
from c3n_bot.store.models import Appointment, AuditEvent, DueWork
from c3n_bot.store.models.scheduling import AppointmentStatus, DueStatus
from tests import builders
from tests.conftest import FIXED_NOW

ACTOR = audit.Actor(type="test", id=None)
HEADER = "patient_external_id,center,starts_at_local,location,external_id,status"


@dataclass
class Sites:
    """Two centers; the importer may only touch the first."""

    center: str
    other_center: str
    allowed: set[uuid.UUID]
    first: str
    second: str
    elsewhere: str


@pytest.fixture
def sites(db: Session, now: datetime) -> Sites:
    """Patients in an allowed center and in one the importer may not touch."""
    center = builders.make_center(db, now=now)
    other = builders.make_center(db, now=now)
    first = builders.make_patient(db, now=now, center=center)
    second = builders.make_patient(db, now=now, center=center)
    elsewhere = builders.make_patient(db, now=now, center=other)
    db.commit()
    return Sites(
        center=center.slug,
        other_center=other.slug,
        allowed={center.id},
        first=first.external_id,
        second=second.external_id,
        elsewhere=elsewhere.external_id,
    )


def _run(db: Session, sites: Sites, now: datetime, *lines: str) -> list[RowResult]:
    data = "\n".join((HEADER, *lines)).encode()
    results = visit_import.import_csv(
        db, data=data, allowed_centers=sites.allowed, now=now, actor=ACTOR
    )
    db.commit()
    return results


def _summary(results: list[RowResult]) -> list[tuple[int, str, str | None]]:
    return [(r.row, r.status, r.error) for r in results]


def _count(db: Session, model: type[Appointment] | type[DueWork]) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_good_rows_import_and_bad_rows_are_reported(
    db: Session, now: datetime, sites: Sites
) -> None:
    s = sites
    lines = (
        f"{s.first},{s.center},2026-03-09 09:00,Clinic B,EHR-1,",
        f"{s.second},{s.center},2026-03-10T14:30,,,booked",
        f"NOPE,{s.center},2026-03-09 09:00,,EHR-2,",
        f"{s.first},nowhere,2026-03-09 09:00,,EHR-3,",
        f"{s.elsewhere},{s.other_center},2026-03-09 09:00,,EHR-4,",
        f"{s.first},{s.center},2026-13-01 09:00,,EHR-5,",
        f"{s.first},{s.center},2026-03-01 09:00,,EHR-6,",
        f"{s.second},{s.center},2026-03-11 10:00,,EHR-1,",
        f"{s.first},{s.center},2026-03-12 10:00,,EHR-7,maybe",
        "",
    )
    results = _run(db, s, now, *lines)
    assert _summary(results) == [
        (2, "created", None),
        (3, "created", None),
        (4, "error", f"unknown patient: 'NOPE' in center {s.center}"),
        (5, "error", "unknown center: nowhere"),
        (6, "error", f"center not allowed: {s.other_center}"),
        (
            7,
            "error",
            "bad date '2026-13-01 09:00': starts_at_local must look like 2026-03-09 09:00",
        ),
        (8, "error", "starts_at_local is in the past"),
        (9, "error", "duplicate external_id (first on row 2)"),
        (10, "error", "status must be booked or cancelled, not 'maybe'"),
    ]
    appointments = list(db.scalars(select(Appointment).order_by(Appointment.starts_at)))
    assert [(a.external_id, a.starts_at, a.location) for a in appointments] == [
        ("EHR-1", datetime(2026, 3, 9, 13, 0, tzinfo=UTC), "Clinic B"),
        (None, datetime(2026, 3, 10, 18, 30, tzinfo=UTC), None),
    ]
    assert [a.id for a in appointments] == [results[0].appointment_id, results[1].appointment_id]
    assert _count(db, DueWork) == 4  # two reminders each; no pre-visit template in these centers
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.action)).all()
    assert actions == ["appointment.import.created"] * 2
    # The same file again changes nothing.
    again = _run(db, s, now, *lines)
    assert [(r.status, r.appointment_id) for r in again[:2]] == [
        ("unchanged", results[0].appointment_id),
        ("unchanged", results[1].appointment_id),
    ]
    assert _summary(again)[2:] == _summary(results)[2:]
    assert (_count(db, Appointment), _count(db, DueWork)) == (2, 4)


def test_reimport_moves_and_cancels(db: Session, now: datetime, sites: Sites) -> None:
    s = sites
    first = _run(
        db, s, now,
        f"{s.first},{s.center},2026-03-09 09:00,,EHR-1,",
        f"{s.second},{s.center},2026-03-10 14:30,,,",
    )  # fmt: skip
    moved_id, cancelled_id = (r.appointment_id for r in first)
    results = _run(
        db, s, now,
        f"{s.first},{s.center},2026-03-16 09:00,,EHR-1,",
        f"{s.second},{s.center},2026-03-10 14:30,,,cancelled",
        f"{s.second},{s.center},2026-03-20 08:15,,EHR-9,",
        f"{s.first},{s.center},2026-03-25 09:00,,EHR-404,cancelled",
    )  # fmt: skip
    assert [(r.status, r.appointment_id) for r in results[:2]] == [
        ("moved", moved_id),
        ("cancelled", cancelled_id),
    ]
    assert [r.status for r in results[2:]] == ["created", "unchanged"]
    moved = db.get(Appointment, moved_id)
    assert moved is not None and moved.starts_at == datetime(2026, 3, 16, 13, 0, tzinfo=UTC)
    work = db.scalars(select(DueWork).where(DueWork.appointment_id == moved_id)).all()
    assert sorted((w.status, w.due_at) for w in work if w.status == DueStatus.PENDING) == [
        (DueStatus.PENDING, datetime(2026, 3, 9, 22, 0, tzinfo=UTC)),
        (DueStatus.PENDING, datetime(2026, 3, 15, 22, 0, tzinfo=UTC)),
    ]
    assert {w.reason for w in work if w.status == DueStatus.CANCELLED} == {"visit moved"}
    cancelled = db.get(Appointment, cancelled_id)
    assert cancelled is not None and cancelled.status == AppointmentStatus.CANCELLED
    # Cancelling again is harmless; a cancelled visit cannot be moved by a later file.
    again = _run(
        db, s, now,
        f"{s.second},{s.center},2026-03-10 14:30,,,cancelled",
        f"{s.second},{s.center},2026-03-20 08:15,,EHR-9,cancelled",
    )  # fmt: skip
    assert [r.status for r in again] == ["unchanged", "cancelled"]
    [late] = _run(db, s, now, f"{s.second},{s.center},2026-03-21 08:15,,EHR-9,")
    assert (late.status, late.error) == (
        "error",
        "the appointment is cancelled: it cannot be moved",
    )


def test_an_external_id_of_another_patient_is_refused(
    db: Session, now: datetime, sites: Sites
) -> None:
    s = sites
    _run(db, s, now, f"{s.first},{s.center},2026-03-09 09:00,,EHR-1,")
    [result] = _run(db, s, now, f"{s.second},{s.center},2026-03-09 09:00,,EHR-1,")
    assert (result.status, result.error) == (
        "error",
        "external_id belongs to another patient's appointment",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not UTF-8 text"),
        (b"", "is empty"),
        (b"name,phone\nAna,+16175550100\n", "is missing the column(s)"),
        (b"patient_external_id,center,starts_at_local\x00\n", "is not a CSV file"),
    ],
)
def test_a_file_that_is_not_our_csv_is_invalid(
    db: Session, now: datetime, data: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        visit_import.import_csv(db, data=data, allowed_centers=set(), now=now, actor=ACTOR)
    assert raised.value.field == "file"
    assert raised.value.message.startswith(message)


def test_a_spreadsheet_export_with_bom_crlf_and_column_order_is_read(
    db: Session, now: datetime, sites: Sites
) -> None:
    header = "\ufeffCenter,Starts_At_Local,Patient_External_Id\r\n"
    text = f"{header}{sites.center},2026-03-09 09:00,{sites.first}\r\n"
    results = visit_import.import_csv(
        db, data=text.encode(), allowed_centers=sites.allowed, now=now, actor=ACTOR
    )
    assert [r.status for r in results] == ["created"]


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the logging set-up each command does onto the runner's (then closed) stderr."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = root.handlers[:], root.level, alembic.level
    yield
    root.handlers[:], root.level = handlers, level
    alembic.setLevel(alembic_level)


def _cli(path: Path, database_url: str) -> Result:
    env = {"C3N_DATABASE_URL": database_url, "C3N_DEMO": "1"}
    with time_machine.travel(FIXED_NOW, tick=False):
        return CliRunner().invoke(app, ["appointments", "import", str(path)], env=env)


@pytest.mark.usefixtures("clean_env", "restore_logging")
def test_cli_prints_each_row_and_fails_when_a_row_failed(
    database_url: str, sites: Sites, tmp_path: Path
) -> None:
    good = f"{sites.first},{sites.center},2026-03-09 09:00,,EHR-1,"
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"{HEADER}\n{good}\nNOPE,{sites.center},2026-03-09 09:00,,,\n")
    first = _cli(mixed, database_url)
    assert first.exit_code == 1, first.output
    lines = first.output.splitlines()
    assert lines[0].startswith("row 2: created: ")
    assert lines[1:] == [
        f"row 3: error: unknown patient: 'NOPE' in center {sites.center}",
        "1 created, 1 error",
    ]
    clean = tmp_path / "clean.csv"
    clean.write_text(f"{HEADER}\n{good}\n")
    again = _cli(clean, database_url)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "1 unchanged"
    clean.write_bytes(b"\xff\xfe\x00junk")
    broken = _cli(clean, database_url)
    assert broken.exit_code == 1
    assert "error: file: is not UTF-8 text" in broken.output
