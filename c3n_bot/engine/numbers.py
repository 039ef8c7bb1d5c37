"""Numbers and dates in English and Spanish, read from normalized text (see parsing)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

_EN_CARDINALS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_ES_CARDINALS = (
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce "
    "quince dieciseis diecisiete dieciocho diecinueve veinte"
).split()

# Words are stored normalized (casefolded, accents stripped), as `normalize` leaves them.
CARDINALS: dict[str, dict[str, int]] = {
    "en": {word: n for n, word in enumerate(_EN_CARDINALS)},
    "es": {
        **{word: n for n, word in enumerate(_ES_CARDINALS)},
        "un": 1,
        "una": 1,
        # Older spellings written as three words.
        "diez y seis": 16,
        "diez y siete": 17,
        "diez y ocho": 18,
        "diez y nueve": 19,
    },
}

_EN_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()
_ES_ORDINALS = (
    "primer segund tercer cuart quint sext septim octav noven decim".split()
)  # stems: + o / a

ORDINALS: dict[str, dict[str, int]] = {
    "en": {word: n for n, word in enumerate(_EN_ORDINALS, start=1)},
    "es": {
        **{stem + end: n for n, stem in enumerate(_ES_ORDINALS, start=1) for end in "oa"},
        "primer": 1,
        "tercer": 3,
        "setimo": 7,
        "setima": 7,
    },
}

# "1st", "2nd", "3rd", "4th"; Spanish "1º"/"1ª" normalize to "1o"/"1a", also "1er", "2do".
_DIGIT_ORDINAL = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th|o|a|er|ro|ra|do|da|to|ta|vo|va|mo|ma)")

_EN_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_ES_MONTHS = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
).split()
_ABBREVIATIONS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12, "ene": 1, "abr": 4, "ago": 8, "set": 9,
    "setiembre": 9, "dic": 12,
}  # fmt: skip
MONTHS: dict[str, int] = {
    **{word: n for n, word in enumerate(_EN_MONTHS, start=1)},
    **{word: n for n, word in enumerate(_ES_MONTHS, start=1)},
    **_ABBREVIATIONS,
}

# Days relative to today, in both languages (normalized: "mañana" is "manana").
RELATIVE_DAYS: dict[str, int] = {
    "today": 0,
    "hoy": 0,
    "yesterday": -1,
    "ayer": -1,
    "day before yesterday": -2,
    "the day before yesterday": -2,
    "anteayer": -2,
    "antier": -2,
    "antes de ayer": -2,
    "tomorrow": 1,
    "manana": 1,
    "pasado manana": 2,
}


def base_language(lang: str) -> str:
    """The base language of a tag: "es-MX" -> "es"; anything unknown is treated as "en"."""
    base = lang.replace("_", "-").split("-", 1)[0].casefold()
    return base if base in CARDINALS else "en"


def cardinal(words: str, lang: str) -> int | None:
    """The value of a normalized cardinal number word (0..20) in the language, if it is one."""
    return CARDINALS[base_language(lang)].get(words)


def ordinal(word: str, lang: str) -> int | None:
    """The position named by a normalized ordinal ("second", "tercera", "3rd", "2º")."""
    match = _DIGIT_ORDINAL.fullmatch(word)
    if match:
        return int(match.group(1))
    return ORDINALS[base_language(lang)].get(word)


def day_number(word: str) -> int | None:
    """A day of the month written as digits, possibly with an ordinal suffix ("1st", "3º")."""
    if word.isascii() and word.isdigit() and len(word) <= 2:
        return int(word)
    match = _DIGIT_ORDINAL.fullmatch(word)
    return int(match.group(1)) if match else None


def expand_year(year: int, digits: int, this_year: int) -> int:
    """A two-digit year in the century that puts it at most one year ahead of this year."""
    if digits > 2:
        return year
    candidate = this_year // 100 * 100 + year
    return candidate - 100 if candidate > this_year + 1 else candidate


Kind = Literal["digits", "word", "ordinal"]
Reading = tuple[int, Kind]
_DIGITS = re.compile(r"[0-9]{1,9}")
_LEADING = frozenset("the el la lo number numero num nro option opcion answer respuesta".split())
_TRAILING = frozenset("one option opcion answer respuesta".split())


def read_number(norm: str, lang: str) -> Reading | None:
    """A reply that is only a number: digits, a number word or an ordinal ("the 2nd one")."""
    words = norm.split()
    while len(words) > 1 and words[0] in _LEADING:
        words = words[1:]
    whole = " ".join(words)
    if _DIGITS.fullmatch(whole):
        return int(whole), "digits"
    value = cardinal(whole, lang)
    if value is not None:
        return value, "word"
    if len(words) > 1 and words[-1] in _TRAILING:
        whole = " ".join(words[:-1])
    value = ordinal(whole, lang)
    return (value, "ordinal") if value is not None else None


_ISO = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")
_NUMERIC = re.compile(r"([0-9]{1,2})[-/]([0-9]{1,2})(?:[-/]([0-9]{4}|[0-9]{2}))?")
_AGO = re.compile(r"(.+) (day|week)s? ago|hace (.+) (dia|semana)s?")
_DATE_FILLERS = frozenset(
    "de del of the el on a en monday tuesday wednesday thursday friday saturday sunday "
    "lunes martes miercoles jueves viernes sabado domingo".split()
)


def _make_date(year: int, month: int, day: int) -> date | None:
    """The date, or None when it does not exist (31 February)."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _shift(today: date, days: int) -> date | None:
    """`today` moved by some days, or None past the calendar's ends."""
    try:
        return today + timedelta(days=days)
    except OverflowError:
        return None


