"""Exports: filters, the `c3n-bot export` command, atomic files, reads that never block writes."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from c3n_bot.registry import export, submission_query
from c3n_bot.registry.export import ExportFormat
from c3n_bot.store.db import make_session_factory, snapshot_session
from c3n_bot.store.models.conversations import SubmissionStatus
from tests.builders import make_submission
from tests.registry.export_data import Registry, seed_registry, shipped_flows
from tests.test_cli import _restore_logging, invoke  # noqa: F401 - autouse: undo CLI logging


def _csv_ids(path: Path) -> list[str]:
    return [row["submission_id"] for row in csv.DictReader(io.StringIO(path.read_text()))]


def _ids(registry: Registry, *indexes: int) -> list[str]:
    return [str(registry.submissions[n].id) for n in indexes]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"days": 3}, [1, 2, 3, 4]),  # since is inclusive: the PHQ-9 3 days ago is in
        ({"days": 2}, [2, 3, 4]),
        ({"centers": "north"}, [1, 3, 4]),
        ({"centers": "south-id"}, [0, 2]),
        ({"flow_ids": ["ibd_checkin"]}, [0, 2]),
        ({"flow_ids": ["phq9"], "days": 1}, [3, 4]),
    ],
    ids=["since-3d", "since-2d", "center-slug", "center-id", "flow", "flow-and-since"],
)
def test_filters_choose_the_submissions(
    db: Session, now: datetime, tmp_path: Path, choice: dict[str, object], expected: list[int]
) -> None:
    registry = seed_registry(db, now)
    refs = {"north": [registry.north.slug], "south-id": [str(registry.south.id)]}
    since = now - timedelta(days=int(str(choice.get("days", 10))))
    job = export.plan(
        db,
        fmt=ExportFormat.CSV,
        since=since,
        catalog=shipped_flows(),
        centers=refs.get(str(choice.get("centers")), []),
        flow_ids=list(choice.get("flow_ids", [])),  # type: ignore[call-overload]
    )
    result = export.run(db, job, tmp_path / "out.csv")

    assert _csv_ids(tmp_path / "out.csv") == _ids(registry, *expected)
    assert job.total == result.submissions == len(expected)


def test_cli_exports_csv_and_ndjson_with_a_progress_bar(
    clean_env: Path, database_url: str, db: Session, now: datetime
) -> None:
    registry = seed_registry(db, now)
    db.commit()
    base = ["export", "--since", "2026-02-27"]

    csv_run = invoke([*base, "--format", "csv", "--flow", "phq9", "-o", "phq9.csv"], database_url)
    ndjson_run = invoke(
        [*base, "--format", "fhir-ndjson", "--center", registry.south.slug, "-o", "out.ndjson"],
        database_url,
    )

    assert csv_run.exit_code == 0, csv_run.output
    assert "3 submissions, 3 lines: phq9.csv" in csv_run.stdout
    assert "Exporting" in csv_run.stderr
    assert _csv_ids(clean_env / "phq9.csv") == _ids(registry, 1, 3, 4)
    assert ndjson_run.exit_code == 0, ndjson_run.output
    # The child's check-in 2 days ago: Patient, RelatedPerson, QuestionnaireResponse.
    assert "1 submissions, 3 lines: out.ndjson" in ndjson_run.stdout
    assert len((clean_env / "out.ndjson").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--flow", "visit_reminder"], "not a questionnaire flow: visit_reminder"),
        (["--center", "nowhere"], "unknown center: nowhere"),
        (["--center", "00000000-0000-0000-0000-000000000000"], "unknown center"),
    ],
)
def test_cli_refuses_unknown_flows_and_centers(
    clean_env: Path, database_url: str, option: list[str], message: str
) -> None:
    args = ["export", "--format", "csv", "--since", "2026-01-01", *option, "-o", "x.csv"]

    result = invoke(args, database_url)

    assert result.exit_code == 1
    assert message in result.stderr
    assert [path.name for path in clean_env.iterdir() if "x.csv" in path.name] == []


def test_a_failed_export_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous")

    with pytest.raises(RuntimeError), export.atomic_text(target) as out:
        out.write("half a file")
        raise RuntimeError("the database went away")

    assert target.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [target]


def test_an_export_reads_one_snapshot_and_never_blocks_writers(
    engine: Engine, db: Session, now: datetime
) -> None:
    registry = seed_registry(db, now)
    db.commit()
    where = submission_query.SubmissionFilter(
        centers=frozenset({registry.north.id, registry.south.id})
    )

    with snapshot_session(engine) as reader:
        before = submission_query.count(reader, where)
        records = submission_query.stream(reader, where)
        first = next(records)
        with make_session_factory(engine).begin() as writer:  # waits 10 s, then fails, if blocked
            make_submission(writer, patient=registry.teen, now=now, status=SubmissionStatus.STOPPED)
        rest = list(records)
        after = submission_query.count(reader, where)

    assert before == after == 1 + len(rest) == len(registry.submissions)
    assert str(first.id) == _ids(registry, 0)[0]
