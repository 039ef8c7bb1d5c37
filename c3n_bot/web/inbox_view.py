"""The inbox's rows as the page shows them: escaped table rows (submissions) and cells
(alerts, whose acknowledge form stays in the template), formatted once in Python.

Formatting here instead of in the template keeps the page's own cost close to its query's:
a Jinja expression per cell costs more than the string it makes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from markupsafe import Markup, escape

from c3n_bot.engine.messages import N_
from c3n_bot.service.inbox import AlertRow, PatientRef, SubmissionRow
from c3n_bot.service.timing import load_zone
from c3n_bot.store.models import Center
from c3n_bot.web.templating import wall_time

CORRECTED = N_("corrected, version %(n)s")
# An alert's severity and state, as the inbox words them.
ALERT_WORDS = {
    "urgent": N_("Urgent"),
    "review": N_("Review"),
    "escalated": N_("Escalated"),
    "overdue": N_("Overdue"),
    "open": N_("Awaiting acknowledgement"),
}


class Who(NamedTuple):
    """A patient as a row names them, with a link to their chart."""

    href: str
    name: str
    detail: str


class AlertLine(NamedTuple):
    """One open-alert row: its id (for the acknowledge form) and its other cells, escaped."""

    id: str
    cells: Markup


def _who(patient: PatientRef, centers: Mapping[uuid.UUID, Center]) -> Who:
    center = centers[patient.center_id]
    return Who(
        href=f"/patients/{patient.id}",
        name=f"{patient.family_name}, {patient.given_name}",
        detail=f"{patient.external_id} · {center.name}",
    )


def scores_text(scores: Mapping[str, Any], bands: Mapping[str, Any]) -> str:
    """Scores as "total 12 (moderate)", comma separated."""
    return ", ".join(
        f"{name} {value} ({bands[name]})" if bands.get(name) else f"{name} {value}"
        for name, value in scores.items()
    )


def submission_rows(
    rows: Sequence[SubmissionRow],
    centers: Mapping[uuid.UUID, Center],
    titles: Mapping[str, str],
    translate: Callable[[str], str],
) -> list[Markup]:
    """The submission rows as the table's rows, every text escaped; a page lists fifty, and a
    Jinja expression per cell cost more than the whole row joined here."""
    corrected = Markup(translate(CORRECTED))
    # Centers, questionnaires and statuses recur from row to row: each is looked up once.
    zones = {center_id: load_zone(center.timezone) for center_id, center in centers.items()}
    names = {center_id: escape(center.name) for center_id, center in centers.items()}
    words: dict[str, str] = {}
    lines = []
    for row in rows:
        patient = row.patient
        title = words.get(row.flow_id)
        if title is None:
            title = words[row.flow_id] = escape(titles.get(row.flow_id, row.flow_id))
        note = f" <small>({corrected % {'n': row.version}})</small>" if row.version > 1 else ""
        cells = (
            '<tr>\n      <td><time datetime="',
            escape(row.authored_at.isoformat()),
            '">',
            escape(wall_time(row.authored_at, zones[patient.center_id])),
            '</time></td>\n      <td><a href="/patients/',
            escape(str(patient.id)),
            '">',
            escape(f"{patient.family_name}, {patient.given_name}"),
            "</a><br><small>",
            escape(patient.external_id),
            " · ",
            names[patient.center_id],
            "</small></td>\n      <td>",
            title,
            note,
            "</td>\n      <td>",
            escape(scores_text(row.scores, row.bands)),
            "</td>\n      <td>",
            escape(row.status.value),
            "</td>\n    </tr>",
        )
        lines.append(Markup("".join(cells)))
    return lines


def alert_lines(
    rows: Sequence[AlertRow],
    centers: Mapping[uuid.UUID, Center],
    now: datetime,
    translate: Callable[[str], str],
) -> list[AlertLine]:
    """The open-alert rows, formatted, each with its state (escalated, overdue or open)."""
    labels = {code: escape(translate(word)) for code, word in ALERT_WORDS.items()}
    zones = {center_id: load_zone(center.timezone) for center_id, center in centers.items()}
    lines = []
    for row in rows:
        who = _who(row.patient, centers)
        zone = zones[row.patient.center_id]
        state, severity = row.state(now), row.severity.value
        shown = labels[state] if state == "open" else f"<strong>{labels[state]}</strong>"
        escalated = row.escalated_at
        if escalated:
            shown = f"{shown} {escape(wall_time(escalated, zone))}"
        cells = (
            f'<tr class="alert-row {escape(state)}{" error" if state == "escalated" else ""}" '
            f'data-alert-id="{row.id}">\n'
            f'      <td class="sev-{escape(severity)}">{labels[severity]}</td>\n'
            f'      <td><a href="{escape(who.href)}">{escape(who.name)}</a><br>'
            f"<small>{escape(who.detail)}</small></td>\n"
            f"      <td>{escape(row.title)}</td>\n"
            f'      <td><time datetime="{escape(row.due_by.isoformat())}">'
            f"{escape(wall_time(row.due_by, zone))}</time></td>\n"
            f"      <td>{shown}</td>"
        )
        lines.append(AlertLine(id=str(row.id), cells=Markup(cells)))
    return lines
