"""The clock's second step: due work becomes a started flow, or waits, with a reason."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from c3n_bot.service import sessions, timing
from c3n_bot.service.context import Services
from c3n_bot.service.quiet_hours import QuietHours
from c3n_bot.store.base import Purpose, Relationship
from c3n_bot.store.models import Consent, Contact, ContactPatient, DueWork, Patient
from c3n_bot.store.models.scheduling import DueStatus

log = logging.getLogger(__name__)

GRACE = timedelta(hours=6)
WAIT_FOR_SESSION = timedelta(minutes=5)
PURPOSE = {
    "prompt": Purpose.PRO_REPORTS,
    "visit_reminder": Purpose.VISIT_REMINDERS,
    "pre_visit": Purpose.PRO_REPORTS,
    "invitation": Purpose.CODESIGN_INVITATIONS,
}
CAPPED = ("prompt", "pre_visit", "visit_reminder")
OPEN = (DueStatus.PENDING, DueStatus.DEFERRED)


def run_due(
    db: Session, now: datetime, services: Services, *, batch: int = 500, grace: timedelta = GRACE
) -> int:
    """Clock task: act on every due row (most urgent first); returns how many were settled."""
    rows = db.scalars(
        select(DueWork)
        .where(DueWork.status.in_(OPEN), DueWork.due_at <= now, DueWork.kind != "flow")
        .order_by(DueWork.priority.desc(), DueWork.due_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    settled = 0
    for work in rows:
        settled += _handle(db, work, services, now, grace)
    return settled


def _handle(db: Session, work: DueWork, services: Services, now: datetime, grace: timedelta) -> int:
    if timing.catch_up(work.due_at, now, grace) == "missed":
        return _close(work, DueStatus.MISSED, "missed: the service was down past the grace", now)
    patient = db.get(Patient, work.patient_id)
    contact = reporter(db, work, patient)
    refused = refusal(db, work, patient, contact, now)
    if refused is not None or patient is None or contact is None:
        return _close(
            work, DueStatus.CANCELLED, refused or "no contact reports for the patient", now
        )
    when, reason = _respectful_time(db, work, contact, patient, now)
    if when > now:
        return _wait(work, when, reason)
    if sessions.active_session(db, contact.id) is not None:
        return _wait(work, now + WAIT_FOR_SESSION, "waiting for the family's active conversation")
    try:
        identity = sessions.preferred_identity(db, contact, available=services.channels)
        started = sessions.start(
            db,
            contact=contact,
            identity=identity,
            flow=services.flows.get(work.flow_id),
            patient_id=patient.id,
            trigger="scheduled",
            services=services,
            now=now,
            values=dict(work.detail.get("values", {})),
        )
    except sessions.StartError as exc:
        return _close(work, DueStatus.CANCELLED, str(exc), now)
    except KeyError:
        # The flow was removed from this deployment: this slot can never be sent.
        return _close(work, DueStatus.CANCELLED, f"unknown flow {work.flow_id}", now)
    work.session_id = started.session_id
    return _close(work, DueStatus.DONE, None, now)


def reporter(db: Session, work: DueWork, patient: Patient | None) -> Contact | None:
    """Who answers for the patient: the named contact, the patient themself, else a parent."""
    if work.contact_id is not None:
        return db.get(Contact, work.contact_id)
    if patient is None:
        return None
    links = db.scalars(select(ContactPatient).where(ContactPatient.patient_id == patient.id)).all()
    # The patient answers for themself when they can; otherwise a parent or guardian.
    links = sorted(links, key=lambda link: link.relation != Relationship.SELF)
    return links[0].contact if links else None


def refusal(
    db: Session, work: DueWork, patient: Patient | None, contact: Contact | None, now: datetime
) -> str | None:
    """Why this work must not go at all (paused, too young, no consent, stopped), or None."""
    if patient is None or contact is None:
        return "no contact reports for the patient"
    if patient.schedules_paused and work.kind != "visit_reminder":
        return "the patient's schedules are paused"
    min_age = work.detail.get("min_age")
    local_day = now.astimezone(timing.load_zone(patient.timezone)).date()
    if min_age and not timing.due_by_age(patient.birth_date, local_day, int(min_age)):
        return f"the patient is younger than {min_age}"
    purpose = PURPOSE.get(work.kind)
    if purpose is not None and not _consented(db, contact.id, purpose):
        return f"no consent for {purpose.value}"
    if not services_reachable(contact):
        return "the family has no reachable channel (stopped)"
    return None


def services_reachable(contact: Contact) -> bool:
    """Whether any of the contact's channels is not stopped."""
    return any(identity.stopped_at is None for identity in contact.identities)


def _consented(db: Session, contact_id: uuid.UUID, purpose: Purpose) -> bool:
    granted = db.scalar(
        select(Consent.granted).where(Consent.contact_id == contact_id, Consent.purpose == purpose)
    )
    return bool(granted)


def quiet_hours_of(contact: Contact, patient: Patient) -> QuietHours:
    """The family's quiet hours: their own, else their center's."""
    center = patient.center
    start = contact.quiet_hours_start or center.quiet_hours_start
    end = contact.quiet_hours_end or center.quiet_hours_end
    return QuietHours.parse(start, end)


def _respectful_time(
    db: Session, work: DueWork, contact: Contact, patient: Patient, now: datetime
) -> tuple[datetime, str | None]:
    quiet = quiet_hours_of(contact, patient)
    when, reason = timing.defer_for_quiet_hours(now, contact.timezone, quiet)
    if work.kind not in CAPPED:
        return when, reason
    cap = contact.daily_prompt_cap or patient.center.daily_prompt_cap
    sent = sent_recently(db, contact.id, now)
    capped, cap_reason = timing.defer_for_cap(when, contact.timezone, sent, cap, quiet)
    reasons = "; ".join(r for r in (reason, cap_reason) if r) or None
    return capped, reasons


def sent_recently(db: Session, contact_id: uuid.UUID, now: datetime) -> list[datetime]:
    """When the family's capped prompts went out over the last two days (for the cap)."""
    rows = db.scalars(
        select(DueWork.done_at).where(
            DueWork.status == DueStatus.DONE,
            DueWork.kind.in_(CAPPED),
            DueWork.done_at > now - timedelta(days=2),
            or_(DueWork.contact_id == contact_id, DueWork.contact_id.is_(None)),
            DueWork.patient_id.in_(
                select(ContactPatient.patient_id).where(ContactPatient.contact_id == contact_id)
            ),
        )
    ).all()
    return [at for at in rows if at is not None]


def _wait(work: DueWork, until: datetime, reason: str | None) -> int:
    work.status = DueStatus.DEFERRED
    work.due_at = until
    work.reason = reason
    return 0


def _close(work: DueWork, status: DueStatus, reason: str | None, now: datetime) -> int:
    work.status = status
    work.reason = reason
    work.done_at = now
    log.info("due.settled", extra={"due_id": str(work.id), "status": status.value})
    return 1


def pending_count(db: Session) -> int:
    """Due work still waiting (for metrics)."""
    return db.scalar(select(func.count()).select_from(DueWork).where(DueWork.status.in_(OPEN))) or 0
