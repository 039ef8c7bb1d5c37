"""Validators shared by API schemas and the CLI: phone numbers, timezones, languages."""

from __future__ import annotations

import zoneinfo

import phonenumbers

from c3n_bot.config import SUPPORTED_LANGUAGES


def e164(value: str) -> str:
    """A phone number normalised to E.164, or ValueError saying what is wrong."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number in E.164 form (+15551234567)") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def timezone(value: str) -> str:
    """An IANA timezone name, or ValueError."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA timezone (e.g. America/New_York)") from None
    return value


def language(value: str) -> str:
    """A supported language code, or ValueError listing them."""
    if value not in SUPPORTED_LANGUAGES:
        raise ValueError(f"must be one of {', '.join(SUPPORTED_LANGUAGES)}")
    return value
