"""Minimal valid rows for tests: each builder adds one row (and what it needs) and flushes."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from c3n_bot.store.base import Channel, Condition, Relationship
from c3n_bot.store.models import (
    Alert,
    Center,
    ChannelIdentity,
    Contact,
    ContactPatient,
    ConversationSession,
    Network,
    Patient,
    Submission,
)
from c3n_bot.store.models.conversations import SessionStatus, Severity, SubmissionStatus

_serial = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


def make_network(db: Session, *, now: datetime, slug: str | None = None) -> Network:
    """A network with a unique slug."""
    network = Network(
        name="Test Network",
        slug=slug or _unique("network"),
        identifier_system="https://example.org/fhir/patient-id",
        created_at=now,
    )
    db.add(network)
    db.flush()
    return network


def make_center(
    db: Session,
    *,
    now: datetime,
    network: Network | None = None,
    timezone: str = "America/New_York",
) -> Center:
    """A center (in a new network unless one is given)."""
    center = Center(
        network_id=(network or make_network(db, now=now)).id,
        name="Test Center",
        slug=_unique("center"),
        timezone=timezone,
        created_at=now,
    )
    db.add(center)
    db.flush()
    return center


def make_patient(
    db: Session,
    *,
    now: datetime,
    center: Center | None = None,
    condition: Condition = Condition.IBD,
    language: str = "en",
    timezone: str = "America/New_York",
) -> Patient:
    """A patient with a unique external id (in a new center unless one is given)."""
    patient = Patient(
        center_id=(center or make_center(db, now=now)).id,
        external_id=_unique("P"),
        given_name="Sam",
        family_name="Rivera",
        birth_date=date(2012, 5, 17),
        condition=condition,
        language=language,
        timezone=timezone,
        created_at=now,
    )
    db.add(patient)
    db.flush()
    return patient


def make_contact(
    db: Session, *, now: datetime, language: str = "en", timezone: str = "America/New_York"
) -> Contact:
    """A contact with no identities or patients yet."""
    contact = Contact(
        display_name="Alex Rivera", language=language, timezone=timezone, created_at=now
    )
    db.add(contact)
    db.flush()
    return contact


def make_identity(
    db: Session,
    *,
    contact: Contact,
    now: datetime,
    channel: Channel = Channel.TELEGRAM,
    address: str | None = None,
) -> ChannelIdentity:
    """A channel identity of a contact, with a unique address unless one is given."""
    identity = ChannelIdentity(
        contact_id=contact.id,
        channel=channel,
        address=address or str(100_000 + next(_serial)),
        created_at=now,
    )
    db.add(identity)
    db.flush()
    return identity


def link(
    db: Session,
    *,
    contact: Contact,
    patient: Patient,
    relation: Relationship = Relationship.PARENT,
) -> ContactPatient:
    """Let a contact report for a patient."""
    row = ContactPatient(contact_id=contact.id, patient_id=patient.id, relation=relation)
    db.add(row)
    db.flush()
    return row


def new_session(
    *,
    contact: Contact,
    now: datetime,
    status: SessionStatus = SessionStatus.ACTIVE,
    flow_id: str = "checkin",
) -> ConversationSession:
    """An unsaved conversation session of a contact, expiring a day after `now`."""
    return ConversationSession(
        contact_id=contact.id,
        flow_id=flow_id,
        flow_version="1",
        state={},
        status=status,
        trigger="test",
        started_at=now,
        updated_at=now,
        expires_at=now + timedelta(days=1),
        ended_at=None if status == SessionStatus.ACTIVE else now,
    )


def make_submission(
    db: Session,
    *,
    patient: Patient,
    now: datetime,
    reporter: Contact | None = None,
    flow_id: str = "phq9",
    answers: dict[str, Any] | None = None,
    scores: dict[str, Any] | None = None,
    bands: dict[str, Any] | None = None,
    status: SubmissionStatus = SubmissionStatus.COMPLETED,
    channel: Channel = Channel.TELEGRAM,
) -> Submission:
    """A registry submission of a patient, authored at `now` (empty answers unless given)."""
    submission = Submission(
        patient_id=patient.id,
        center_id=patient.center_id,
        reporter_contact_id=reporter.id if reporter else None,
        flow_id=flow_id,
        flow_version="1",
        channel=channel,
        status=status,
        answers=answers or {},
        scores=scores or {},
        bands=bands or {},
        started_at=now - timedelta(minutes=5),
        authored_at=now,
    )
    db.add(submission)
    db.flush()
    return submission


def make_alert(
    db: Session,
    *,
    patient: Patient,
    now: datetime,
    severity: Severity = Severity.URGENT,
    submission: Submission | None = None,
    rule: str = "phq9_item9",
    title: str = "PHQ-9 item 9 above 0",
    due_in: timedelta = timedelta(hours=1),
) -> Alert:
    """An open alert on a patient, raised at `now` and due `due_in` later."""
    alert = Alert(
        submission_id=submission.id if submission else None,
        patient_id=patient.id,
        center_id=patient.center_id,
        rule=rule,
        title=title,
        severity=severity,
        raised_at=now,
        due_by=now + due_in,
    )
    db.add(alert)
    db.flush()
    return alert
