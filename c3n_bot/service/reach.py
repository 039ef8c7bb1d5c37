"""Where and when a community message reaches a family: a live channel, outside quiet hours."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service.quiet_hours import QuietHours, defer_for_quiet_hours
from c3n_bot.service.sessions import CHANNEL_PREFERENCE
from c3n_bot.store.base import Channel
from c3n_bot.store.models import Center, ChannelIdentity, Contact, ContactPatient, Patient
from c3n_bot.store.models.community import RecipientOutcome


class Identity(Protocol):
    """A channel identity as a row or a model object."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def address(self) -> str: ...
    @property
    def stopped_at(self) -> datetime | None: ...


def choose(
    identities: Iterable[Identity], available: Collection[Channel]
) -> tuple[Identity | None, RecipientOutcome | None]:
    """The identity to write to, or why there is none: no channel here, or every one stopped.

    A STOP on one channel leaves the others usable; the order is the sessions' preference.
    """
    usable = [i for i in identities if i.channel in available]
    if not usable:
        return None, RecipientOutcome.NO_CHANNEL
    live = [i for i in usable if i.stopped_at is None]
    if not live:
        return None, RecipientOutcome.STOPPED
    return min(live, key=lambda i: CHANNEL_PREFERENCE.index(i.channel)), None


def send_time(now: datetime, tz: str, start: str, end: str) -> datetime:
    """`now`, or the end of the family's quiet hours when now is inside them."""
    return _deferred(now, tz, start, end)


@lru_cache(maxsize=4096)
def _deferred(now: datetime, tz: str, start: str, end: str) -> datetime:
    # A broadcast asks this for every recipient at one `now`: families share a few answers.
    return defer_for_quiet_hours(now, tz, QuietHours.parse(start, end))[0]


def quiet_window(
    own_start: str | None, own_end: str | None, center_start: str, center_end: str
) -> tuple[str, str]:
    """The family's own quiet hours, else their center's."""
    return own_start or center_start, own_end or center_end


def contact_center(db: Session, contact_id: uuid.UUID) -> Center | None:
    """The center of a patient the contact reports for (the eldest's, for a steady answer)."""
    return db.scalar(
        select(Center)
        .join(Patient, Patient.center_id == Center.id)
        .join(ContactPatient, ContactPatient.patient_id == Patient.id)
        .where(ContactPatient.contact_id == contact_id)
        .order_by(Patient.birth_date, Patient.id)
        .limit(1)
    )


def reach_contact(
    db: Session, contact: Contact, now: datetime, available: Collection[Channel] = tuple(Channel)
) -> tuple[ChannelIdentity, datetime] | None:
    """A contact's identity and the time a message to them may leave; None if unreachable."""
    identity, _why = choose(contact.identities, available)
    center = contact_center(db, contact.id)
    if identity is None or center is None:
        return None
    assert isinstance(identity, ChannelIdentity)
    start, end = quiet_window(
        contact.quiet_hours_start,
        contact.quiet_hours_end,
        center.quiet_hours_start,
        center.quiet_hours_end,
    )
    return identity, send_time(now, contact.timezone, start, end)
