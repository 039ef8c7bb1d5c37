"""Lenient parsing of free-text replies: numbers, option labels, misspellings, commands."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c3n_bot.engine.definitions import Numbering, Option
from c3n_bot.engine.parsing import (
    Command,
    LabelledOption,
    match_option,
    normalize,
    number_from_text,
    parse_command,
    parse_date,
    parse_integer,
    parse_yes_no,
)

PHQ_EN = (
    LabelledOption("0", "Not at all", 0, ("never",)),
    LabelledOption("1", "Several days", 1),
    LabelledOption("2", "More than half the days", 2),
    LabelledOption("3", "Nearly every day", 3),
)
PHQ_ES = (
    LabelledOption("0", "Ningún día", 0, ("nunca",)),
    LabelledOption("1", "Varios días", 1),
    LabelledOption("2", "Más de la mitad de los días", 2),
    LabelledOption("3", "Casi todos los días", 3),
)
# PUCAI-like: ordinal values that are not positions, numbered 1..n on text channels.
PUCAI = (
    LabelledOption("none", "No pain", 0),
    LabelledOption("some", "Pain can be ignored", 5),
    LabelledOption("much", "Pain cannot be ignored", 10),
)
TODAY = date(2026, 3, 15)


def phq_en(text: str) -> str | None:
    return match_option(text, PHQ_EN, numbering=Numbering.VALUE, lang="en")


def phq_es(text: str) -> str | None:
    return match_option(text, PHQ_ES, numbering=Numbering.VALUE, lang="es")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  SEVERAL days 😔 ", "several days"),
        ("Más de la mitad, de los DÍAS!!", "mas de la mitad de los dias"),
        ("don't know", "dont know"),
        ("#3)", "3"),
        ("2026-03-01", "2026-03-01"),
        ("１２", "12"),
        ("ﬁne\t\n  ok", "fine ok"),
        ("👍", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # digits are ordinal values under VALUE numbering
        ("0", "0"),
        ("3", "3"),
        (" 2. ", "2"),
        ("#1", "1"),
        ("3)", "3"),
        ("4", None),
        ("-1", None),
        # number words, ordinals (ordinals always count positions)
        ("two", "2"),
        ("Zero", "0"),
        ("first", "0"),
        ("the second one", "1"),
        # exact text with noise, aliases
        ("not at all", "0"),
        ("  SEVERAL days 😔 ", "1"),
        ("More than half the days.", "2"),
        ("NEARLY EVERY DAY!!!", "3"),
        ("never", "0"),
        # whole-word containment, both ways
        ("I'd say several days", "1"),
        ("half", "2"),
        ("every day", "3"),
        ("nearly", "3"),
        # misspellings
        ("sevral days", "1"),
        ("several day", "1"),
        ("nerly evry day", "3"),
        ("more then half the days", "2"),
        ("not at al", "0"),
        ("neverr", "0"),
        ("i think sevral days", "1"),
        # ambiguous or unrelated
        ("day", None),
        ("days", None),
        ("the days", "2"),
        ("not at all, nearly every day", None),
        ("pizza", None),
        ("I don't know", None),
        ("dos", None),
        ("yes", None),
        ("", None),
        ("😔", None),
        ("3 days", None),
    ],
)
def test_phq9_english(text: str, expected: str | None) -> None:
    assert phq_en(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("2", "2"),
        ("dos", "2"),
        ("cero", "0"),
        ("tres", "3"),
        ("primera", "0"),
        ("la tercera opción", "2"),
        ("ningún día", "0"),
        ("ningun dia", "0"),
        ("VARIOS DÍAS 🙂", "1"),
        ("mas de la mitad de los dias", "2"),
        ("casi todos los días.", "3"),
        ("nunca", "0"),
        ("casi", "3"),
        ("la mitad", "2"),
        ("ningn dia", "0"),
        ("barios dias", "1"),
        ("mas de la mita de los dias", "2"),
        ("casi todo los dias", "3"),
        ("creo que barios dias", "1"),
        ("días", None),
        ("los dias", None),
        ("dia", None),
        ("no sé", None),
        ("pizza", None),
        ("two", None),
    ],
)
def test_phq9_spanish(text: str, expected: str | None) -> None:
    assert phq_es(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "none"),
        ("2", "some"),
        ("3", "much"),
        ("three", "much"),
        ("3rd", "much"),
        ("0", None),
        ("5", None),  # the value of "some", but positions stop at 3
        ("10", None),
        ("four", None),
        ("pain can be ignored", "some"),
        ("pain cannot be ignored", "much"),
        ("Pain can't be ignored", None),  # "cant" vs "can"/"cannot": too close to call
        ("no pain at all", "none"),
        ("ignored", None),
    ],
)
def test_position_numbering(text: str, expected: str | None) -> None:
    assert match_option(text, PUCAI, numbering=Numbering.POSITION, lang="en") == expected


def test_value_numbering_without_values_counts_positions() -> None:
    options = (LabelledOption("a", "Red"), LabelledOption("b", "Blue"))
    assert match_option("2", options, numbering=Numbering.VALUE, lang="en") == "b"


def test_longer_label_wins_over_the_label_it_contains() -> None:
    options = (LabelledOption("y", "Yes"), LabelledOption("yo", "Yes, often"))
    match = match_option
    assert match("yes often", options, numbering=Numbering.POSITION, lang="en") == "yo"
    assert match("yes", options, numbering=Numbering.POSITION, lang="en") == "y"
    # A short label answers only on its own: "no sé" must never pick "No" (reschedule).
    assert match("well, yes", options, numbering=Numbering.POSITION, lang="en") is None


def test_exact_label_wins_over_a_number_word() -> None:
    options = (LabelledOption("a", "Once"), LabelledOption("b", "Twice"))
    assert match_option("once", options, numbering=Numbering.POSITION, lang="es") == "a"
    assert match_option("no options", (), numbering=Numbering.POSITION, lang="en") is None


def test_labelled_option_from_option_translates() -> None:
    option = Option("1", "Several days", 1, aliases=("some days",))
    catalog = {"Several days": "Varios días", "some days": "algunos días"}
    labelled = LabelledOption.from_option(option, lambda text: catalog.get(text, text))
    assert labelled == LabelledOption("1", "Varios días", 1, ("algunos días",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("back", Command.BACK),
        ("Go back", Command.BACK),
        ("atrás", Command.BACK),
        ("ATRAS", Command.BACK),
        ("regresar", Command.BACK),
        ("volver", Command.BACK),
        ("/back", Command.BACK),
        ("help", Command.HELP),
        ("HELP!", Command.HELP),
        ("ayuda", Command.HELP),
        ("ayuda por favor", Command.HELP),
        ("?", Command.HELP),
        (" ¿? ", Command.HELP),
        ("/help@c3n_bot", Command.HELP),
        ("skip", Command.SKIP),
        ("Saltar", Command.SKIP),
        ("omitir", Command.SKIP),
        ("I prefer not to say", Command.SKIP),
        ("prefiero no decir", Command.SKIP),
        ("info", None),
        ("pass", None),
        ("next", None),
        ("go back to sleep", None),
        ("3", None),
        ("", None),
        ("thank you", None),
    ],
)
def test_commands(text: str, expected: Command | None) -> None:
    assert parse_command(text, "en") == expected
    assert parse_command(text, "es") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y", True),
        ("Yes", True),
        ("yeah!", True),
        ("yep", True),
        ("sure", True),
        ("OK", True),
        ("sí", True),
        ("si", True),
        ("S", True),
        ("claro", True),
        ("sí, claro", True),
        ("yes please", True),
        ("por supuesto", True),
        ("👍", True),
        ("👍🏽", True),
        ("✅", True),
        ("n", False),
        ("No", False),
        ("nope", False),
        ("nah", False),
        ("no, gracias", False),
        ("no thanks", False),
        ("👎", False),
        ("1", None),
        ("0", None),
        ("nunca", None),
        ("yes no", None),
        ("maybe", None),
        ("👍👎", None),
        ("", None),
        ("great 👍", None),
    ],
)
def test_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text, "en") is expected
    assert parse_yes_no(text, "es") is expected


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("3", "en", 3),
        (" 3. ", "en", 3),
        ("#3", "en", 3),
        ("3)", "en", 3),
        ("number 3", "en", 3),
        ("opción 2", "es", 2),
        ("one", "en", 1),
        ("uno", "es", 1),
        ("una", "es", 1),
        ("dieciséis", "es", 16),
        ("dieciseis", "es", 16),
        ("diez y seis", "es", 16),
        ("twenty", "en", 20),
        ("veinte", "es", 20),
        ("zero", "en", 0),
        ("cero", "es", 0),
        ("third", "en", 3),
        ("the 2nd one", "en", 2),
        ("décimo", "es", 10),
        ("primera", "es", 1),
        ("2º", "es", 2),
        ("none", "en", None),
        ("tres", "en", None),
        ("three", "es", None),
        ("twenty one", "en", None),
        ("3 days", "en", None),
        ("", "en", None),
        ("9" * 5000, "en", None),
    ],
)
def test_number_from_text(text: str, lang: str, expected: int | None) -> None:
    assert number_from_text(text, lang) == expected


@pytest.mark.parametrize(
    ("text", "lang", "bounds", "expected"),
    [
        ("7", "en", (0, 7), 7),
        ("8", "en", (0, 7), None),
        ("-1", "en", (0, 7), None),
        ("-1", "en", (-5, 5), -1),
        ("0", "es", (0, 7), 0),
        ("seven", "en", (0, 7), 7),
        ("siete", "es", (0, 7), 7),
        ("about 3", "en", (0, 7), 3),
        ("3 veces", "es", (0, 7), 3),
        ("120", "en", (None, None), 120),
        ("2 or 3", "en", (0, 7), None),
        ("3.5", "en", (0, 7), None),
        ("third", "en", (0, 7), None),
        ("a few", "en", (0, 7), None),
        ("", "en", (0, 7), None),
    ],
)
def test_parse_integer(
    text: str, lang: str, bounds: tuple[int | None, int | None], expected: int | None
) -> None:
    assert parse_integer(text, lang, *bounds) == expected


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("2026-03-01", "en", date(2026, 3, 1)),
        ("2026-03-01", "es", date(2026, 3, 1)),
        ("3/1/2026", "en", date(2026, 3, 1)),
        ("1/3/2026", "es", date(2026, 3, 1)),
        ("01.03.2026", "es", date(2026, 3, 1)),
        ("1-3-26", "es", date(2026, 3, 1)),
        ("3/1", "en", date(2026, 3, 1)),
        ("25/12/2025", "en", date(2025, 12, 25)),  # no 25th month: the other order
        ("12/25/2025", "es", date(2025, 12, 25)),
        ("3/1/85", "en", date(1985, 3, 1)),
        ("March 1st, 2026", "en", date(2026, 3, 1)),
        ("1 de marzo de 2026", "es", date(2026, 3, 1)),
        ("1 mar", "es", date(2026, 3, 1)),
        ("today", "en", TODAY),
        ("hoy", "es", TODAY),
        ("Yesterday", "en", date(2026, 3, 14)),
        ("ayer", "es", date(2026, 3, 14)),
        ("anteayer", "es", date(2026, 3, 13)),
        ("3 days ago", "en", date(2026, 3, 12)),
        ("a week ago", "en", date(2026, 3, 8)),
        ("hace dos semanas", "es", date(2026, 3, 1)),
        ("2026-02-30", "en", None),
        ("13/13/2026", "en", None),
        ("31/2/2026", "es", None),
        ("someday", "en", None),
        ("3", "en", None),
        ("", "en", None),
    ],
)
def test_parse_date(text: str, lang: str, expected: date | None) -> None:
    assert parse_date(text, lang, today=TODAY) == expected


@given(text=st.text(), lang=st.sampled_from(["en", "es", "fr", "es-MX", ""]))
def test_any_text_never_raises(text: str, lang: str) -> None:
    normalize(text)
    parse_command(text, lang)
    parse_yes_no(text, lang)
    number_from_text(text, lang)
    parse_integer(text, lang, 0, 10)
    parse_date(text, lang, today=TODAY)
    parse_date(text, lang, today=date.min)
    parse_date(text, lang, today=date.max)
    for options in (PHQ_EN, PHQ_ES, PUCAI):
        for numbering in Numbering:
            match_option(text, options, numbering=numbering, lang=lang)


@given(text=st.text(alphabet=st.sampled_from("0123456789 -/:.#)ayerhoy de marzo"), max_size=30))
def test_number_and_date_shaped_text_never_raises(text: str) -> None:
    number_from_text(text, "es")
    parse_integer(text, "en")
    parse_date(text, "en", today=date.min)
    parse_date(text, "es", today=date.max)
