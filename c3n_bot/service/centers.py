"""Care centers as an admin edits them: name, timezone, crisis resources and the on-call contact.

The on-call contact is who escalation pages when an urgent alert is not acknowledged in time:
an SMS number (E.164) or a Telegram chat id, and the language its messages are written in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.service import audit, schedules, validation
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.store.base import Channel
from c3n_bot.store.models import Center, StaffUser

ON_CALL_CHANNELS = (Channel.SMS, Channel.TELEGRAM)
MAX_CRISIS_TEXT = 1000
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CHAT_ID = re.compile(r"^-?\d{1,20}$")


@dataclass(frozen=True)
class CenterFields:
    """What an admin sets on a center."""

    name: str
    timezone: str
    # Per language code; an empty text removes the language.
    crisis_resources: dict[str, str]
    on_call_channel: Channel | None = None
    on_call_address: str | None = None
    on_call_language: str = SUPPORTED_LANGUAGES[0]

    def checked(self) -> CenterFields:
        """The same fields normalised, or InvalidInput naming the first wrong one."""
        name = self.name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput("name", "must be 1 to 200 characters")
        tz = _valid("timezone", validation.timezone, self.timezone.strip())
        lang = _valid("on_call_language", validation.language, self.on_call_language)
        crisis = {k: v.strip() for k, v in self.crisis_resources.items() if v.strip()}
        if any(k not in SUPPORTED_LANGUAGES for k in crisis):
            raise InvalidInput("crisis_resources", "unsupported language")
        if any(len(v) > MAX_CRISIS_TEXT for v in crisis.values()):
            raise InvalidInput("crisis_resources", f"at most {MAX_CRISIS_TEXT} characters")
        channel, address = _on_call(self.on_call_channel, self.on_call_address)
        return CenterFields(name, tz, crisis, channel, address, lang)


def _valid(field: str, check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


def _on_call(channel: Channel | None, address: str | None) -> tuple[Channel | None, str | None]:
    address = (address or "").strip() or None
    if channel is None or address is None:
        if channel is not None or address is not None:
            raise InvalidInput("on_call_address", "give both the channel and the address")
        return None, None
    if channel == Channel.SMS:
        return channel, _valid("on_call_address", validation.e164, address)
    if channel == Channel.TELEGRAM and _CHAT_ID.match(address):
        return channel, address
    if channel == Channel.TELEGRAM:
        raise InvalidInput("on_call_address", "a Telegram chat id is a number")
    raise InvalidInput("on_call_channel", "must be sms or telegram")


def centers(db: Session, *, allowed: set[uuid.UUID]) -> Sequence[Center]:
    """The admin's centers, by name."""
    query = select(Center).where(Center.id.in_(allowed)).order_by(Center.name, Center.slug)
    return db.scalars(query).all()


def update_center(
    db: Session,
    *,
    center_id: uuid.UUID,
    fields: CenterFields,
    allowed: set[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> Center:
    """Save a center's fields; NotFound outside the admin's centers."""
    center = db.get(Center, center_id)
    if center is None or center.id not in allowed:
        raise NotFound("center")
    _apply(center, fields.checked())
    _audit(db, actor, "center.update", center, now)
    return center


def create_center(
    db: Session,
    *,
    network_id: uuid.UUID,
    slug: str,
    fields: CenterFields,
    admin: StaffUser,
    actor: audit.Actor,
    now: datetime,
) -> Center:
    """A new center in one of the admin's networks, granted to the admin, with default schedules."""
    if network_id not in {center.network_id for center in admin.centers}:
        raise InvalidInput("network", "not a network of your centers")
    slug = slug.strip().lower()
    if not _SLUG.match(slug):
        raise InvalidInput("slug", "lowercase letters, digits and dashes, at most 64")
    taken = select(Center.id).where(Center.network_id == network_id, Center.slug == slug)
    if db.scalar(taken) is not None:
        raise Conflict(f"a center with the slug {slug} exists in the network")
    center = Center(network_id=network_id, slug=slug, created_at=now)
    _apply(center, fields.checked())
    db.add(center)
    db.flush()
    admin.centers.append(center)
    schedules.ensure_center_defaults(db, center_id=center.id, now=now)
    _audit(db, actor, "center.create", center, now)
    return center


def _apply(center: Center, fields: CenterFields) -> None:
    center.name = fields.name
    center.timezone = fields.timezone
    center.crisis_resources = fields.crisis_resources
    center.on_call_channel = fields.on_call_channel
    center.on_call_address = fields.on_call_address
    center.on_call_language = fields.on_call_language


def _audit(db: Session, actor: audit.Actor, action: str, center: Center, now: datetime) -> None:
    # The on-call address is a phone number or a chat id: audited as set or not, never itself.
    detail = {
        "name": center.name,
        "timezone": center.timezone,
        "crisis_languages": sorted(center.crisis_resources),
        "on_call": center.on_call_channel.value if center.on_call_channel else None,
    }
    audit.record(
        db,
        actor=actor,
        action=action,
        center_id=center.id,
        subject=center.slug,
        now=now,
        detail=detail,
    )
