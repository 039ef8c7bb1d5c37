"""Bot API Update JSON to the service's Inbound: private text messages and button presses.

What is ignored (None, logged by update id and reason only):

- other update types (edited messages, channel posts, inline queries, ...); the webhook and
  polling ask Telegram for `message` and `callback_query` only;
- chats that are not private (groups, supergroups, channels): families talk to the bot
  one to one, and a group message must not answer a flow on someone's behalf;
- messages without text (stickers, photos, voice, ...): they are not answers, and feeding
  them to the engine as an empty text would count as a failed try and re-prompt; the next
  typed message or button press carries on where the conversation stands;
- button presses whose data is not `item:code` (not a button of ours).

`/start <token>` passes through as text: the service redeems deep-link tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from c3n_bot.channels.telegram_render import parse_callback_data
from c3n_bot.service.conversations import Inbound
from c3n_bot.store.base import Channel

log = logging.getLogger(__name__)

# What setWebhook and getUpdates ask for: nothing else reaches the bot.
ALLOWED_UPDATES = ["message", "callback_query"]


def parse_update(update: Mapping[str, Any]) -> Inbound | None:
    """The inbound message an Update carries, or None when it is nothing to act on."""
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return _ignored(None, "no_update_id")
    message = update.get("message")
    if isinstance(message, Mapping):
        return _message(update_id, message)
    query = update.get("callback_query")
    if isinstance(query, Mapping):
        return _callback(update_id, query)
    return _ignored(update_id, "update_type")


def _message(update_id: int, message: Mapping[str, Any]) -> Inbound | None:
    chat_id = _private_chat_id(message)
    if chat_id is None:
        return _ignored(update_id, "not_private")
    text = message.get("text")
    if not isinstance(text, str):
        return _ignored(update_id, "no_text")
    return Inbound(
        channel=Channel.TELEGRAM,
        address=str(chat_id),
        provider_message_id=str(update_id),
        text=text,
    )


def _callback(update_id: int, query: Mapping[str, Any]) -> Inbound | None:
    message = query.get("message")
    # Without its message (an inline-mode button) a press is not from a chat of ours.
    chat_id = _private_chat_id(message) if isinstance(message, Mapping) else None
    if chat_id is None or not isinstance(message, Mapping):
        return _ignored(update_id, "not_private")
    data = query.get("data")
    choice = parse_callback_data(data) if isinstance(data, str) else None
    if choice is None or not isinstance(query.get("id"), str):
        return _ignored(update_id, "callback_data")
    return Inbound(
        channel=Channel.TELEGRAM,
        address=str(chat_id),
        provider_message_id=str(update_id),
        choice=choice,
        ack={"callback_query_id": query["id"], "message_id": message.get("message_id")},
    )


def _private_chat_id(message: Mapping[str, Any]) -> int | None:
    chat = message.get("chat")
    if not isinstance(chat, Mapping) or chat.get("type") != "private":
        return None
    chat_id = chat.get("id")
    return chat_id if isinstance(chat_id, int) and not isinstance(chat_id, bool) else None


def _ignored(update_id: int | None, reason: str) -> Inbound | None:
    log.info("telegram.update_ignored", extra={"update_id": update_id, "reason": reason})
    return None
