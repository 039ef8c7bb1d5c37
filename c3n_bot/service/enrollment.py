"""Invitations: a Telegram deep-link token and an SMS join code, single-use and expiring."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import audit
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.store.base import Channel
from c3n_bot.store.models import ChannelIdentity, Consent, ContactPatient, Enrollment

INVITATION_TTL = timedelta(days=14)
# No 0/O or 1/I/L: codes are read aloud and typed on phones.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
_START = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_-]{1,64})\s*$")
_JOIN = re.compile(r"^\s*(?:JOIN|UNIRSE|UNIR)\s+([A-Za-z0-9-]{4,16})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Invitation:
    """What a care team hands to a family."""

    enrollment: Enrollment
    telegram_link: str | None


class Redemption:
    """Outcomes of a code or token sent by a person."""

    ENROLLED = "enrolled"
    ALREADY = "already_enrolled"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    TAKEN = "address_taken"


def create_invitation(
    db: Session,
    *,
    patient_id: uuid.UUID,
    contact_id: uuid.UUID,
    allowed_centers: set[uuid.UUID],
    now: datetime,
    bot_username: str | None = None,
    created_by: uuid.UUID | None = None,
) -> Invitation:
    """Create a single-use invitation for a contact of a patient."""
    link = db.scalar(
        select(ContactPatient).where(
            ContactPatient.patient_id == patient_id, ContactPatient.contact_id == contact_id
        )
    )
    if link is None or link.patient.center_id not in allowed_centers:
        raise NotFound("patient or contact")
    enrollment = Enrollment(
        patient_id=patient_id,
        contact_id=contact_id,
        token=secrets.token_urlsafe(24),
        sms_code="".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)),
        created_by=created_by,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    db.add(enrollment)
    db.flush()
    telegram = f"https://t.me/{bot_username}?start={enrollment.token}" if bot_username else None
    return Invitation(enrollment=enrollment, telegram_link=telegram)


def requested_code(channel: Channel, text: str) -> str | None:
    """The token of `/start <token>` (Telegram) or the code of `JOIN <code>` (SMS), if any."""
    if channel == Channel.TELEGRAM:
        found = _START.match(text.strip())
        return found.group(1) if found else None
    found = _JOIN.match(text)
    return found.group(1).upper().replace("-", "") if found else None


def redeem(
    db: Session, *, channel: Channel, address: str, code: str, now: datetime
) -> tuple[str, ChannelIdentity | None]:
    """Link the sender's address to the invited contact; the outcome and the identity."""
    column = Enrollment.token if channel == Channel.TELEGRAM else Enrollment.sms_code
    enrollment = db.scalar(select(Enrollment).where(column == code).with_for_update())
    existing = db.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.address == address
        )
    )
    if enrollment is None:
        return Redemption.UNKNOWN, existing
    if existing is not None and existing.contact_id == enrollment.contact_id:
        return Redemption.ALREADY, existing
    if enrollment.used_at is not None:
        return Redemption.USED, existing
    if enrollment.expires_at <= now:
        return Redemption.EXPIRED, existing
    if existing is not None:
        return Redemption.TAKEN, existing
    identity = ChannelIdentity(
        contact_id=enrollment.contact_id, channel=channel, address=address, created_at=now
    )
    db.add(identity)
    db.flush()
    enrollment.used_at = now
    enrollment.used_by_identity_id = identity.id
    actor = audit.Actor(type="contact", id=str(enrollment.contact_id))
    audit.record(
        db,
        actor=actor,
        action="enrollment.redeem",
        patient_id=enrollment.patient_id,
        subject=str(identity.id),
        now=now,
        detail={"channel": channel.value},
    )
    return Redemption.ENROLLED, identity


def needs_consent(db: Session, contact_id: uuid.UUID) -> bool:
    """First contact: no consent was ever recorded for this contact."""
    return db.scalar(select(Consent.id).where(Consent.contact_id == contact_id).limit(1)) is None


def validate_code(code: str) -> str:
    """A join code as typed (any case, dashes allowed), normalised."""
    cleaned = code.upper().replace("-", "")
    if not cleaned or any(ch not in CODE_ALPHABET for ch in cleaned):
        raise InvalidInput("code", "not a join code")
    return cleaned
