"""The CSV export: the exact layout analysts load, value by value."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from c3n_bot.registry import export
from c3n_bot.registry.export import ExportFormat
from c3n_bot.registry.export_csv import FIXED_COLUMNS, number_text
from tests.registry.export_data import seed_registry, shipped_flows

PHQ9 = [f"phq9.q{n}" for n in range(1, 11)] + ["phq9.score.total", "phq9.band.total"]
IBD = [
    f"ibd_checkin.{item}"
    for item in ("wellbeing", "pain_days", "blood", "missed_days", "meds", "note")
]


def _export(db: Session, path: Path, since: datetime, **choice: list[str]) -> str:
    job = export.plan(db, fmt=ExportFormat.CSV, since=since, catalog=shipped_flows(), **choice)
    export.run(db, job, path)
    return path.read_bytes().decode("utf-8")  # as written: CRLF line ends kept


def test_csv_layout_is_exact(db: Session, now: datetime, tmp_path: Path) -> None:
    registry = seed_registry(db, now)
    s = registry.submissions
    teen, child = registry.teen.external_id, registry.child.external_id
    north, south = registry.north.slug, registry.south.slug

    text = _export(
        db, tmp_path / "out.csv", now - timedelta(days=10), flow_ids=["phq9", "ibd_checkin"]
    )

    def fixed(n: int, ext: str, center: str, flow: str, status: str, who: str, ch: str) -> str:
        day = f"2026-02-{26 + n:02d}" if n < 3 else f"2026-03-{n - 2:02d}"
        replaces = str(s[1].id) if n == 4 else ""
        version = "2" if n == 4 else "1"
        return (
            f"{s[n].id},{version},{replaces},{ext},{center},{flow},1,{status},{who},{ch},"
            f"{day}T14:55:00Z,{day}T15:00:00Z"
        )

    phq9_answers = "LA6568-5,LA6569-3,LA6570-1,LA6571-9,LA6568-5,LA6569-3,LA6570-1,LA6571-9"
    expected = [
        ",".join([*FIXED_COLUMNS, *IBD, *PHQ9]),
        fixed(0, child, south, "ibd_checkin", "completed", "parent", "sms")
        + ',so-so,3,true,0,all,"\'=1+1 tummy ache, ""bad"" day"'
        + "," * 12,
        fixed(1, teen, north, "phq9", "completed", "self", "telegram")
        + ",,,,,,,"
        + phq9_answers
        + ",LA6568-5,LA6573-5,12,moderate",
        fixed(2, child, south, "ibd_checkin", "completed", "parent", "sms")
        + ",so-so,3,true,0,all,"
        + "," * 12,
        fixed(3, teen, north, "phq9", "partial", "self", "telegram") + ",,,,,,,LA6569-3" + "," * 11,
        fixed(4, teen, north, "phq9", "completed", "self", "telegram")
        + ",,,,,,,"
        + phq9_answers
        + ",LA6569-3,LA6573-5,13,moderate",
    ]
    assert text.split("\r\n") == [*expected, ""]


def test_without_flow_every_questionnaire_has_its_columns_in_id_order(
    db: Session, now: datetime, tmp_path: Path
) -> None:
    seed_registry(db, now)

    text = _export(db, tmp_path / "out.csv", now - timedelta(days=10))

    header = next(csv.reader(io.StringIO(text)))
    flows = [name.split(".")[0] for name in header[len(FIXED_COLUMNS) :]]
    assert list(dict.fromkeys(flows)) == ["gad7", "ibd_checkin", "phq9", "pucai"]
    pucai = ["pain", "bleeding", "consistency", "stools", "nocturnal", "activity"]
    assert header[-8:] == [f"pucai.{item}" for item in pucai] + [
        "pucai.score.total",
        "pucai.band.total",
    ]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 5
    assert all(row["gad7.score.total"] == "" for row in rows)


def test_numbers_are_written_as_an_analyst_would_type_them() -> None:
    assert [number_text(v) for v in (12, 12.0, 12.5, None, True, "12")] == [
        "12",
        "12",
        "12.5",
        "",
        "",
        "",
    ]
