"""split_for_sms: parts within budget (2 GSM-7 or 3 UCS-2 segments), cut at lines, then words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from c3n_bot.channels.sms_encoding import segments
from c3n_bot.channels.sms_split import BUDGET, fits, split_for_sms

GSM_LINE = "Over the last 2 weeks, how often have you been bothered by feeling tired?"  # 74
UCS_LINE = "¿Con qué frecuencia ha sentido cansancio o falta de energía?"  # 60 units


def within_budget(part: str) -> bool:
    info = segments(part)
    return info.segments <= BUDGET[info.encoding]


def test_a_text_within_budget_is_one_part_unchanged() -> None:
    for text in ("", "Reply 0-3", "a" * 306, "á" * 201, "\n".join([GSM_LINE] * 4)):
        assert split_for_sms(text) == [text]


def test_budget_is_two_gsm7_segments_or_three_ucs2_segments() -> None:
    assert fits("a" * 306) and not fits("a" * 307)
    assert fits("á" * 201) and not fits("á" * 202)
    # Extension characters count twice and never straddle segments: 76 in each of two.
    assert fits("€" * 152) and not fits("€" * 153)


def test_lines_are_packed_greedily_and_kept_whole() -> None:
    text = "\n".join(f"{n} {GSM_LINE}" for n in range(10))
    parts = split_for_sms(text)
    assert [len(part.split("\n")) for part in parts] == [4, 4, 2]
    assert "\n".join(parts) == text
    assert all(within_budget(part) for part in parts)


def test_each_part_has_its_own_encoding() -> None:
    english = "\n".join([GSM_LINE] * 3)  # 224 septets: GSM-7, 2 segments
    parts = split_for_sms(english + "\n" + UCS_LINE)
    assert parts == [english, UCS_LINE]
    assert [segments(part).encoding for part in parts] == ["GSM-7", "UCS-2"]


def test_ucs2_lines_share_a_part_up_to_three_segments() -> None:
    text = "\n".join([UCS_LINE] * 5)  # 304 units
    parts = split_for_sms(text)
    assert [part.count("\n") + 1 for part in parts] == [3, 2]
    assert segments(parts[0]).segments == 3


def test_a_long_line_is_cut_between_words() -> None:
    words = [f"word{n:03d}" for n in range(80)]  # 639 septets on one line
    parts = split_for_sms(" ".join(words))
    assert len(parts) == 3
    assert [word for part in parts for word in part.split(" ")] == words
    assert all(within_budget(part) for part in parts)


def test_a_word_longer_than_the_budget_is_cut_anywhere() -> None:
    url = "https://example.org/" + "x" * 700
    parts = split_for_sms(f"Open\n{url}")
    assert parts[0] == "Open" and "".join(parts[1:]) == url
    assert [len(part) for part in parts[1:]] == [306, 306, 108]


def test_blank_lines_at_a_cut_are_dropped() -> None:
    paragraph = "\n".join([GSM_LINE] * 4)  # 299 septets
    parts = split_for_sms(f"{paragraph}\n\n{paragraph}")
    assert parts == [paragraph, paragraph]


LINES = st.text(
    alphabet=st.sampled_from(list("abc XYZ 0123 .,'€") + ["á", "ñ", "😀", "\n"]),
    max_size=900,
)


@given(LINES)
def test_any_text_splits_into_parts_within_budget_keeping_every_character(text: str) -> None:
    parts = split_for_sms(text)
    assert parts
    assert all(within_budget(part) for part in parts)
    assert "".join("".join(part.split()) for part in parts) == "".join(text.split())
