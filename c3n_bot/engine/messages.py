"""The engine's own texts (English source strings; translations live in locales/)."""

from __future__ import annotations


def N_(text: str) -> str:
    """Mark a string for extraction without translating it here."""
    return text


WHO_FOR = N_("Who is this report for?")
PROGRESS = N_("({n} of {total})")
REPLY_RANGE = N_("Reply {first}-{last}")
REPLY_YES_NO = N_("Reply YES or NO")
REPLY_NUMBER = N_("Reply with a number from {min} to {max}")
REPLY_DATE = N_("Reply with a date, for example {example}")
REPLY_TEXT = N_("Reply with your answer in your own words")
NOT_UNDERSTOOD = N_("Sorry, I didn't understand that.")
STUCK = N_(
    "This question seems hard to answer here. Reply HELP to see what each answer means, "
    "or SKIP to leave it blank."
)
STUCK_REQUIRED = N_("This question seems hard to answer here. Reply HELP to see the answers.")
CANNOT_SKIP = N_("This question needs an answer.")
FIRST_QUESTION = N_("This is the first question.")
STALE_BUTTON = N_("That button belongs to an earlier question. Here is the current one:")
HELP_OPTIONS = N_("Reply with the number or the words:")
HELP_COMMANDS = N_("BACK: change the last answer. SKIP: skip this question.")
HELP_COMMANDS_REQUIRED = N_("BACK: change the last answer.")
NUDGE = N_("Reminder:")
YES = N_("Yes")
NO = N_("No")
DATE_EXAMPLE = N_("3/14/2026")
