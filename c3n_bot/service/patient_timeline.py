"""A patient's reports: the submission timeline in plain words, and instrument score trends.

Answers are shown as the flow words them (the option's text, translated for the viewer), not
as codes; a corrected submission shows only its newest version. Corrections keep the original's
``authored_at``, so a version and its replacement sort next to each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from c3n_bot.engine import messages
from c3n_bot.engine.definitions import Flow, Item, ItemType, Score
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.store.models import Submission
from c3n_bot.store.models.conversations import SubmissionStatus

# The instruments charted on a patient's page, in the order they are shown.
INSTRUMENTS = ("phq9", "gad7", "pucai")
TIMELINE_SHOWN = 50
TREND_POINTS = 52
Translate = Callable[[str], str]


@dataclass(frozen=True)
class AnswerLine:
    """One question and its answer, as words."""

    question: str
    answer: str


@dataclass(frozen=True)
class ScoreLine:
    """A computed score and the (translated) label of its band."""

    label: str
    value: Any
    band: str | None


@dataclass(frozen=True)
class TimelineEntry:
    """One report of the timeline."""

    id: uuid.UUID
    flow_id: str
    title: str
    status: SubmissionStatus
    authored_at: datetime
    version: int
    scores: list[ScoreLine]
    answers: list[AnswerLine]


@dataclass(frozen=True)
class Trend:
    """An instrument's charted score over time (oldest first), with the score's bands."""

    flow: Flow
    score: Score
    points: list[tuple[datetime, float]]


@dataclass(frozen=True)
class Reports:
    """A chart's reports: the timeline and the instrument trends."""

    timeline: list[TimelineEntry]
    trends: list[Trend]


def reports(
    db: Session,
    patient_id: uuid.UUID,
    *,
    flows: FlowCatalog,
    translate: Translate,
    limit: int = TIMELINE_SHOWN,
) -> Reports:
    """The timeline and the trends. When the timeline holds the patient's whole history (fewer
    reports than `limit`, as for most patients), the trends come from its rows: one query."""
    rows = _timeline_rows(db, patient_id, limit)
    newest = list(_newest_versions(rows))
    charted = _charted(flows)
    if len(rows) < limit:
        history = [
            row
            for row in reversed(newest)
            if row.flow_id in charted and row.status == SubmissionStatus.COMPLETED
        ]
    else:
        history = list(_newest_versions(_trend_rows(db, patient_id, list(charted))))
    return Reports(
        timeline=[_entry(row, flows, translate) for row in newest],
        trends=_trends(history, charted, flows),
    )


def timeline(
    db: Session,
    patient_id: uuid.UUID,
    *,
    flows: FlowCatalog,
    translate: Translate,
    limit: int = TIMELINE_SHOWN,
) -> list[TimelineEntry]:
    """The newest reports first, answers in the viewer's words (one query)."""
    rows = _timeline_rows(db, patient_id, limit)
    return [_entry(row, flows, translate) for row in _newest_versions(rows)]


def trends(db: Session, patient_id: uuid.UUID, *, flows: FlowCatalog) -> list[Trend]:
    """The charted score of each instrument the patient reported (one query)."""
    charted = _charted(flows)
    if not charted:
        return []
    rows = _trend_rows(db, patient_id, list(charted))
    return _trends(list(_newest_versions(rows)), charted, flows)


def _timeline_rows(db: Session, patient_id: uuid.UUID, limit: int) -> Sequence[Row[Any]]:
    return db.execute(
        select(
            Submission.id,
            Submission.replaces_id,
            Submission.flow_id,
            Submission.status,
            Submission.authored_at,
            Submission.version,
            Submission.answers,
            Submission.scores,
            Submission.bands,
        )
        .where(Submission.patient_id == patient_id)
        .order_by(Submission.authored_at.desc(), Submission.version.desc())
        .limit(limit)
    ).all()


