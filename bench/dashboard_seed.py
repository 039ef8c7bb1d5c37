"""Bulk seed for the dashboard benchmark: patients, a year of scored submissions, alerts.

Core executemany in batches (never one ORM object per row). Answers and scores come from the
shipped instruments (PHQ-9, GAD-7, PUCAI), so a page renders real questions and bands.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from c3n_bot.engine.definitions import Flow, ItemType
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.store.base import Channel, Condition
from c3n_bot.store.models import Alert, Center, Network, Patient, Submission
from c3n_bot.store.models.conversations import Severity, SubmissionStatus

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CENTERS = 20
BATCH = 10_000
INSTRUMENTS = ("phq9", "gad7", "pucai")
ZONES = ("America/New_York", "America/Los_Angeles")
ALERT_SHARE = 0.01  # of submissions
OPEN_ALERTS = 0.03  # of alerts, the rest acknowledged
VARIANTS = 64  # answer sets per instrument, reused: seeding stays fast, pages stay realistic


@dataclass(frozen=True)
class Seeded:
    """What the benchmark needs to know about the seeded data."""

    center_ids: tuple[uuid.UUID, ...]
    patient_ids_by_center: dict[uuid.UUID, list[uuid.UUID]]
    submissions: int
    alerts: int


@dataclass(frozen=True)
class _Variant:
    answers: dict[str, Any]
    scores: dict[str, Any]
    bands: dict[str, Any]


def seed(engine: Engine, flows: FlowCatalog, *, patients: int, submissions: int) -> Seeded:
    """A network of CENTERS centers, `patients` patients, `submissions` submissions spread
    evenly over the patients and the past year, and ALERT_SHARE of them with an alert."""
    rng = random.Random(7)
    variants = {flow_id: _variants(flows.get(flow_id), rng) for flow_id in INSTRUMENTS}
    with engine.begin() as connection:
        network_id = uuid.uuid4()
        connection.execute(insert(Network), [_network(network_id)])
        centers = [_center(network_id, n) for n in range(CENTERS)]
        connection.execute(insert(Center), centers)
        by_center: dict[uuid.UUID, list[uuid.UUID]] = {c["id"]: [] for c in centers}
        people = [_patient(centers[n % CENTERS], n) for n in range(patients)]
        for rows in _batches(people):
            connection.execute(insert(Patient), rows)
        for person in people:
            by_center[person["center_id"]].append(person["id"])
    alerts = 0
    for start in range(0, submissions, BATCH):
        count = min(BATCH, submissions - start)
        rows = [_submission(people[(start + n) % patients], rng, variants) for n in range(count)]
        flagged = [_alert(row, rng) for row in rows if rng.random() < ALERT_SHARE]
        with engine.begin() as connection:
            connection.execute(insert(Submission), rows)
            if flagged:
                connection.execute(insert(Alert), flagged)
        alerts += len(flagged)
    return Seeded(tuple(by_center), by_center, submissions, alerts)


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def _variants(flow: Flow, rng: random.Random) -> list[_Variant]:
    """Answer sets with the flow's own option codes, summed into the total and its band."""
    (score,) = flow.scores
    found = []
    for _ in range(VARIANTS):
        answers: dict[str, Any] = {}
        for item in flow.items:
            if item.type == ItemType.CHOICE and item.options:
                option = rng.choice(item.options)
                answers[item.id] = {
                    "code": option.code,
                    "value": option.value,
                    "display": option.text,
                }
        total = sum(a["value"] for a in answers.values() if isinstance(a["value"], int | float))
        total = min(total, 85)
        band = score.band(total)
        bands = {score.id: band.code} if band else {}
        found.append(_Variant(answers, {score.id: total}, bands))
    return found


def _network(network_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": network_id,
        "name": "Dashboard Bench Network",
        "slug": "dashboard-bench",
        "identifier_system": "urn:bench",
        "created_at": NOW,
    }


def _center(network_id: uuid.UUID, n: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "network_id": network_id,
        "name": f"Center {n:02d}",
        "slug": f"center-{n:02d}",
        "timezone": ZONES[n % 2],
        "crisis_resources": {},
        "quiet_hours_start": "21:00",
        "quiet_hours_end": "08:00",
        "daily_prompt_cap": 3,
        "on_call_language": "en",
        "created_at": NOW,
    }


def _patient(center: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "center_id": center["id"],
        "external_id": f"DB-{n:06d}",
        "given_name": "Sam",
        "family_name": f"Bench{n:06d}",
        "birth_date": date(2010 + n % 8, 1 + n % 12, 1 + n % 28),
        "condition": Condition.IBD,
        "language": "en",
        "timezone": center["timezone"],
        "schedules_paused": False,
        "created_at": NOW - timedelta(days=400),
    }


def _submission(
    patient: dict[str, Any], rng: random.Random, variants: dict[str, list[_Variant]]
) -> dict[str, Any]:
    flow_id = rng.choice(INSTRUMENTS)
    variant = rng.choice(variants[flow_id])
    authored = NOW - timedelta(seconds=rng.randrange(365 * 24 * 3600))
    return {
        "id": uuid.uuid4(),
        "patient_id": patient["id"],
        "center_id": patient["center_id"],
        "flow_id": flow_id,
        "flow_version": "1",
        "channel": Channel.SMS,
        "status": SubmissionStatus.COMPLETED,
        "answers": variant.answers,
        "scores": variant.scores,
        "bands": variant.bands,
        "started_at": authored - timedelta(minutes=4),
        "authored_at": authored,
        "version": 1,
    }


def _alert(submission: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    severity = Severity.URGENT if rng.random() < 0.3 else Severity.REVIEW
    raised = submission["authored_at"]
    due = raised + (timedelta(hours=1) if severity == Severity.URGENT else timedelta(days=3))
    acknowledged = rng.random() >= OPEN_ALERTS
    return {
        "id": uuid.uuid4(),
        "submission_id": submission["id"],
        "patient_id": submission["patient_id"],
        "center_id": submission["center_id"],
        "rule": "bench_rule",
        "title": "Bench alert",
        "severity": severity,
        "raised_at": raised,
        "due_by": due,
        "acknowledged_at": raised + timedelta(minutes=30) if acknowledged else None,
        "escalated_at": due if not acknowledged and severity == Severity.URGENT else None,
    }
