"""A broadcast preview as each channel carries it: the chat text, and SMS with its cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from c3n_bot.channels.sms_encoding import GSM7, UCS2, segments, sms_body
from c3n_bot.channels.sms_split import split_for_sms
from c3n_bot.channels.text import render_text
from c3n_bot.engine.events import MessageOut
from c3n_bot.service.broadcast_preview import LanguagePreview
from c3n_bot.service.outbox import payload


@dataclass(frozen=True)
class ShownLanguage:
    """One language of a preview: what a chat shows, what SMS sends and what it costs."""

    lang: str
    text: str | None
    sms_text: str | None
    sms_encoding: str | None
    sms_segments: int
    sms_messages: int
    error: str | None


def shown(preview: LanguagePreview) -> ShownLanguage:
    """The preview of one language with its SMS segment count (all parts, all messages)."""
    if preview.error is not None:
        return ShownLanguage(preview.lang, None, None, None, 0, 0, preview.error)
    parts = [part for message in preview.sms for part in _sms_parts(message)]
    infos = [segments(part) for part in parts]
    return ShownLanguage(
        lang=preview.lang,
        text="\n\n".join(message.text for message in preview.chat),
        sms_text="\n\n".join(parts),
        sms_encoding=UCS2 if any(i.encoding == UCS2 for i in infos) else GSM7,
        sms_segments=sum(i.segments for i in infos),
        sms_messages=len(parts),
        error=None,
    )


def shown_all(previews: Sequence[LanguagePreview]) -> list[ShownLanguage]:
    """Every language of a preview."""
    return [shown(p) for p in previews]


def _sms_parts(message: MessageOut) -> list[str]:
    # As TwilioSender sends it: options rendered, punctuation made GSM-7, split over budget.
    return split_for_sms(sms_body(render_text(message.text, payload(message))))
