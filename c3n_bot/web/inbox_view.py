"""The inbox's rows as the page shows them: plain strings, formatted once in Python.

Formatting here instead of in the template keeps the page's own cost close to its query's:
a Jinja expression per cell costs more than the string it makes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from c3n_bot.service.inbox import AlertRow, PatientRef, SubmissionRow
from c3n_bot.store.models import Center
from c3n_bot.web.templating import local_time


class Who(NamedTuple):
    """A patient as a row names them, with a link to their chart."""

    href: str
    name: str
    detail: str
    timezone: str


class SubmissionLine(NamedTuple):
    """One submission row."""

    who: Who
    at_iso: str
    at_local: str
    title: str
    version: int
    scores: str
    status: str


class AlertLine(NamedTuple):
    """One open-alert row."""

    id: str
    who: Who
    severity: str
    state: str
    title: str
    due_iso: str
    due_local: str
    escalated_local: str | None


def _who(patient: PatientRef, centers: Mapping[uuid.UUID, Center]) -> Who:
    center = centers[patient.center_id]
    return Who(
        href=f"/patients/{patient.id}",
        name=f"{patient.family_name}, {patient.given_name}",
        detail=f"{patient.external_id} · {center.name}",
        timezone=center.timezone,
    )


def scores_text(scores: Mapping[str, Any], bands: Mapping[str, Any]) -> str:
    """Scores as "total 12 (moderate)", comma separated."""
    return ", ".join(
        f"{name} {value} ({bands[name]})" if bands.get(name) else f"{name} {value}"
        for name, value in scores.items()
    )


def submission_lines(
    rows: Sequence[SubmissionRow], centers: Mapping[uuid.UUID, Center], titles: Mapping[str, str]
) -> list[SubmissionLine]:
    """The submission rows, formatted."""
    lines = []
    for row in rows:
        who = _who(row.patient, centers)
        lines.append(
            SubmissionLine(
                who=who,
                at_iso=row.authored_at.isoformat(),
                at_local=local_time(row.authored_at, who.timezone),
                title=titles.get(row.flow_id, row.flow_id),
                version=row.version,
                scores=scores_text(row.scores, row.bands),
                status=row.status.value,
            )
        )
    return lines


def alert_lines(
    rows: Sequence[AlertRow], centers: Mapping[uuid.UUID, Center], now: datetime
) -> list[AlertLine]:
    """The open-alert rows, formatted, each with its state (escalated, overdue or open)."""
    lines = []
    for row in rows:
        who = _who(row.patient, centers)
        escalated = row.escalated_at
        lines.append(
            AlertLine(
                id=str(row.id),
                who=who,
                severity=row.severity.value,
                state=row.state(now),
                title=row.title,
                due_iso=row.due_by.isoformat(),
                due_local=local_time(row.due_by, who.timezone),
                escalated_local=local_time(escalated, who.timezone) if escalated else None,
            )
        )
    return lines
