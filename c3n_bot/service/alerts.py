"""Alerts after they are raised: the care team acknowledges them; overdue urgent ones escalate."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from c3n_bot.engine.events import MessageOut
from c3n_bot.engine.messages import N_
from c3n_bot.service import audit, timing
from c3n_bot.service.context import Services
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.service.outbox import enqueue_to
from c3n_bot.store.models import Alert, Center
from c3n_bot.store.models.conversations import Severity

log = logging.getLogger(__name__)

MAX_NOTE = 2000
ESCALATION_BATCH = 200
# Sent to a pager or a staff chat: no names or answers, only where to look and how late it is.
ESCALATION = N_(
    "c3n-bot: an urgent alert at {center} was not acknowledged by {due} ({rule}, ref {ref}). "
    "Please open the care-team inbox now."
)


def acknowledge(
    db: Session,
    *,
    alert_id: uuid.UUID,
    staff_id: uuid.UUID,
    allowed_centers: set[uuid.UUID],
    note: str,
    actor: audit.Actor,
    now: datetime,
) -> bool:
    """Acknowledge an open alert with a note, audited; False when it already was (the first
    acknowledgement stands). NotFound when absent or in another center."""
    alert = db.get(Alert, alert_id)
    if alert is None or alert.center_id not in allowed_centers:
        raise NotFound("alert")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput("note", f"at most {MAX_NOTE} characters")
    # Conditional: two clinicians acknowledging at once cannot both win.
    claimed = db.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_by=staff_id, acknowledged_at=now, note=note or None)
        .returning(Alert.id)
    ).scalar_one_or_none()
    if claimed is None:
        return False
    audit.record(
        db,
        actor=actor,
        action="alert.acknowledge",
        patient_id=alert.patient_id,
        center_id=alert.center_id,
        subject=str(alert.id),
        detail={"rule": alert.rule, "severity": alert.severity.value, "late": now > alert.due_by},
        now=now,
    )
    log.info("alert.acknowledged", extra={"alert_id": str(alert.id)})
    return True


def escalate_overdue(
    db: Session, now: datetime, services: Services, *, batch: int = ESCALATION_BATCH
) -> int:
    """Clock task: mark each urgent alert still open past its due time as escalated and page
    its center's on-call contact, exactly once per alert; returns how many escalated."""
    rows = db.execute(
        select(Alert, Center)
        .join(Center, Center.id == Alert.center_id)
        .where(
            Alert.severity == Severity.URGENT,
            Alert.acknowledged_at.is_(None),
            Alert.escalated_at.is_(None),
            Alert.due_by <= now,
        )
        .order_by(Alert.due_by)
        .limit(batch)
        .with_for_update(of=Alert, skip_locked=True)
    ).all()
    escalated = 0
    for alert, center in rows:
        if _claim(db, alert.id, now):
            _page_on_call(db, alert, center, services, now)
            escalated += 1
    return escalated


def _claim(db: Session, alert_id: uuid.UUID, now: datetime) -> bool:
    # The guarded update is the once-only gate; a second clock finds nothing left to claim.
    claimed = db.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.escalated_at.is_(None), Alert.acknowledged_at.is_(None))
        .values(escalated_at=now)
        .returning(Alert.id)
    ).scalar_one_or_none()
    return claimed is not None


def _page_on_call(
    db: Session, alert: Alert, center: Center, services: Services, now: datetime
) -> None:
    if center.on_call_channel is None or not center.on_call_address:
        log.warning("alert.escalated_without_on_call", extra={"alert_id": str(alert.id)})
        return
    due = alert.due_by.astimezone(timing.load_zone(center.timezone))
    values = {
        "center": center.name,
        "due": due.strftime("%H:%M %Z"),
        "rule": alert.rule,
        "ref": alert.id.hex[:8],
    }
    text = services.fill(center.on_call_language, ESCALATION, values)
    try:
        # The unique dedupe key is the database's own guarantee of one page per alert.
        with db.begin_nested():
            enqueue_to(
                db,
                channel=center.on_call_channel,
                address=center.on_call_address,
                identity=None,
                message=MessageOut(text=text),
                kind="escalation",
                now=now,
                dedupe_key=f"escalation:{alert.id}",
            )
    except IntegrityError:
        log.info("alert.escalation_already_paged", extra={"alert_id": str(alert.id)})
        return
    log.warning("alert.escalated", extra={"alert_id": str(alert.id)})
