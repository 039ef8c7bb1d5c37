"""What messages say about an activity: its placeholders in each family's language and time."""

from __future__ import annotations

from babel.dates import format_date, format_time

from c3n_bot.service import timing
from c3n_bot.store.models import Activity


def when_text(activity: Activity, *, lang: str, tz: str) -> str:
    """The start as a family reads it: their language, their timezone, the zone's abbreviation."""
    local = timing.as_utc(activity.starts_at).astimezone(timing.load_zone(tz))
    day = format_date(local, "full", locale=lang)
    return f"{day}, {format_time(local, 'short', locale=lang)} {local:%Z}"


def values_for(activity: Activity, *, lang: str, tz: str) -> dict[str, str]:
    """The activity's placeholders for broadcasts, reminders and the invitation flow."""
    return {
        "activity_id": str(activity.id),
        "activity_title": activity.title,
        "activity_time": when_text(activity, lang=lang, tz=tz),
        "activity_place": activity.place or activity.video_url or "",
        "activity_link": activity.video_url or "",
    }
