"""Which strings of a flow a person reads, for translation catalogs and checks."""

from __future__ import annotations

from collections.abc import Iterator

from c3n_bot.engine.definitions import Flow


def flow_texts(flow: Flow) -> Iterator[str]:
    """Every patient-facing English source string of a flow (staff-only titles excluded)."""
    for text in (flow.intro, flow.proxy_intro, flow.outro, flow.result_message):
        if text:
            yield text
    for item in flow.items:
        yield item.text
        for extra in (item.proxy_text, item.help):
            if extra:
                yield extra
        for option in item.options:
            yield option.text
            yield from option.aliases
    for score in flow.scores:
        for band in score.bands:
            yield band.label
    for rule in flow.alerts:
        if rule.message:
            yield rule.message