def _relative(norm: str, lang: str, today: date) -> date | None:
    """Days counted from today: "today", "ayer", "3 days ago", "hace una semana"."""
    if norm in RELATIVE_DAYS:
        return _shift(today, RELATIVE_DAYS[norm])
    match = _AGO.fullmatch(norm)
    if not match:
        return None
    count, unit = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    reading = (1, "word") if count in ("a", "an") else read_number(count, lang)
    if reading is None or reading[1] == "ordinal" or reading[0] > 9999:
        return None
    return _shift(today, -reading[0] * (7 if unit in ("week", "semana") else 1))


def _numeric(norm: str, lang: str, today: date) -> date | None:
    """ISO year-month-day, or day and month in the language's order with an optional year."""
    iso = _ISO.fullmatch(norm)
    if iso:
        return _make_date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    match = _NUMERIC.fullmatch(norm)
    if not match:
        return None
    first, second, year_text = match.groups()
    year = expand_year(int(year_text), len(year_text), today.year) if year_text else today.year
    month, day = (int(first), int(second))
    if base_language(lang) != "en":
        month, day = day, month
    # When the language's order gives no real date but the other order does, take that.
    return _make_date(year, month, day) or _make_date(year, day, month)


def _named(norm: str, today: date) -> date | None:
    """A date with a month name: "March 1st, 2026", "1 de marzo de 2026", "1 mar"."""
    words = [word for word in norm.split() if word not in _DATE_FILLERS]
    months = [MONTHS[word] for word in words if word in MONTHS]
    rest = [word for word in words if word not in MONTHS]
    if len(months) != 1 or not 1 <= len(rest) <= 2:
        return None
    day = day_number(rest[0])
    if day is None:
        return None
    year = today.year
    if len(rest) == 2:
        if not (rest[1].isascii() and rest[1].isdigit() and len(rest[1]) in (2, 4)):
            return None
        year = expand_year(int(rest[1]), len(rest[1]), today.year)
    return _make_date(year, months[0], day)


def read_date(norm: str, lang: str, today: date) -> date | None:
    """A date from a normalized reply: relative, ISO or numeric, or with a month name."""
    return _relative(norm, lang, today) or _numeric(norm, lang, today) or _named(norm, today)
