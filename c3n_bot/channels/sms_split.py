"""Splitting a long SMS body into separate messages that each stay within the cost budget.

Carriers bill, and some handsets show, a concatenated SMS segment by segment; past a few
segments delivery also gets less reliable. A body over budget is therefore sent as several
SMS, cut where a reader expects a break: between lines, or, for one very long line, between
words. The budget depends on the part's own encoding: 2 segments of GSM-7 (306 septets) or
3 of UCS-2 (201 units), which is about the same number of bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from c3n_bot.channels.sms_encoding import GSM7, Encoding, segments

BUDGET: Final[dict[Encoding, int]] = {GSM7: 2, "UCS-2": 3}
"""Segments one SMS part may use, by its encoding."""


def fits(text: str) -> bool:
    """Whether `text` travels as one SMS within the segment budget of its encoding."""
    info = segments(text)
    return info.segments <= BUDGET[info.encoding]


def split_for_sms(text: str) -> list[str]:
    """`text` as one or more SMS parts, each within budget, cut at line (else word) breaks.

    Greedy: each part takes as many whole lines as fit, so the number of parts is the least
    possible for a split at line breaks. Blank lines at a cut are dropped. A text that fits
    comes back unchanged, as the only part.
    """
    if fits(text):
        return [text]
    parts: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if fits("\n".join([*current, line])):
            current.append(line)
            continue
        _flush(parts, current)
        if fits(line):
            current = [line]
            continue
        *whole, last = _split_line(line)
        parts.extend(whole)
        current = [last]
    _flush(parts, current)
    return parts or [text]


def _flush(parts: list[str], lines: list[str]) -> None:
    part = "\n".join(lines).strip("\n")
    if part.strip():
        parts.append(part)


def _split_line(line: str) -> list[str]:
    """One line over budget, greedily at spaces (a word over budget is cut anywhere)."""
    chunks: list[str] = []
    current = ""
    for word in _words(line):
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = word
    chunks.append(current)
    return chunks


def _words(line: str) -> Iterator[str]:
    for word in line.split():
        if fits(word):
            yield word
        else:
            yield from _cut(word)


def _cut(word: str) -> Iterator[str]:
    # No space to cut at (a URL, a long number): the largest prefixes that fit.
    while word:
        low, high = 1, len(word)  # the longest prefix that fits lies in [low, high]
        while low < high:
            middle = (low + high + 1) // 2
            if fits(word[:middle]):
                low = middle
            else:
                high = middle - 1
        yield word[:low]
        word = word[low:]
