"""Bot API wire format for the fake: parameter decoding, answers, errors and objects."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import Response, json_response

# python-telegram-bot sends a form whose non-string values are JSON-encoded; a JSON body
# keeps their types. These are the ones the fake reads.
JSON_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "reply_markup",
        "allowed_updates",
        "show_alert",
        "cache_time",
        "max_connections",
        "drop_pending_updates",
        "entities",
        "disable_notification",
        "link_preview_options",
    }
)
MAX_TEXT_UTF16 = 4096
MAX_CALLBACK_DATA_BYTES = 64
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

BLOCKED = "Forbidden: bot was blocked by the user"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: BLOCKED,
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

ChatId = int | str


@dataclass(frozen=True)
class Failure:
    """An injected error answer."""

    status: int
    error_code: int
    description: str
    retry_after: int | None = None

    def response(self) -> Response:
        """The Bot API's error JSON for this failure."""
        return error(
            self.status, self.description, error_code=self.error_code, retry_after=self.retry_after
        )


def ok(result: object) -> Response:
    """A successful Bot API answer."""
    return json_response(200, {"ok": True, "result": result})


def error(
    status: int, description: str, *, error_code: int | None = None, retry_after: int | None = None
) -> Response:
    """A Bot API error answer; `retry_after` goes into `parameters` as Telegram does."""
    payload: dict[str, Any] = {
        "ok": False,
        "error_code": status if error_code is None else error_code,
        "description": description,
    }
    if retry_after is not None:
        payload["parameters"] = {"retry_after": retry_after}
    return json_response(status, payload)


def too_many_requests(retry_after: int) -> Failure:
    """Telegram's flood-control answer."""
    return Failure(429, 429, f"Too Many Requests: retry after {retry_after}", retry_after)


def decode(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters with JSON-encoded form values decoded and numeric chat ids as ints."""
    decoded = dict(params)
    for name in JSON_PARAMS & decoded.keys():
        value = decoded[name]
        if isinstance(value, str):
            try:
                decoded[name] = json.loads(value)
            except ValueError:
                pass  # a plain string such as "@channel"
    chat_id = decoded.get("chat_id")
    if isinstance(chat_id, str) and re.fullmatch(r"-?\d+", chat_id):
        decoded["chat_id"] = int(chat_id)
    return decoded


def text_problem(text: object) -> str | None:
    """Why Telegram would refuse this message text, if it would."""
    if not isinstance(text, str) or not text.strip():
        return "Bad Request: message text is empty"
    if len(text.encode("utf-16-le")) // 2 > MAX_TEXT_UTF16:
        return "Bad Request: message is too long"
    return None


def markup_problem(markup: object) -> str | None:
    """Why Telegram would refuse this reply markup, if it would."""
    if not isinstance(markup, dict):
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                return "Bad Request: BUTTON_DATA_INVALID"
            if not button.get("text"):
                return "Bad Request: text buttons are unallowed in the inline keyboard"
    return None


def user(user_id: int, first_name: str, *, language_code: str | None = None) -> dict[str, Any]:
    """A Bot API User of a person."""
    person: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code is not None:
        person["language_code"] = language_code
    return person


def private_chat(chat_id: ChatId, first_name: str | None = None) -> dict[str, Any]:
    """A Bot API Chat of a one-to-one conversation."""
    chat: dict[str, Any] = {"id": chat_id, "type": "private"}
    if first_name is not None:
        chat["first_name"] = first_name
    return chat


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entity Telegram adds to a text starting with a command."""
    match = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?", text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": match.end()}]
