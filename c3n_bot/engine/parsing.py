"""Lenient parsing of a patient's free-text reply: commands, numbers, options, yes/no, dates."""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from rapidfuzz import fuzz

from c3n_bot.engine import numbers
from c3n_bot.engine.definitions import Numbering, Option

FUZZY_CUTOFF = 85.0  # least similarity (0..100) for a misspelled option to count
FUZZY_MARGIN = 8.0  # ... and how far ahead of the second-best option it must be
_MIN_FRAGMENT = 4  # a reply this long may be a whole-word fragment of one label
_MAX_FUZZY = 200  # a longer message is not a misspelled option

_KEEP = frozenset(" -/:")
_APOSTROPHES = frozenset("'’ʼ`")  # joined, not split: "don't" -> "dont"
_SIGNED = re.compile(r"-?[0-9]{1,9}")
_COURTESY = re.compile(r"\b(?:please|pls|plz|porfa|por favor|thanks|thank you|gracias)\b")


def normalize(text: str) -> str:
    """Casefold, strip accents and noise (emoji, punctuation), collapse whitespace.

    Letters, digits, spaces and "-", "/", ":" are kept; other characters become spaces.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    out: list[str] = []
    for char in folded:
        category = unicodedata.category(char)
        if category == "Mn" or char in _APOSTROPHES:
            continue
        if category == "Nd":
            out.append(str(unicodedata.decimal(char, 0)))
        elif category.startswith("L") or char in _KEEP:
            out.append(char)
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def _plain(norm: str) -> str:
    """A normalized reply without courtesy words ("please", "gracias")."""
    return " ".join(_COURTESY.sub(" ", norm).split())


# --- commands ---------------------------------------------------------------------------


class Command(enum.StrEnum):
    """Navigation words a patient may send instead of an answer."""

    BACK = "back"
    HELP = "help"
    SKIP = "skip"


_COMMANDS: dict[str, Command] = {
    **dict.fromkeys(
        ("back", "go back", "atras", "ir atras", "volver atras", "regresar", "volver"),
        Command.BACK,
    ),
    **dict.fromkeys(("help", "ayuda", "ayudame"), Command.HELP),
    **dict.fromkeys(
        (
            "skip", "saltar", "omitir", "prefer not to say", "i prefer not to say",
            "prefer not to answer", "i prefer not to answer", "prefiero no decir",
            "prefiero no decirlo", "prefiero no contestar", "prefiero no responder",
        ),
        Command.SKIP,
    ),
}  # fmt: skip


def parse_command(text: str, lang: str) -> Command | None:
    """The command a whole reply names, in English or Spanish whatever `lang` is.

    A bare "?" asks for help; a Telegram-style "/skip" (or "/skip@bot") counts too.
    """
    stripped = text.strip()
    if stripped and set(stripped) <= {"?", "¿"}:
        return Command.HELP
    norm = normalize(text)
    if norm.startswith("/"):
        norm = norm[1:].split(" ", 1)[0]
    return _COMMANDS.get(_plain(norm))


# --- yes / no ---------------------------------------------------------------------------

_YES_WORDS = frozenset("y yes yeah yea yep yup sure ok okay si s sip claro vale dale".split())
_NO_WORDS = frozenset("n no nope nah negativo".split())
_YES_PHRASES = frozenset(
    ("of course", "por supuesto", "correct", "correcto", "afirmativo", "de acuerdo")
)
_NO_PHRASES = frozenset(("of course not", "claro que no", "para nada", "not really"))
_YES_MARKS = ("👍", "✅", "✔", "☑")
_NO_MARKS = ("👎", "❌", "✖", "🚫")


def parse_yes_no(text: str, lang: str) -> bool | None:
    """Yes (True), no (False) or neither, in English or Spanish; 👍/👎 count. Never numbers."""
    words = _plain(normalize(text))
    if words in _YES_PHRASES:
        return True
    if words in _NO_PHRASES:
        return False
    tokens = set(words.split())
    if tokens and tokens <= _YES_WORDS:
        return True
    if tokens and tokens <= _NO_WORDS:
        return False
    if words and any(c.isalnum() for c in words):
        return None
    yes = any(mark in text for mark in _YES_MARKS)
    no = any(mark in text for mark in _NO_MARKS)
    return yes if yes != no else None


# --- numbers ----------------------------------------------------------------------------


def number_from_text(text: str, lang: str) -> int | None:
    """The number a whole reply gives: "3", " 3. ", "#3", "3)", "three", "tres", "third"."""
    found = numbers.read_number(normalize(text), lang)
    return found[0] if found else None


_NONE_WORDS = frozenset({"none", "no days", "ninguno", "ninguna", "ningun", "nada"})


def parse_integer(
    text: str, lang: str, min: int | None = None, max: int | None = None
) -> int | None:
    """An integer answer within [min, max] (None when outside: the caller says what's accepted).

    The reply is a number (digits, sign allowed, or a number word 0..20), or holds exactly
    one group of digits among words ("about 3", "3 veces").
    """
    norm = normalize(text)
    found = numbers.read_number(norm, lang)
    if norm in _NONE_WORDS:
        found = (0, "word")
    if found is not None and found[1] != "ordinal":
        value = found[0]
    else:
        groups = [word for word in norm.split() if _SIGNED.fullmatch(word)]
        if len(groups) != 1:
            return None
        value = int(groups[0])
    if (min is not None and value < min) or (max is not None and value > max):
        return None
    return value


# --- options ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledOption:
    """A choice option as the patient sees it: label and aliases already translated."""

    code: str
    label: str
    value: int | None = None
    aliases: tuple[str, ...] = ()

    @classmethod
    def from_option(cls, option: Option, translate: Callable[[str], str]) -> LabelledOption:
        """An option with its English text and aliases passed through `translate`."""
        aliases = tuple(translate(alias) for alias in option.aliases)
        return cls(option.code, translate(option.text), option.value, aliases)


_Table = list[tuple[str, tuple[str, ...]]]


def _table(options: Sequence[LabelledOption]) -> _Table:
    """Each option's code with its normalized, non-empty label and aliases."""
    rows: _Table = []
    for option in options:
        phrases = (normalize(p) for p in (option.label, *option.aliases))
        rows.append((option.code, tuple(dict.fromkeys(p for p in phrases if p))))
    return rows


def _only(codes: set[str]) -> str | None:
    """The one code, or None when there are none or several (ambiguous)."""
    return next(iter(codes)) if len(codes) == 1 else None


def _by_number(
    number: numbers.Reading, options: Sequence[LabelledOption], numbering: Numbering
) -> str | None:
    """The option a number names: by position (ordinals always) or by ordinal value."""
    value, kind = number
    has_values = any(option.value is not None for option in options)
    if numbering == Numbering.VALUE and kind != "ordinal" and has_values:
        return _only({option.code for option in options if option.value == value})
    return options[value - 1].code if 1 <= value <= len(options) else None


def _has_words(haystack: str, needle: str) -> bool:
    """Whether `needle` occurs in `haystack` as whole words."""
    return f" {needle} " in f" {haystack} "


def _contained(norm: str, table: _Table) -> set[str]:
    """Options whose label is in the reply, or (long enough reply) holds the reply."""
    holding = {
        code
        for code, phrases in table
        if len(norm) >= _MIN_FRAGMENT and any(_has_words(p, norm) for p in phrases)
    }
    inside: dict[str, str] = {}
    for code, phrases in table:
        # A short word such as "no" or "yes" answers only on its own: "no se" is not "No".
        found = [p for p in phrases if len(p) >= _MIN_FRAGMENT and _has_words(norm, p)]
        if found:
            inside[code] = max(found, key=len)
    # "yes often" holds "yes" too; the longer label wins over the one it contains.
    widest = {
        code
        for code, phrase in inside.items()
        if not any(
            o != code and o_p != phrase and _has_words(o_p, phrase) for o, o_p in inside.items()
        )
    }
    return holding | widest


def _similarity(reply: str, phrase: str) -> float:
    """How alike a reply and a label are (0..100), whole to whole or label within reply."""
    score = max(fuzz.ratio(reply, phrase), fuzz.token_sort_ratio(reply, phrase))
    if len(phrase) >= 8 and len(phrase) < len(reply) <= 2 * len(phrase):
        score = max(score, 0.9 * fuzz.partial_ratio(phrase, reply))
    return float(score)


def _fuzzy(norm: str, table: _Table) -> str | None:
    """The clearly closest option to a misspelled reply, if any is close enough."""
    if not 3 <= len(norm) <= _MAX_FUZZY:
        return None
    scored = sorted(
        (
            (max((_similarity(norm, p) for p in phrases), default=0.0), code)
            for code, phrases in table
        ),
        reverse=True,
    )
    best, code = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0.0
    return code if best >= FUZZY_CUTOFF and best - second >= FUZZY_MARGIN else None


def match_option(
    text: str, options: Sequence[LabelledOption], *, numbering: Numbering, lang: str
) -> str | None:
    """The code of the option a reply picks, or None when it picks none or is ambiguous.

    Tried in order: digits (by position or by value, per `numbering`); the exact label or
    alias; a number word or ordinal; a label the reply contains, or that contains the reply
    as whole words; a close misspelling (rapidfuzz) clearly ahead of the runner-up.
    """
    norm = normalize(text)
    if not norm or not options:
        return None
    number = numbers.read_number(norm, lang)
    if number is not None and number[1] == "digits":
        return _by_number(number, options, numbering)
    table = _table(options)
    exact = {code for code, phrases in table if norm in phrases}
    if exact:
        return _only(exact)
    if number is not None:
        return _by_number(number, options, numbering)
    contained = _contained(norm, table)
    found = _only(contained) if contained else _fuzzy(norm, table)
    if found is not None and _negation_conflict(norm, found, table):
        return None
    return found


# "not formed" must never be read as "Formed": a negated reply matches only negated labels.
_NEGATIONS = frozenset({"not", "no", "dont", "isnt", "never", "nunca", "ni"})


def _negation_conflict(norm: str, code: str, table: _Table) -> bool:
    negated = set(norm.split()) & _NEGATIONS
    if not negated:
        return False
    phrases = next(p for c, p in table if c == code)
    return not any(negated & set(phrase.split()) for phrase in phrases)


# --- dates ------------------------------------------------------------------------------


def parse_date(text: str, lang: str, *, today: date) -> date | None:
    """A date from a reply: ISO, numeric in the language's order, month names, or relative.

    Numeric dates are month/day/year for English and day/month/year otherwise; a missing
    year is this year; "today"/"hoy", "yesterday"/"ayer", "3 days ago" count from `today`.
    """
    norm = normalize(re.sub(r"(?<=[0-9])\.(?=[0-9])", "/", text))
    if not norm:
        return None
    return numbers.read_date(norm, lang, today)
