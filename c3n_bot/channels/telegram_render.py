"""How an outbox message looks on Telegram: text parts within the limit and an inline keyboard."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

# Telegram counts message length in UTF-16 code units (an emoji outside the BMP is two).
MAX_TEXT = 4096
MAX_CALLBACK_DATA_BYTES = 64


class CallbackDataTooLong(ValueError):
    """An item id and option code do not fit Telegram's 64-byte callback data."""


def units(text: str) -> int:
    """The length of a text as Telegram counts it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def message_text(body: str, payload: Mapping[str, Any]) -> str:
    """The body; for an item typed in (no buttons), with what to type in parentheses."""
    hint = payload.get("hint")
    if hint and not payload.get("choices"):
        return f"{body}\n({hint})"
    return body


def callback_data(item_id: str, code: str) -> str:
    """The data a button sends back: `item:code` (item ids and codes never contain ':')."""
    data = f"{item_id}:{code}"
    if len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
        raise CallbackDataTooLong(f"callback data of item {item_id!r} is over 64 bytes")
    return data


def parse_callback_data(data: str) -> tuple[str, str] | None:
    """The (item id, option code) of a pressed button, or None when it is not ours."""
    item_id, sep, code = data.partition(":")
    return (item_id, code) if sep and item_id and code else None


def keyboard(choices: Iterable[Mapping[str, Any]]) -> InlineKeyboardMarkup | None:
    """One button per row (labels are sentences), or None without choices."""
    rows = [
        [
            InlineKeyboardButton(
                str(choice["label"]),
                callback_data=callback_data(str(choice["item_id"]), str(choice["code"])),
            )
        ]
        for choice in choices
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` units, cut at line ends, else at spaces, else anywhere."""
    if units(text) <= limit:
        return [text]
    parts = _pack((piece for line in text.split("\n") for piece in _fit(line, limit)), "\n", limit)
    # A cut between blank lines leaves empty edges, which Telegram refuses.
    return [part.strip("\n") for part in parts if part.strip()]


def _fit(line: str, limit: int) -> list[str]:
    if units(line) <= limit:
        return [line]
    return _pack((chunk for word in line.split(" ") for chunk in _cut(word, limit)), " ", limit)


def _pack(pieces: Iterator[str], separator: str, limit: int) -> list[str]:
    """Greedily join pieces (each within the limit) into as few parts as fit."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        extra = units(piece) + (len(separator) if current else 0)
        if current and size + extra > limit:
            parts.append(separator.join(current))
            current, size = [], 0
            extra = units(piece)
        current.append(piece)
        size += extra
    if current:
        parts.append(separator.join(current))
    return parts


def _cut(word: str, limit: int) -> Iterator[str]:
    """A word longer than the limit, cut into chunks (never inside a surrogate pair)."""
    start, size = 0, 0
    for index, ch in enumerate(word):
        width = 2 if ord(ch) > 0xFFFF else 1
        if size + width > limit:
            yield word[start:index]
            start, size = index, 0
        size += width
    yield word[start:]
