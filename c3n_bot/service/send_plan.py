"""What sending one broadcast needs, prepared once: compiled templates, values, channels."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import Template
from sqlalchemy.orm import Session

from c3n_bot.engine.events import MessageOut
from c3n_bot.service import outbox, texts
from c3n_bot.service.activity_values import values_for
from c3n_bot.service.context import Services
from c3n_bot.service.message_templates import compile_template, render
from c3n_bot.service.reach import Identity
from c3n_bot.service.segments import Segment
from c3n_bot.store.base import Channel, Purpose
from c3n_bot.store.models import Activity, Broadcast, Network
from c3n_bot.store.models.community import BroadcastKind

SOURCE_LANGUAGE = "en"


def first_name(display_name: str) -> str:
    """What a message calls a family member: the first word of the name they gave."""
    words = display_name.split()
    return words[0] if words else ""


def for_channel(body: str, channel: Channel, lang: str, services: Services) -> str:
    """A broadcast's text as it goes on a channel: an SMS says how to unsubscribe."""
    if channel != Channel.SMS:
        return body
    return f"{body}\n{services.translate(lang, texts.HELP_IN_FLOW)}"


@dataclass
class SendPlan:
    """One broadcast, ready to turn members into rows."""

    broadcast: Broadcast
    segment: Segment
    channels: frozenset[Channel]
    program: str
    templates: dict[str, Template]
    services: Services
    activity: Activity | None = None
    key_prefix: str = ""
    _values: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, db: Session, broadcast: Broadcast, services: Services) -> SendPlan:
        """Compile the templates and read the network and activity once."""
        activity = db.get(Activity, broadcast.activity_id) if broadcast.activity_id else None
        network = db.get(Network, broadcast.network_id)
        with_activity = activity is not None
        return cls(
            broadcast=broadcast,
            segment=Segment.model_validate(broadcast.segment),
            channels=services.channels,
            program=network.name if network else "",
            templates={
                lang: compile_template(source, with_activity=with_activity)
                for lang, source in broadcast.templates.items()
            },
            services=services,
            activity=activity,
            key_prefix=f"broadcast:{broadcast.id}:",
        )

    @property
    def broadcast_id(self) -> uuid.UUID:
        """The broadcast's id."""
        return self.broadcast.id

    @property
    def kind(self) -> BroadcastKind:
        """Message or invitation."""
        return self.broadcast.kind

    @property
    def purpose(self) -> Purpose:
        """The consent a member must have granted."""
        return Purpose(self.broadcast.purpose)

    def dedupe_key(self, contact_id: uuid.UUID) -> str:
        """One message (or invitation) per broadcast and contact, however often it is retried."""
        return f"{self.key_prefix}{contact_id}"

    def activity_values(self, lang: str, tz: str) -> dict[str, str]:
        """The activity's placeholders for one language and timezone (computed once each)."""
        if self.activity is None:
            return {}
        key = (lang, tz)
        if key not in self._values:
            self._values[key] = values_for(self.activity, lang=lang, tz=tz)
        return self._values[key]

    def text(self, lang: str, values: dict[str, str], channel: Channel) -> str:
        """The message in the family's language (else English, else the first written); SMS
        adds how to unsubscribe."""
        used = lang if lang in self.templates else SOURCE_LANGUAGE
        if used not in self.templates:
            used = next(iter(self.templates))
        return for_channel(render(self.templates[used], values), channel, used, self.services)

    def message_row(
        self, member: Any, identity: Identity, when: datetime, now: datetime
    ) -> dict[str, Any]:
        """The outbox row of one member's message."""
        values = {
            "first_name": first_name(member.display_name),
            "program": self.program,
            "center": member.center_name,
            **self.activity_values(member.language, member.timezone),
        }
        body = self.text(member.language, values, identity.channel)
        return outbox.message_row(
            channel=identity.channel,
            address=identity.address,
            identity_id=identity.id,
            contact_id=member.contact_id,
            message=MessageOut(text=body),
            kind="broadcast",
            now=now,
            not_before=when,
            dedupe_key=self.dedupe_key(member.contact_id),
        )

    def count(self, outcomes: Counter[str]) -> None:
        """Add a batch's outcomes to the broadcast's counts."""
        counts = Counter(self.broadcast.counts or {})
        counts.update(outcomes)
        self.broadcast.counts = dict(counts)
