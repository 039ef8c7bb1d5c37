"""A broadcast before it goes: who it reaches (a count and a few names) and its text per language.

Texts are shown with example values (the first name "Alex", the network and a center of the
segment, the activity in its own timezone), as each channel would carry them; a template
that does not compile or names an unknown variable shows its error instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from c3n_bot.engine import runner
from c3n_bot.engine.events import Context, MessageOut
from c3n_bot.service import message_templates, segments
from c3n_bot.service.activity_values import values_for
from c3n_bot.service.broadcast_send import INVITATION_FLOW
from c3n_bot.service.broadcasts import BroadcastIn, scoped_input
from c3n_bot.service.context import Services
from c3n_bot.service.send_plan import for_channel
from c3n_bot.store.base import Channel
from c3n_bot.store.models import Activity, Center, Network
from c3n_bot.store.models.community import BroadcastKind

EXAMPLE_NAME = "Alex"


@dataclass(frozen=True)
class LanguagePreview:
    """What a family writing in `lang` gets: the messages of a chat channel and of SMS."""

    lang: str
    chat: tuple[MessageOut, ...] = ()
    sms: tuple[MessageOut, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Preview:
    """How many contacts the segment holds, a few of their names, and the texts."""

    count: int
    sample: list[str]
    languages: list[LanguagePreview]


def preview(
    db: Session,
    *,
    data: BroadcastIn,
    allowed: Collection[uuid.UUID],
    services: Services,
    now: datetime,
) -> Preview:
    """Count, sample and texts of a broadcast as written (nothing is saved)."""
    segment, activity, network_id = scoped_input(db, data, allowed)
    network = db.get(Network, network_id)
    center = db.get(Center, segment.centers[0]) if segment.centers else None
    example = {
        "first_name": EXAMPLE_NAME,
        "program": network.name if network else "",
        "center": center.name if center else "",
    }
    if data.kind == BroadcastKind.INVITATION and activity is not None:
        shown = [_invitation(activity, lang, example, services, now) for lang in services.languages]
    else:
        shown = _messages(data.templates, activity, example, services)
    return Preview(
        count=segments.count(db, segment, now=now),
        sample=segments.sample(db, segment, now=now),
        languages=shown,
    )


def _messages(
    templates: dict[str, str],
    activity: Activity | None,
    example: dict[str, str],
    services: Services,
) -> list[LanguagePreview]:
    values = {lang: {**example, **_activity(activity, lang)} for lang in templates}
    rendered = message_templates.preview(templates, values, with_activity=activity is not None)
    return [
        LanguagePreview(r.lang, error=r.error)
        if r.text is None
        else LanguagePreview(
            r.lang,
            chat=(MessageOut(text=r.text),),
            sms=(MessageOut(text=for_channel(r.text, Channel.SMS, r.lang, services)),),
        )
        for r in rendered
    ]


def _invitation(
    activity: Activity, lang: str, example: dict[str, str], services: Services, now: datetime
) -> LanguagePreview:
    # The flow's own first messages, exactly as the engine starts it for a family.
    flow = services.flows.get(INVITATION_FLOW)
    ctx = Context(
        lang=lang,
        translate=services.translator(lang),
        values={**example, **_activity(activity, lang)},
    )
    step = runner.start(flow, ctx, now)
    messages = tuple(e for e in step.events if isinstance(e, MessageOut))
    return LanguagePreview(lang, chat=messages, sms=messages)


def _activity(activity: Activity | None, lang: str) -> dict[str, str]:
    return {} if activity is None else values_for(activity, lang=lang, tz=activity.timezone)
