"""Submissions as FHIR R4 NDJSON: one resource per line, each person once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from c3n_bot.engine.definitions import Flow
from c3n_bot.registry.fhir_bundle import submission_resources
from c3n_bot.registry.submission_record import SubmissionRecord

_PEOPLE = ("Patient", "RelatedPerson")


@dataclass
class NdjsonCounts:
    """What an NDJSON export wrote, and the submissions it could not map."""

    submissions: int = 0
    lines: int = 0
    unknown_flow: int = 0


def ndjson_resources(
    records: Iterable[SubmissionRecord], flows: Mapping[str, Flow], counts: NdjsonCounts
) -> Iterator[dict[str, Any]]:
    """The resources of each record, its Patient and RelatedPerson only when new.

    Records must come grouped by patient (`submission_query.stream(..., by_patient=True)`):
    a person is then new exactly when not seen since the patient changed, so memory holds
    one patient's people, never the whole export's.
    """
    patient: uuid.UUID | None = None
    seen: set[str] = set()
    for record in records:
        flow = flows.get(record.flow_id)
        if flow is None:
            counts.unknown_flow += 1  # a flow no longer deployed: nothing to map its items to
            continue
        if record.patient.id != patient:
            patient = record.patient.id
            seen.clear()
        counts.submissions += 1
        for resource in submission_resources(record, flow):
            if resource["resourceType"] in _PEOPLE:
                if resource["id"] in seen:
                    continue
                seen.add(resource["id"])
            yield resource


def resource_line(resource: dict[str, Any]) -> str:
    """One NDJSON line: compact JSON, UTF-8 text kept as is, and a newline."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_ndjson(
    records: Iterable[SubmissionRecord], flows: Mapping[str, Flow], out: TextIO
) -> NdjsonCounts:
    """Write every resource of the records, one per line."""
    counts = NdjsonCounts()
    for resource in ndjson_resources(records, flows, counts):
        out.write(resource_line(resource))
        counts.lines += 1
    return counts
