"""A small registry for the export tests: two centers, a patient and a child, five submissions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from c3n_bot.engine.definitions import Flow, ItemType
from c3n_bot.service.flows import load_dir
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.models import Center, Patient, Submission
from c3n_bot.store.models.conversations import SubmissionStatus
from tests.builders import link, make_center, make_contact, make_patient, make_submission
from tests.engine.transcripts import FLOWS_DIR, load_flow

# Answers of a completed PHQ-9: items 1-9 score 0,1,2,3,0,1,2,3,0 (total 12), item 10 "1".
_FREQUENCY = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
PHQ9_REPLIES: dict[str, object] = {
    **{f"q{n}": _FREQUENCY[(n - 1) % 4] for n in range(1, 10)},
    "q10": "LA6573-5",
}
IBD_REPLIES: dict[str, object] = {
    "wellbeing": "so-so",
    "pain_days": 3,
    "blood": True,
    "missed_days": 0,
    "meds": "all",
    "note": '=1+1 tummy ache, "bad" day',
}


def shipped_flows() -> list[Flow]:
    """Every shipped flow."""
    flows, issues = load_dir(FLOWS_DIR)
    assert not issues
    return flows


def answers_for(flow: Flow, replies: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    """Stored answers as the engine records them: a choice's code, value and label."""
    answers: dict[str, dict[str, Any]] = {}
    for item_id, reply in replies.items():
        item = flow.item(item_id)
        if item.type == ItemType.CHOICE:
            option = item.option(str(reply))
            assert option is not None, (item_id, reply)
            answers[item_id] = {"code": option.code, "value": option.value, "display": option.text}
        elif item.type == ItemType.BOOLEAN:
            label = "Yes" if reply else "No"
            answers[item_id] = {"code": "yes" if reply else "no", "value": reply, "display": label}
        else:
            answers[item_id] = {"code": None, "value": reply, "display": str(reply)}
    return answers


@dataclass
class Registry:
    """What `seed_registry` wrote, oldest submission first."""

    north: Center
    south: Center
    teen: Patient
    child: Patient
    submissions: list[Submission]


def seed_registry(db: Session, now: datetime) -> Registry:
    """Five submissions, a day apart from `now - 4 days`, over two centers and two flows.

    0: an IBD check-in of the child, a day before the others (before `since` in the tests)
    1: the teen's PHQ-9, completed (total 12, moderate)
    2: the child's IBD check-in by a parent on SMS, the note skipped
    3: the teen's PHQ-9, partial (one answer, no total)
    4: a correction of 1: version 2, total 13
    """
    north = make_center(db, now=now)
    south = make_center(db, now=now)
    teen = make_patient(db, now=now, center=north)
    child = make_patient(db, now=now, center=south)
    teen_self = make_contact(db, now=now)
    link(db, contact=teen_self, patient=teen, relation=Relationship.SELF)
    parent = make_contact(db, now=now)
    link(db, contact=parent, patient=child, relation=Relationship.PARENT)
    phq9, ibd = load_flow("phq9"), load_flow("ibd_checkin")
    ibd_answers = answers_for(ibd, IBD_REPLIES)
    rows = [
        make_submission(
            db, patient=child, now=now - timedelta(days=4), reporter=parent, flow_id=ibd.id,
            answers=ibd_answers, channel=Channel.SMS,
        ),
        make_submission(
            db, patient=teen, now=now - timedelta(days=3), reporter=teen_self, flow_id=phq9.id,
            answers=answers_for(phq9, PHQ9_REPLIES), scores={"total": 12},
            bands={"total": "moderate"},
        ),
        make_submission(
            db, patient=child, now=now - timedelta(days=2), reporter=parent, flow_id=ibd.id,
            answers={k: v for k, v in ibd_answers.items() if k != "note"}, channel=Channel.SMS,
        ),
        make_submission(
            db, patient=teen, now=now - timedelta(days=1), reporter=teen_self, flow_id=phq9.id,
            answers=answers_for(phq9, {"q1": "LA6569-3"}), scores={"total": None},
            bands={}, status=SubmissionStatus.PARTIAL,
        ),
        make_submission(
            db, patient=teen, now=now, reporter=teen_self, flow_id=phq9.id,
            answers=answers_for(phq9, {**PHQ9_REPLIES, "q9": "LA6569-3"}),
            scores={"total": 13}, bands={"total": "moderate"},
        ),
    ]  # fmt: skip
    rows[4].version, rows[4].replaces_id = 2, rows[1].id
    db.flush()
    return Registry(north=north, south=south, teen=teen, child=child, submissions=rows)
