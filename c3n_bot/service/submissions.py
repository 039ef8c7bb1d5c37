"""Corrections of registry submissions: a new version, rescored; the old one never changes."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.engine.answers import MAX_TEXT
from c3n_bot.engine.definitions import Flow, Item, ItemType
from c3n_bot.engine.scoring import compute_scores
from c3n_bot.service import audit
from c3n_bot.service.context import Services
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.service.registry_queue import queue_deliveries
from c3n_bot.store.models import Submission
from c3n_bot.store.models.conversations import SubmissionStatus

# Bounds the engine applies to an integer item that names none.
DEFAULT_MIN, DEFAULT_MAX = 0, 999


def correct(
    db: Session,
    *,
    submission_id: uuid.UUID,
    changes: Mapping[str, Any],
    services: Services,
    actor: audit.Actor,
    now: datetime,
    allowed_centers: set[uuid.UUID] | None = None,
) -> Submission:
    """Record a corrected version of the newest version of a submission, rescored.

    `changes` maps item ids to a new answer (an option code, an integer, a boolean, an ISO
    date or a text) or to None to clear it. The new row gets version + 1, `replaces_id`,
    the original's reporter, channel and authored time (when the family reported), and is
    queued for every sink. Raises NotFound (also outside `allowed_centers`, when given),
    Conflict (an older version, or a flow no longer deployed) or InvalidInput (naming the item).
    """
    old = db.get(Submission, submission_id, with_for_update=True)
    if old is None or (allowed_centers is not None and old.center_id not in allowed_centers):
        raise NotFound("submission")
    if db.scalar(select(Submission.id).where(Submission.replaces_id == old.id)) is not None:
        raise Conflict("this submission was already corrected: correct its newest version")
    if not services.flows.has(old.flow_id):
        raise Conflict(f"flow {old.flow_id!r} is no longer deployed")
    flow = services.flows.get(old.flow_id)
    answers = _apply(flow, dict(old.answers), changes)
    scores, bands = compute_scores(flow, answers, _previous_scores(db, old))
    new = Submission(
        patient_id=old.patient_id,
        center_id=old.center_id,
        reporter_contact_id=old.reporter_contact_id,
        flow_id=old.flow_id,
        flow_version=flow.version,
        channel=old.channel,
        status=old.status,
        answers=answers,
        scores=scores,
        bands=bands,
        started_at=old.started_at,
        authored_at=old.authored_at,
        version=old.version + 1,
        replaces_id=old.id,
    )
    db.add(new)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="submission.corrected",
        now=now,
        patient_id=old.patient_id,
        center_id=old.center_id,
        subject=str(new.id),
        detail={"replaces": str(old.id), "items": sorted(changes)},
    )
    queue_deliveries(db, submission_id=new.id, now=now, sinks=services.sinks)
    return new


def _apply(flow: Flow, answers: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    for item_id, value in changes.items():
        try:
            item = flow.item(item_id)
        except KeyError:
            raise InvalidInput(item_id, "no such item in the flow") from None
        if value is None:
            answers.pop(item_id, None)
        else:
            answers[item_id] = recorded_answer(item, value)
    return answers


def recorded_answer(item: Item, value: Any) -> dict[str, Any]:
    """A corrected answer as the engine records one (code, value, display), or InvalidInput."""
    if item.type == ItemType.CHOICE and isinstance(value, str) and item.option(value):
        option = item.option(value)
        assert option is not None
        ordinal = option.value if option.value is not None else option.code
        return {"code": option.code, "value": ordinal, "display": option.text}
    if item.type == ItemType.BOOLEAN and isinstance(value, bool):
        return {
            "code": "yes" if value else "no",
            "value": value,
            "display": "Yes" if value else "No",
        }
    if item.type == ItemType.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        low = DEFAULT_MIN if item.min is None else item.min
        high = DEFAULT_MAX if item.max is None else item.max
        if low <= value <= high:
            return {"code": None, "value": value, "display": str(value)}
    if item.type == ItemType.DATE and isinstance(value, str):
        with contextlib.suppress(ValueError):
            day = date.fromisoformat(value).isoformat()
            return {"code": None, "value": day, "display": day}
    if item.type == ItemType.TEXT and isinstance(value, str) and 0 < len(value.strip()) <= MAX_TEXT:
        return {"code": None, "value": value.strip(), "display": value.strip()}
    raise InvalidInput(item.id, f"not a valid answer to this {item.type.value} item")


def _previous_scores(db: Session, old: Submission) -> dict[str, Any]:
    # What prev.<score> meant when the family reported: the report before this one.
    scores = db.scalar(
        select(Submission.scores)
        .where(
            Submission.patient_id == old.patient_id,
            Submission.flow_id == old.flow_id,
            Submission.status == SubmissionStatus.COMPLETED,
            Submission.authored_at < old.authored_at,
        )
        .order_by(Submission.authored_at.desc(), Submission.version.desc())
        .limit(1)
    )
    return dict(scores or {})
