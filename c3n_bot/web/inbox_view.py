"""The inbox's rows as the page shows them: escaped table rows (submissions, and alerts with
their acknowledge forms), formatted once in Python.

Formatting here instead of in the template keeps the page's own cost close to its query's:
a Jinja expression per cell costs more than the string it makes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from c3n_bot.engine.messages import N_
from c3n_bot.service.inbox import AlertRow, SubmissionRow
from c3n_bot.service.timing import load_zone
from c3n_bot.store.models import Center
from c3n_bot.web.html_text import html_text
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
NOTE_LABEL, NOTE_HINT, ACKNOWLEDGE = N_("Note"), N_("Note: what was done"), N_("Acknowledge")


class AckForm:
    """The acknowledge form's cell that closes each alert's row: the parts every row of a page
    shares (the session's CSRF token, the filters to return to, the labels in the page's
    gettext, marked safe as in a template) are joined once, around each alert's id."""

    def __init__(self, *, csrf_token: str, back: str, gettext: Callable[..., str]) -> None:
        hidden = (
            f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
            f'<input type="hidden" name="back" value="{escape(back)}">'
        )
        label, hint = escape(gettext(NOTE_LABEL)), escape(gettext(NOTE_HINT))
        self.parts = (
            '\n      <td>\n        <form method="post" action="/alerts/',
            f'/acknowledge" class="inline">\n          {hidden}\n          <label for="note-',
            f'" class="visually-hidden">{label}</label>\n          <input id="note-',
            f'" name="note" maxlength="2000" placeholder="{hint}">\n'
            f'          <button type="submit">{escape(gettext(ACKNOWLEDGE))}</button>\n'
            "        </form>\n      </td>\n    </tr>",
        )

    def cell(self, alert_id: str) -> str:
        """The form's cell for one alert, with the end of its row."""
        opening, after_action, after_label, rest = self.parts
        return f"{opening}{alert_id}{after_action}{alert_id}{after_label}{alert_id}{rest}"


def scores_text(scores: Mapping[str, Any], bands: Mapping[str, Any]) -> str:
    """Scores as "total 12 (moderate)", comma separated."""
    return ", ".join(
        f"{name} {value} ({bands[name]})" if bands.get(name) else f"{name} {value}"
        for name, value in scores.items()
    )


def _center_cells(
    centers: Mapping[uuid.UUID, Center],
) -> tuple[dict[uuid.UUID, ZoneInfo], dict[uuid.UUID, str]]:
    """Each center's zone and escaped name, looked up once per page."""
    zones = {center_id: load_zone(center.timezone) for center_id, center in centers.items()}
    names = {center_id: html_text(center.name) for center_id, center in centers.items()}
    return zones, names


# Ids, ISO instants and enum codes are escaped by construction (hex digits, digits and
# punctuation, lowercase codes): only text from people or the database goes through html_text.
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
    zones, names = _center_cells(centers)
    words: dict[str, str] = {}
    lines = []
    for row in rows:
        patient = row.patient
        title = words.get(row.flow_id)
        if title is None:
            title = words[row.flow_id] = html_text(titles.get(row.flow_id, row.flow_id))
        note = f" <small>({corrected % {'n': row.version}})</small>" if row.version > 1 else ""
        cells = (
            '<tr>\n      <td><time datetime="',
            row.authored_at.isoformat(),
            '">',
            html_text(wall_time(row.authored_at, zones[patient.center_id])),
            '</time></td>\n      <td><a href="/patients/',
            str(patient.id),
            '">',
            html_text(f"{patient.family_name}, {patient.given_name}"),
            "</a><br><small>",
            html_text(patient.external_id),
            " · ",
            names[patient.center_id],
            "</small></td>\n      <td>",
            title,
            note,
            "</td>\n      <td>",
            html_text(scores_text(row.scores, row.bands)),
            "</td>\n      <td>",
            row.status.value,
            "</td>\n    </tr>",
        )
        lines.append(Markup("".join(cells)))
    return lines


def alert_lines(
    rows: Sequence[AlertRow],
    centers: Mapping[uuid.UUID, Center],
    now: datetime,
    translate: Callable[[str], str],
    form: AckForm,
) -> list[Markup]:
    """The open-alert rows, formatted, each with its state (escalated, overdue or open) and
    its acknowledge form."""
    labels = {code: html_text(translate(word)) for code, word in ALERT_WORDS.items()}
    zones, names = _center_cells(centers)
    lines = []
    for row in rows:
        patient, alert_id = row.patient, str(row.id)
        zone = zones[patient.center_id]
        state, severity = row.state(now), row.severity.value
        shown = labels[state] if state == "open" else f"<strong>{labels[state]}</strong>"
        escalated = row.escalated_at
        if escalated:
            shown = f"{shown} {html_text(wall_time(escalated, zone))}"
        cells = (
            f'<tr class="alert-row {state}{" error" if state == "escalated" else ""}" '
            f'data-alert-id="{alert_id}">\n'
            f'      <td class="sev-{severity}">{labels[severity]}</td>\n'
            f'      <td><a href="/patients/{patient.id}">'
            f"{html_text(f'{patient.family_name}, {patient.given_name}')}</a><br>"
            f"<small>{html_text(patient.external_id)} · {names[patient.center_id]}</small></td>\n"
            f"      <td>{html_text(row.title)}</td>\n"
            f'      <td><time datetime="{row.due_by.isoformat()}">'
            f"{html_text(wall_time(row.due_by, zone))}</time></td>\n"
            f"      <td>{shown}</td>"
        )
        lines.append(Markup(cells + form.cell(alert_id)))
    return lines
