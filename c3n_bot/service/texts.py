"""The service's own texts to families (English source; translations live in locales/)."""

from __future__ import annotations

from c3n_bot.engine.messages import N_

STOPPED = N_(
    "You are unsubscribed from {program} and will get no more messages. "
    "Reply START to subscribe again."
)
RESTARTED = N_("You are subscribed to {program} again. Reply HELP for help or STOP to unsubscribe.")
HELP = N_(
    "{program}: health check-ins and visit reminders from {center}. "
    "Reply STOP to unsubscribe. In an emergency call 911."
)
HELP_IN_FLOW = N_("Reply STOP to unsubscribe.")
NOTHING_PENDING = N_(
    "There is nothing to answer right now. Reply REPORT to send a check-in, or HELP for help."
)
LANGUAGE_SET = N_("From now on I will write to you in English.")
NOT_ENROLLED = N_("This number is not enrolled. Please ask your care team for an invitation.")
CRISIS_FALLBACK = N_(
    "If you are thinking about hurting yourself, call or text 988 now. In an emergency call 911."
)
ENROLLED = N_("Welcome to {program}! You are now connected with {center}.")
ALREADY_ENROLLED = N_("You are already connected. Reply HELP for help.")
CODE_UNKNOWN = N_("That invitation code is not valid. Please check it or ask your care team.")
CODE_USED = N_("That invitation was already used. Please ask your care team for a new one.")
CODE_EXPIRED = N_("That invitation has expired. Please ask your care team for a new one.")
ADDRESS_TAKEN = N_("This number is already connected to another person. Please call your clinic.")
