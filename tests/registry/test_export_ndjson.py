"""The FHIR NDJSON export: valid R4B resources, one a line, each person once, before use."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.orm import Session

from c3n_bot.registry import export
from c3n_bot.registry.export import ExportFormat
from c3n_bot.registry.fhir_ids import SUBMISSION_IDENTIFIER_SYSTEM
from tests.engine.transcripts import load_flow
from tests.registry.export_data import seed_registry, shipped_flows
from tests.registry.fhir_checks import check_response, references


def ndjson_export(db: Session, path: Path, since: datetime) -> list[dict[str, Any]]:
    """Export every shipped questionnaire to `path` and parse it line by line."""
    job = export.plan(db, fmt=ExportFormat.FHIR_NDJSON, since=since, catalog=shipped_flows())
    result = export.run(db, job, path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and result.lines == text.count("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_every_line_is_a_valid_r4b_resource(db: Session, now: datetime, tmp_path: Path) -> None:
    seed_registry(db, now)

    resources = ndjson_export(db, tmp_path / "out.ndjson", now - timedelta(days=10))

    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        if resource["resourceType"] == "QuestionnaireResponse":
            flow_id = resource["questionnaire"].rpartition("/")[2].partition("|")[0]
            check_response(resource, load_flow(flow_id))
    counts = Counter(r["resourceType"] for r in resources)
    # Two patients, one parent, five responses, and a total for the two completed PHQ-9s.
    assert counts == {
        "Patient": 2,
        "RelatedPerson": 1,
        "QuestionnaireResponse": 5,
        "Observation": 2,
    }


def test_people_come_once_before_what_refers_to_them(
    db: Session, now: datetime, tmp_path: Path
) -> None:
    registry = seed_registry(db, now)

    resources = ndjson_export(db, tmp_path / "out.ndjson", now - timedelta(days=10))

    seen: set[str] = set()
    for resource in resources:
        for reference in references(resource):
            assert reference == "#bot" or reference in seen, reference
        key = f"{resource['resourceType']}/{resource['id']}"
        assert key not in seen
        seen.add(key)
    # Grouped by patient, each patient's responses oldest first.
    responses = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    by_patient = sorted(
        registry.submissions, key=lambda s: (str(s.patient_id), s.authored_at, str(s.id))
    )
    assert [r["identifier"]["value"] for r in responses] == [str(s.id) for s in by_patient]
    assert {r["identifier"]["system"] for r in responses} == {SUBMISSION_IDENTIFIER_SYSTEM}
