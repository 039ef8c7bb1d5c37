"""Submissions as CSV: one row per submission, one column per item, score and band."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from c3n_bot.engine.definitions import Flow, Item, ItemType
from c3n_bot.registry.submission_record import SubmissionRecord

FIXED_COLUMNS = (
    "submission_id",
    "version",
    "replaces_id",
    "patient_external_id",
    "center",
    "flow_id",
    "flow_version",
    "status",
    "reporter_relationship",
    "channel",
    "started_at",
    "authored_at",
)
# A spreadsheet runs a cell starting with one of these as a formula: free text typed by
# anyone who can message the bot must never do that on an analyst's machine.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = Callable[[SubmissionRecord], str]


class CsvLayout:
    """The header and how to fill a row, for the chosen flows (in the order given)."""

    def __init__(self, flows: Sequence[Flow], centers: Mapping[uuid.UUID, str]) -> None:
        self._centers = centers
        self.header = list(FIXED_COLUMNS)
        # Per flow: where its columns start, and one function per column.
        self._cells: dict[str, tuple[int, list[Cell]]] = {}
        for flow in flows:
            names, cells = _flow_columns(flow)
            self._cells[flow.id] = (len(self.header), cells)
            self.header += names

    def row(self, record: SubmissionRecord) -> list[str]:
        """One submission's cells; another flow's columns stay empty."""
        reporter = record.reporter
        cells = [
            str(record.id),
            str(record.version),
            str(record.replaces_id or ""),
            record.patient.external_id,
            self._centers.get(record.center_id, str(record.center_id)),
            record.flow_id,
            record.flow_version,
            record.status,
            reporter.relationship.value if reporter and reporter.relationship else "",
            record.channel,
            utc_text(record.started_at),
            utc_text(record.authored_at),
        ]
        cells += [""] * (len(self.header) - len(cells))
        start, fill = self._cells.get(record.flow_id, (0, []))
        for offset, cell in enumerate(fill, start):
            cells[offset] = cell(record)
        return cells


def write_csv(records: Iterable[SubmissionRecord], layout: CsvLayout, out: TextIO) -> int:
    """Write the header and a row per record (RFC 4180: commas, CRLF); the rows written."""
    writer = csv.writer(out)
    writer.writerow(layout.header)
    written = 0
    for record in records:
        writer.writerow(layout.row(record))
        written += 1
    return written


def utc_text(moment: datetime) -> str:
    """An instant as ISO 8601 UTC to the second, e.g. 2026-03-02T15:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flow_columns(flow: Flow) -> tuple[list[str], list[Cell]]:
    names: list[str] = []
    cells: list[Cell] = []
    for item in flow.questions():
        names.append(f"{flow.id}.{item.id}")
        cells.append(_answer_cell(item))
    for score in flow.scores:
        names.append(f"{flow.id}.score.{score.id}")
        cells.append(_score_cell(score.id))
        if score.bands:
            names.append(f"{flow.id}.band.{score.id}")
            cells.append(_band_cell(score.id))
    return names, cells


def _answer_cell(item: Item) -> Cell:
    def cell(record: SubmissionRecord) -> str:
        answer = record.answers.get(item.id)
        return "" if answer is None else answer_text(item, answer)

    return cell


def _score_cell(score_id: str) -> Cell:
    return lambda record: number_text(record.scores.get(score_id))


def _band_cell(score_id: str) -> Cell:
    return lambda record: str(record.bands.get(score_id) or "")


def answer_text(item: Item, answer: Mapping[str, Any]) -> str:
    """A choice's code, a number, true/false, a date or text; empty when there is none."""
    value = answer.get("value")
    if item.type == ItemType.CHOICE:
        return str(answer.get("code") or "")
    if item.type == ItemType.BOOLEAN:
        return "true" if value is True else "false" if value is False else ""
    if item.type == ItemType.INTEGER:
        return number_text(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def number_text(value: object) -> str:
    """A score or count as written by hand: 12, 12.5; empty when there is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
