"""Channel keywords that win over any flow: opt-out, opt-in, help, language."""

from __future__ import annotations

import enum
import re


class Keyword(enum.StrEnum):
    """What a single-word message asks of the service itself."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    INFO = "info"
    LANGUAGE = "language"


# Carrier opt-out and opt-in words (CTIA); single word, any case.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "AYUDA"})
LANGUAGE_WORDS = frozenset({"LANGUAGE", "IDIOMA", "LANG", "LENGUAJE"})
LANGUAGE_NAMES = {
    "EN": "en", "ENGLISH": "en", "INGLES": "en", "INGLÉS": "en",
    "ES": "es", "SPANISH": "es", "ESPANOL": "es", "ESPAÑOL": "es",
}  # fmt: skip


def classify(text: str, *, stopped: bool) -> tuple[Keyword, str | None] | None:
    """The keyword a message is (with its argument), or None when it is for the flow.

    YES counts as opt-in only after a stop: otherwise it is an answer.
    """
    words = re.sub(r"[^\w/ ]", "", text.strip(), flags=re.UNICODE).upper().split()
    if not words:
        return None
    head = words[0].removeprefix("/").split("@", 1)[0]
    rest = words[1] if len(words) == 2 else None
    if len(words) == 1 and head in STOP_WORDS:
        return Keyword.STOP, None
    if len(words) == 1 and (head in START_WORDS or (stopped and head == "YES")):
        return Keyword.START, None
    if len(words) == 1 and head in HELP_WORDS:
        return Keyword.HELP, None
    if len(words) == 1 and head == "INFO":
        return Keyword.INFO, None
    if head in LANGUAGE_WORDS and len(words) <= 2:
        return Keyword.LANGUAGE, LANGUAGE_NAMES.get(rest) if rest else None
    return None
