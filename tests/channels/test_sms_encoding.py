"""GSM-7 / UCS-2 detection, segment counting and the SMS punctuation clean-up."""

from __future__ import annotations

import pytest

from c3n_bot.channels import sms_encoding
from c3n_bot.channels.sms_encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentInfo,
    is_gsm7,
    non_gsm7,
    segments,
    sms_body,
    to_gsm7,
)

EMOJI = "\U0001f60a"  # 😊, outside the BMP: two UTF-16 code units


def test_default_alphabet_has_127_characters_and_the_extension_table_10() -> None:
    assert len(sms_encoding._BASIC_TABLE) == 128
    assert len(GSM7_BASIC) == 127  # 128 codes, one of which is the escape
    assert "\x1b" not in GSM7_BASIC
    assert GSM7_EXTENSION == frozenset("\f^{}\\[~]|€")
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("code", "char"),
    [(0x00, "@"), (0x05, "é"), (0x09, "Ç"), (0x1B, "\x1b"), (0x1F, "É"), (0x24, "¤"),
     (0x40, "¡"), (0x5D, "Ñ"), (0x5E, "Ü"), (0x60, "¿"), (0x7D, "ñ"), (0x7E, "ü"), (0x7F, "à")],
)  # fmt: skip
def test_default_alphabet_is_in_gsm_03_38_code_order(code: int, char: str) -> None:
    assert sms_encoding._BASIC_TABLE[code] == char


@pytest.mark.parametrize("char", list("éÉñÑ¿¡üÜèùìòàäöÄÖÅåØøÆæßÇ£¥§¤@_ΔΣΩ\n\r"))
def test_spanish_and_other_default_alphabet_characters_are_gsm7(char: str) -> None:
    assert is_gsm7(char)


@pytest.mark.parametrize("char", list("áíóúÁÍÓÚçêâ`´’“—…•\u00a0\t") + [EMOJI])
def test_characters_outside_the_alphabet_are_not_gsm7(char: str) -> None:
    assert not is_gsm7(char)
    assert segments(char).encoding == "UCS-2"


@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_segment_boundaries(length: int, expected: int) -> None:
    assert segments("a" * length) == SegmentInfo("GSM-7", length, expected)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_segment_boundaries(length: int, expected: int) -> None:
    text = "á" * length
    assert segments(text) == SegmentInfo("UCS-2", length, expected)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_extension_characters_count_two_septets(char: str) -> None:
    assert is_gsm7(char)
    assert segments(char) == SegmentInfo("GSM-7", 2, 1)
    assert segments("a" * 158 + char) == SegmentInfo("GSM-7", 160, 1)
    assert segments("a" * 159 + char) == SegmentInfo("GSM-7", 161, 2)


def test_an_escape_sequence_is_never_split_across_segments() -> None:
    # 152 septets then "€": 154 septets in all, but the pair cannot straddle 153 | 154.
    text = "a" * 152 + "€" + "a" * 152
    info = segments(text)
    assert info.units == 306
    assert info.segments == 3  # 152 | 2 + 151 | 1
    assert segments("a" * 151 + "€" + "a" * 153).segments == 2  # 153 | 153


def test_an_emoji_forces_ucs2_and_counts_two_code_units() -> None:
    text = "a" * 60 + EMOJI
    assert is_gsm7("a" * 60)
    assert segments(text) == SegmentInfo("UCS-2", 62, 1)
    assert segments("a" * 68 + EMOJI) == SegmentInfo("UCS-2", 70, 1)
    assert segments("a" * 69 + EMOJI) == SegmentInfo("UCS-2", 71, 2)
    # One emoji turns a full single GSM-7 segment into three UCS-2 segments.
    assert segments("a" * 160).segments == 1
    assert segments("a" * 158 + EMOJI) == SegmentInfo("UCS-2", 160, 3)


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    # 66 units then an emoji: the pair would straddle 67 | 68, so it opens segment 2.
    text = "a" * 66 + EMOJI + "a" * 66
    info = segments(text)
    assert info.units == 134
    assert info.segments == 3  # 66 | 2 + 65 | 1
    assert segments("a" * 65 + EMOJI + "a" * 67).segments == 2  # 67 | 67


def test_to_gsm7_turns_smart_punctuation_into_gsm7() -> None:
    text = "Don’t worry — it’s “quick” – really… ‘OK’ ‚x‛ „y”"
    plain = to_gsm7(text)
    assert plain == "Don't worry - it's \"quick\" - really... 'OK' 'x' \"y\""
    assert is_gsm7(plain)
    assert not is_gsm7(text)


def test_a_single_smart_quote_no_longer_triples_a_message() -> None:
    text = "It’s time for your check-in. " + "a" * 130
    assert segments(text).encoding == "UCS-2"
    assert segments(text).segments == 3
    assert segments(sms_body(text)) == SegmentInfo("GSM-7", 159, 1)


@pytest.mark.parametrize(
    "space", ["\u00a0", "\u2002", "\u2003", "\u2007", "\u2009", "\u200a", "\u202f", "\u3000", "\t"]
)
def test_unicode_spaces_become_a_plain_space(space: str) -> None:
    assert to_gsm7(f"9:00{space}AM") == "9:00 AM"


def test_bullets_become_dashes_and_zero_width_characters_are_dropped() -> None:
    assert to_gsm7("• one\n• two") == "- one\n- two"
    assert to_gsm7("re\u200bply\u2060 now\ufeff, HEL\u00adP, a\u200db\u200cc") == (
        "reply now, HELP, abc"
    )


def test_emoji_are_left_as_they_are() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, joined by ZWJ
    heart = "\u2764\ufe0f"  # ❤️ with its variation selector
    text = f"Thanks {EMOJI} {family} {heart} 👍"
    assert to_gsm7(text) == text
    assert segments(sms_body(text)).encoding == "UCS-2"


def test_letters_are_never_transliterated() -> None:
    spanish = "¿Está bien? Sí, mañana a las 9:00 — Ángel, Ñandú, pingüino, café, ÉL."
    plain = to_gsm7(spanish)
    assert plain == "¿Está bien? Sí, mañana a las 9:00 - Ángel, Ñandú, pingüino, café, ÉL."
    assert non_gsm7(plain) == ["á", "í", "Á", "ú"]
    assert segments(plain).encoding == "UCS-2"


def test_spanish_without_acute_vowels_other_than_e_stays_gsm7() -> None:
    text = "¡Gracias! ¿Mañana? Pingüino, café, ÉL, Ñoño."
    assert to_gsm7(text) == text
    assert is_gsm7(text)
    assert segments(text) == SegmentInfo("GSM-7", len(text), 1)


def test_decomposed_accents_are_composed_first() -> None:
    decomposed = "cafe\u0301 man\u0303ana"  # e + combining acute, n + combining tilde
    assert to_gsm7(decomposed) == "café mañana"
    assert is_gsm7(to_gsm7(decomposed))
    assert to_gsm7("a\u0301") == "á"  # composed, still UCS-2, one code unit instead of two
    assert segments(to_gsm7("a\u0301")) == SegmentInfo("UCS-2", 1, 1)


def test_sms_body_is_to_gsm7_and_idempotent() -> None:
    text = "“Reply 1–3”… ‘thanks’\u00a0😊"
    assert sms_body(text) == to_gsm7(text)
    assert sms_body(sms_body(text)) == sms_body(text)


def test_non_gsm7_lists_each_offending_character_once() -> None:
    assert non_gsm7("plain text {with} € and [brackets]") == []
    assert non_gsm7("días más días 😊") == ["í", "á", EMOJI]
