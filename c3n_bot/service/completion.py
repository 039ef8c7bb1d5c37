"""What a finished flow leaves behind: the registry submission, alerts, consents, replies."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from c3n_bot.engine.definitions import Flow, FlowKind
from c3n_bot.engine.events import AlertRaised, MessageOut, SubmissionCompleted
from c3n_bot.service import texts
from c3n_bot.service.outbox import enqueue
from c3n_bot.service.registry_queue import queue_deliveries
from c3n_bot.store.base import Purpose
from c3n_bot.store.models import (
    Alert,
    Appointment,
    ChannelIdentity,
    Consent,
    ConversationSession,
    Patient,
    Submission,
)
from c3n_bot.store.models.community import RsvpResponse
from c3n_bot.store.models.conversations import Severity, SubmissionStatus
from c3n_bot.store.models.scheduling import AppointmentStatus

log = logging.getLogger(__name__)

# How long the care team has to acknowledge an alert before it is overdue.
DUE_WITHIN = {Severity.URGENT: timedelta(hours=1), Severity.REVIEW: timedelta(days=3)}


def previous_scores(db: Session, patient_id: uuid.UUID, flow_id: str) -> dict[str, Any]:
    """The scores of the patient's last completed submission of a flow (for prev.<score>)."""
    scores = db.scalar(
        select(Submission.scores)
        .where(
            Submission.patient_id == patient_id,
            Submission.flow_id == flow_id,
            Submission.status == SubmissionStatus.COMPLETED,
        )
        # A correction keeps the original's authored_at: the newest version wins the tie.
        .order_by(Submission.authored_at.desc(), Submission.version.desc())
        .limit(1)
    )
    return dict(scores or {})


def raise_alert(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    event: AlertRaised,
    now: datetime,
) -> Alert | None:
    """Record an alert for the care team; a crisis one also sends the crisis resources now."""
    patient = db.get(Patient, session.patient_id) if session.patient_id else None
    if event.crisis and identity.stopped_at is None:
        lang = session.state.get("lang", "en")
        resources = _crisis_resources(patient, lang)
        text = f"{event.message}\n{resources}" if event.message else resources
        enqueue(
            db,
            identity=identity,
            message=MessageOut(text=text),
            kind="safety",
            now=now,
            session_id=session.id,
        )
    if patient is None:
        log.error("alert.without_patient", extra={"session_id": str(session.id)})
        return None
    severity = Severity(event.severity)
    alert = Alert(
        session_id=session.id,
        patient_id=patient.id,
        center_id=patient.center_id,
        rule=event.rule_id,
        severity=severity,
        title=event.title,
        raised_at=now,
        due_by=now + DUE_WITHIN[severity],
    )
    db.add(alert)
    log.warning(
        "alert.raised",
        extra={
            "alert_rule": event.rule_id,
            "severity": severity.value,
            "session_id": str(session.id),
        },
    )
    return alert


def _crisis_resources(patient: Patient | None, lang: str) -> str:
    resources = patient.center.crisis_resources if patient is not None else {}
    return resources.get(lang) or resources.get("en") or texts.CRISIS_FALLBACK


def record(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    flow: Flow,
    event: SubmissionCompleted,
    now: datetime,
    *,
    sinks: Sequence[str] = (),
) -> None:
    """Keep the result: a registry submission for a questionnaire (queued for every FHIR sink),
    else the flow's effect."""
    if flow.kind == FlowKind.QUESTIONNAIRE:
        _submission(db, session, identity, event, now, sinks)
    elif flow.kind == FlowKind.CONSENT:
        _consents(db, session, event, now)
    elif flow.kind == FlowKind.REMINDER:
        _visit_answer(db, session, event, now)
    elif flow.kind == FlowKind.INVITATION:
        _rsvp(db, session, event, now)


def _submission(
    db: Session,
    session: ConversationSession,
    identity: ChannelIdentity,
    event: SubmissionCompleted,
    now: datetime,
    sinks: Sequence[str],
) -> None:
    db.flush()  # the session (a new one too) and its alerts are rows before the submission
    center_id = (
        db.scalar(_CENTER_OF, {"patient_id": session.patient_id}) if session.patient_id else None
    )
    if center_id is None:
        log.error("submission.without_patient", extra={"session_id": str(session.id)})
        return
    submission_id = uuid.uuid4()
    # Core inserts: one statement each, none of the unit of work's bookkeeping per object.
    db.execute(
        _INSERT_SUBMISSION,
        {
            "id": submission_id,
            "patient_id": session.patient_id,
            "center_id": center_id,
            "reporter_contact_id": session.contact_id,
            "session_id": session.id,
            "flow_id": session.flow_id,
            "flow_version": session.flow_version,
            "channel": identity.channel,
            "status": SubmissionStatus(event.status),
            "answers": event.answers,
            "scores": event.scores,
            "bands": event.bands,
            "started_at": session.started_at,
            "authored_at": now,
        },
    )
    # Alerts this session raised point at their submission.
    db.execute(
        update(Alert).where(Alert.session_id == session.id).values(submission_id=submission_id)
    )
    queue_deliveries(db, submission_id=submission_id, now=now, sinks=sinks)
    log.info(
        "submission.recorded", extra={"submission_id": str(submission_id), "status": event.status}
    )


_CENTER_OF = select(Patient.center_id).where(Patient.id == bindparam("patient_id"))
_INSERT_SUBMISSION = insert(cast(Table, Submission.__table__))


def _consents(
    db: Session, session: ConversationSession, event: SubmissionCompleted, now: datetime
) -> None:
    for purpose in Purpose:
        answer = event.answers.get(purpose.value)
        if answer is None or not isinstance(answer.get("value"), bool):
            continue
        consent = db.scalar(
            select(Consent).where(
                Consent.contact_id == session.contact_id, Consent.purpose == purpose
            )
        )
        if consent is None:
            consent = Consent(contact_id=session.contact_id, purpose=purpose)
            db.add(consent)
        consent.granted = answer["value"]
        consent.source = "consent_flow"
        consent.updated_at = now


def _visit_answer(
    db: Session, session: ConversationSession, event: SubmissionCompleted, now: datetime
) -> None:
    # Imported here: visits imports this module (DUE_WITHIN) at its top.
    from c3n_bot.service import visits

    appointment_id = session.state.get("values", {}).get("appointment_id")
    answer = (event.answers.get("attendance") or {}).get("code")
    appointment = db.get(Appointment, uuid.UUID(appointment_id)) if appointment_id else None
    closed = (AppointmentStatus.CANCELLED, AppointmentStatus.COMPLETED)
    if appointment is None or answer is None or appointment.status in closed:
        return  # a visit cancelled or held since the reminder went keeps its status
    if answer == "confirm":
        visits.confirm(db, appointment=appointment, now=now)
    else:
        # A care-team task; the visit's reminders stay until staff move or cancel it.
        visits.request_reschedule(db, appointment=appointment, session_id=session.id, now=now)


def _rsvp(
    db: Session, session: ConversationSession, event: SubmissionCompleted, now: datetime
) -> None:
    # Imported here: attendance reaches sessions, which imports this module at its top.
    from c3n_bot.service import attendance

    activity_id = session.state.get("values", {}).get("activity_id")
    answer = (event.answers.get("rsvp") or {}).get("code")
    if not activity_id or answer is None:
        return
    # Places, the waitlist and its promotion live with the activity's other rules.
    attendance.record_answer(
        db,
        activity_id=uuid.UUID(activity_id),
        contact_id=session.contact_id,
        answer=RsvpResponse(answer),
        now=now,
    )
