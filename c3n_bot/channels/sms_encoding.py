"""SMS encoding: GSM-7 or UCS-2, segment counts, and a punctuation clean-up for SMS bodies.

An SMS carries 140 bytes: 160 septets of the GSM 03.38 default alphabet (GSM-7), or 70 UTF-16
code units when any character is outside it (UCS-2). A longer message is split into segments
that each lose room to the concatenation header: 153 septets or 67 code units. One smart
quote or emoji therefore turns a 160-character English message into a three-segment one.

`sms_body` is what the SMS channel sends: the text with look-alike punctuation (smart quotes,
dashes, ellipsis, odd spaces) replaced by its GSM-7 equivalent and invisible characters dropped.
Letters are never transliterated (Spanish keeps "á" and goes UCS-2 when it must), and emoji are
left for the caller to decide.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7: Final[Encoding] = "GSM-7"
UCS2: Final[Encoding] = "UCS-2"

# GSM 03.38 default alphabet, in code order 0x00-0x7F (0x1B is the escape to the extension
# table and is not a character of its own).
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_BASIC: Final[frozenset[str]] = frozenset(_BASIC_TABLE) - {"\x1b"}
"""Characters of the default alphabet: one septet each."""

GSM7_EXTENSION: Final[frozenset[str]] = frozenset("\f^{}\\[~]|€")
"""Characters of the extension table: an escape plus a septet, so two septets each."""

SINGLE_LIMIT: Final[dict[Encoding, int]] = {GSM7: 160, UCS2: 70}
"""Units that fit in a message sent as one segment."""

SEGMENT_LIMIT: Final[dict[Encoding, int]] = {GSM7: 153, UCS2: 67}
"""Units per segment of a concatenated message (the rest of each is the UDH)."""


@dataclass(frozen=True)
class SegmentInfo:
    """How a text travels as SMS: its encoding, its length in units, and its segments.

    `units` are septets for GSM-7 (extension characters count 2) and UTF-16 code units for
    UCS-2 (a character outside the BMP, such as most emoji, counts 2).
    """

    encoding: Encoding
    units: int
    segments: int


def is_gsm7(text: str) -> bool:
    """Whether every character is in the GSM-7 default alphabet or its extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def non_gsm7(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    return list(dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION))


def segments(text: str) -> SegmentInfo:
    """The encoding, length and number of segments of `text` sent as one SMS.

    Counted conservatively, as carriers split: neither a GSM-7 escape sequence nor a UTF-16
    surrogate pair is ever cut across two segments, so such a character that would straddle
    a boundary starts the next segment. An empty text is still one (empty) segment.
    """
    encoding: Encoding = GSM7 if is_gsm7(text) else UCS2
    sizes = [_unit_size(c, encoding) for c in text]
    units = sum(sizes)
    if units <= SINGLE_LIMIT[encoding]:
        return SegmentInfo(encoding, units, 1)
    limit = SEGMENT_LIMIT[encoding]
    count, used = 1, 0
    for size in sizes:
        if used + size > limit:
            count, used = count + 1, 0
        used += size
    return SegmentInfo(encoding, units, count)


def _unit_size(char: str, encoding: Encoding) -> int:
    if encoding == GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


# Look-alike punctuation that word processors and phones put into copy, mapped to the GSM-7
# character a reader takes it for. Nothing here is a letter.
_REPLACEMENTS: Final[dict[str, str]] = {
    # single quotes, apostrophes and primes
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark (the "smart" apostrophe)
    "\u201a": "'",  # ‚ single low-9 quotation mark
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    "\u2032": "'",  # ′ prime
    "\u02bc": "'",  # ʼ modifier letter apostrophe (some keyboards' apostrophe)
    "\u00b4": "'",  # ´ acute accent typed as an apostrophe
    "`": "'",  # grave accent typed as an apostrophe (not in GSM-7)
    # double quotes
    "\u201c": '"',  # “ left double quotation mark
    "\u201d": '"',  # ” right double quotation mark
    "\u201e": '"',  # „ double low-9 quotation mark
    "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
    "\u2033": '"',  # ″ double prime
    "\u00ab": '"',  # « left-pointing double angle quotation mark
    "\u00bb": '"',  # » right-pointing double angle quotation mark
    # hyphens and dashes
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    # ellipsis and bullets
    "\u2026": "...",  # … horizontal ellipsis
    "\u2022": "-",  # • bullet
    "\u2023": "-",  # ‣ triangular bullet
    "\u2043": "-",  # ⁃ hyphen bullet
    # line and paragraph separators
    "\u2028": "\n",
    "\u2029": "\n",
    # spaces other than U+0020
    "\t": " ",
    "\u00a0": " ",  # no-break space
    "\u1680": " ",  # ogham space mark
    **{chr(code): " " for code in range(0x2000, 0x200B)},  # en quad ... hair space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    # invisible characters, dropped
    "\u200b": "",  # zero width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero width no-break space / byte order mark
    "\u00ad": "",  # soft hyphen
}

# Joiners matter between emoji or in scripts that use them; in Latin text they are noise.
_JOINERS: Final[frozenset[str]] = frozenset("\u200c\u200d")


def to_gsm7(text: str) -> str:
    """Replace look-alike punctuation and spaces with GSM-7 and drop zero-width characters.

    The text is first composed (NFC), so "e" + combining acute becomes the GSM-7 "é". Letters
    are left alone: "á" stays "á" (and the message goes UCS-2), as do emoji. A zero-width
    joiner or non-joiner is kept only between two characters outside GSM-7 (an emoji sequence
    such as 👨‍👩‍👧), and dropped elsewhere.
    """
    composed = unicodedata.normalize("NFC", text)
    out: list[str] = []
    for index, char in enumerate(composed):
        if char in _JOINERS:
            before = composed[index - 1] if index else ""
            after = composed[index + 1] if index + 1 < len(composed) else ""
            if before and after and not is_gsm7(before) and not is_gsm7(after):
                out.append(char)
            continue
        out.append(_REPLACEMENTS.get(char, char))
    return "".join(out)


def sms_body(text: str) -> str:
    """The body the SMS channel sends for `text` (see `to_gsm7`)."""
    return to_gsm7(text)