def _trend_rows(db: Session, patient_id: uuid.UUID, flow_ids: list[str]) -> Sequence[Row[Any]]:
    return db.execute(
        select(
            Submission.id,
            Submission.replaces_id,
            Submission.flow_id,
            Submission.authored_at,
            Submission.scores,
        )
        .where(
            Submission.patient_id == patient_id,
            Submission.flow_id.in_(flow_ids),
            Submission.status == SubmissionStatus.COMPLETED,
        )
        .order_by(Submission.authored_at, Submission.version)
    ).all()


def _charted(flows: FlowCatalog) -> dict[str, Score]:
    """The charted score of each shipped instrument, by flow id, in the order shown."""
    found = {flow_id: _charted_score(flows, flow_id) for flow_id in INSTRUMENTS}
    return {flow_id: score for flow_id, score in found.items() if score is not None}


def _trends(history: list[Row[Any]], charted: dict[str, Score], flows: FlowCatalog) -> list[Trend]:
    """Series of the charted scores from rows oldest first, the last TREND_POINTS of each."""
    series: dict[str, list[tuple[datetime, float]]] = {flow_id: [] for flow_id in charted}
    for row in history:
        value = row.scores.get(charted[row.flow_id].id)
        if isinstance(value, int | float) and not isinstance(value, bool):
            series[row.flow_id].append((row.authored_at, float(value)))
    return [
        Trend(flows.get(flow_id), charted[flow_id], points[-TREND_POINTS:])
        for flow_id, points in series.items()
        if points
    ]


def _charted_score(flows: FlowCatalog, flow_id: str) -> Score | None:
    if not flows.has(flow_id):
        return None
    return next((score for score in flows.get(flow_id).scores if score.bands), None)


def _newest_versions(rows: Sequence[Row[Any]]) -> Iterable[Row[Any]]:
    replaced = {row.replaces_id for row in rows if row.replaces_id is not None}
    return (row for row in rows if row.id not in replaced)


def _entry(row: Row[Any], flows: FlowCatalog, translate: Translate) -> TimelineEntry:
    flow = flows.get(row.flow_id) if flows.has(row.flow_id) else None
    return TimelineEntry(
        id=row.id,
        flow_id=row.flow_id,
        title=flow.title if flow else row.flow_id,
        status=row.status,
        authored_at=row.authored_at,
        version=row.version,
        scores=_scores(flow, row.scores, row.bands, translate),
        answers=answer_lines(flow, row.answers, translate),
    )


def _scores(
    flow: Flow | None, scores: Mapping[str, Any], bands: Mapping[str, Any], translate: Translate
) -> list[ScoreLine]:
    known = {score.id: score for score in flow.scores} if flow else {}
    lines = []
    for score_id, value in scores.items():
        definition = known.get(score_id)
        band = definition.band(value) if definition and isinstance(value, int | float) else None
        # A band whose flow changed since is still shown, by its stored code.
        code = bands.get(score_id)
        shown = translate(band.label) if band else code if isinstance(code, str) else None
        label = definition.label if definition else score_id
        lines.append(ScoreLine(label=label, value=value, band=shown))
    return lines


def answer_lines(
    flow: Flow | None, answers: Mapping[str, Any], translate: Translate
) -> list[AnswerLine]:
    """Each stored answer as (question, answer) words, in the flow's order of questions."""
    items = {item.id: item for item in flow.items} if flow else {}
    order = [item_id for item_id in items if item_id in answers]
    order += [item_id for item_id in answers if item_id not in items]
    return [_answer(items.get(item_id), item_id, answers[item_id], translate) for item_id in order]


def _answer(item: Item | None, item_id: str, stored: Any, translate: Translate) -> AnswerLine:
    stored = stored if isinstance(stored, Mapping) else {"value": stored}
    code, value = stored.get("code"), stored.get("value")
    fallback = str(stored.get("display") or ("" if value is None else value))
    if item is None:
        return AnswerLine(item_id, fallback)
    question = translate(item.text)
    if item.type == ItemType.BOOLEAN and isinstance(value, bool):
        return AnswerLine(question, translate(messages.YES if value else messages.NO))
    option = item.option(code) if isinstance(code, str) else None
    if option is not None:
        return AnswerLine(question, translate(option.text))
    return AnswerLine(question, fallback)
