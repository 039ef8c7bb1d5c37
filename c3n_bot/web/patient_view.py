"""A chart's reports as the page shows them: each report's markup joined once in Python.

A chart lists up to fifty reports of a dozen answers each; a Jinja expression per answer cost
more than the query that read them, so each report is one escaped string here (as `charts`
builds its SVG, and `inbox_view` formats the inbox's rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup

from c3n_bot.engine.messages import N_
from c3n_bot.service import timing
from c3n_bot.service.patient_timeline import TimelineEntry
from c3n_bot.web.html_text import html_text
from c3n_bot.web.templating import wall_time

STATUS_WORDS = {"completed": N_("completed"), "partial": N_("partial"), "stopped": N_("stopped")}
CORRECTED = N_("corrected")
NO_ANSWERS = N_("No answers.")


def report_lines(
    timeline: Sequence[TimelineEntry], tz: str, translate: Callable[[str], str]
) -> list[Markup]:
    """Each report's summary (time in the patient's timezone, title, status, scores) and its
    answers, in the viewer's language, every text escaped."""
    # The same questions, answer options and labels recur from report to report: each is
    # escaped once (for this page only), and kept as a plain str for cheap formatting.
    escaped: dict[str, str] = {}

    def esc(text: str) -> str:
        shown = escaped[text] = html_text(text)
        return shown

    statuses = {code: esc(translate(word)) for code, word in STATUS_WORDS.items()}
    corrected = f" · {esc(translate(CORRECTED))}"
    no_answers = f"<dt>{esc(translate(NO_ANSWERS))}</dt>"
    zone = timing.load_zone(tz)
    lines = []
    for entry in timeline:
        at = entry.authored_at
        status = entry.status.value
        parts = [
            f'  <summary>\n    <time datetime="{at.isoformat()}">'  # escaped by construction
            f"{html_text(wall_time(at, zone))}</time>\n"
            f"    · {escaped.get(entry.title) or esc(entry.title)}"
            f" · {statuses.get(status) or esc(status)}\n    "
        ]
        for score in entry.scores:
            label = escaped.get(score.label) or esc(score.label)
            parts.append(f" · {label}: <strong>{html_text(str(score.value))}</strong>")
            if score.band:
                parts.append(f" ({escaped.get(score.band) or esc(score.band)})")
        parts.append(f"\n    {corrected if entry.version > 1 else ''}\n  </summary>\n")
        parts.append('  <dl class="answers">\n  ')
        for line in entry.answers:
            question = escaped.get(line.question) or esc(line.question)
            answer = escaped.get(line.answer) or esc(line.answer)
            parts.append(f"<dt>{question}</dt><dd>{answer}</dd>")
        if not entry.answers:
            parts.append(no_answers)
        parts.append("\n  </dl>")
        lines.append(Markup("".join(parts)))
    return lines
