"""A patient's instrument trend as an SVG chart with the score's bands shaded, and its table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from c3n_bot.engine.definitions import Score
from c3n_bot.engine.messages import N_
from c3n_bot.service import timing
from c3n_bot.service.patient_timeline import Trend
from c3n_bot.web.charts import Band, data_table, line_chart

DATE = N_("Date")
SCORE = N_("Score")
# The shade of a band, by the band codes the shipped flows use; others are neutral.
TONES = {
    "minimal": "ok",
    "remission": "ok",
    "mild": "mild",
    "moderate": "moderate",
    "moderately_severe": "severe",
    "severe": "severe",
}


@dataclass(frozen=True)
class TrendChart:
    """What the page shows for one instrument."""

    flow_id: str
    title: str
    svg: Markup
    table: Markup


def trend_chart(trend: Trend, tz: str, translate: Callable[[str], str]) -> TrendChart:
    """The chart of a trend, dates in the patient's timezone, band labels in the viewer's."""
    zone = timing.load_zone(tz)
    points = [(at.astimezone(zone).date().isoformat(), value) for at, value in trend.points]
    highest = max(value for _, value in points) if points else 0.0
    bands = shaded_bands(trend.score, translate, highest)
    top = max([band.high for band in bands] + [highest, 1.0])
    svg = line_chart(
        points,
        y_min=0,
        y_max=top,
        bands=bands,
        title=trend.flow.title,
        y_label=trend.score.label,
    )
    table = data_table(
        points, caption=trend.score.label, x_label=translate(DATE), y_label=translate(SCORE)
    )
    return TrendChart(trend.flow.id, trend.flow.title, svg, table)


def shaded_bands(score: Score, translate: Callable[[str], str], highest: float) -> list[Band]:
    """The score's bands as shaded ranges; a band reaches up to where the next one starts (an
    open-ended top band, to the highest value shown)."""
    ordered = sorted(score.bands, key=lambda band: band.min)
    shaded = []
    for index, band in enumerate(ordered):
        following = ordered[index + 1].min if index + 1 < len(ordered) else None
        high = following if following is not None else band.max
        if high is None:
            high = max(highest, band.min + 1)
        tone = TONES.get(band.code, "neutral")
        shaded.append(Band(low=band.min, high=high, label=translate(band.label), tone=tone))
    return shaded
