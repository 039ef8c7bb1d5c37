"""The Telegram channel: sending through the real python-telegram-bot `Bot`, and its set-up calls.

Parsing updates lives in `telegram_updates`, rendering in `telegram_render`, long polling in
`telegram_polling`; this module is the channel's public face and re-exports what callers use.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from c3n_bot.channels.telegram_client import BotLoop, new_bot, run_sync, scrub, seconds
from c3n_bot.channels.telegram_polling import CURSOR, TelegramPoller
from c3n_bot.channels.telegram_render import (
    CallbackDataTooLong,
    keyboard,
    message_text,
    split_text,
)
from c3n_bot.channels.telegram_updates import ALLOWED_UPDATES, parse_update
from c3n_bot.config import Settings
from c3n_bot.service.delivery import Outgoing, SendResult
from c3n_bot.store.base import Channel

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
ACK = "ack"

__all__ = [
    "ALLOWED_UPDATES",
    "CURSOR",
    "WEBHOOK_PATH",
    "TelegramPoller",
    "TelegramSender",
    "TelegramSetupError",
    "bot_username",
    "parse_update",
    "register_webhook",
]


class TelegramSender:
    """The dispatcher's Telegram sender: one Bot on a private loop, called from one thread."""

    channel = Channel.TELEGRAM

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bot = BotLoop(settings)

    def send(self, message: Outgoing) -> SendResult:
        """Answer a button press (kind "ack") or send a message; provider errors become results."""
        deliver = self._acknowledge if message.kind == ACK else self._deliver
        try:
            return self._bot.call(lambda bot: deliver(bot, message))
        except CallbackDataTooLong as exc:
            log.error("telegram.callback_data_too_long", extra={"outbox_id": message.id})
            return SendResult("failed", error_code="callback_data", detail=str(exc))
        except TelegramError as exc:  # initialize (getMe) failed before the request
            return self._result(exc)

    def rate_key(self, message: Outgoing) -> str | None:
        """The chat; acknowledgements get their own bucket so a reply never waits behind one.

        answerCallbackQuery is not a message to the chat, and holding the next question back
        a second for the edit of the previous one would make every button press feel slow.
        """
        return f"{message.address}:ack" if message.kind == ACK else message.address

    def close(self) -> None:
        """Shut the Bot down and close the private loop."""
        self._bot.close()

    async def _deliver(self, bot: Bot, message: Outgoing) -> SendResult:
        payload = message.payload
        markup = keyboard(payload.get("choices") or ())
        text = message_text(message.body, payload)
        if not text.strip():
            return SendResult("failed", error_code="empty", detail="empty message")
        parts = split_text(text)
        done = int(payload.get("parts_sent") or 0)
        last_id = payload.get("last_message_id")
        for index in range(done, len(parts)):
            last = index == len(parts) - 1
            try:
                sent = await bot.send_message(
                    chat_id=message.address,
                    text=parts[index],
                    reply_markup=markup if last else None,
                )
            except TelegramError as exc:
                progress = {"parts_sent": index, "last_message_id": last_id} if index else None
                return replace(self._result(exc), progress=progress)
            last_id = sent.message_id
        return SendResult("sent", provider_message_id=None if last_id is None else str(last_id))

    async def _acknowledge(self, bot: Bot, message: Outgoing) -> SendResult:
        ack = message.payload.get("ack") or {}
        query_id = ack.get("callback_query_id")
        if query_id and not message.payload.get("answered"):
            try:
                await bot.answer_callback_query(str(query_id))
            except BadRequest as exc:
                # Too old (or answered already): the spinner is gone anyway; still show the choice.
                if "query is too old" not in exc.message.lower():
                    return self._result(exc)
            except TelegramError as exc:
                return self._result(exc)
        edit_text, message_id = ack.get("edit_text"), ack.get("message_id")
        if edit_text and message_id is not None:
            try:
                # No reply_markup: the buttons go away. A long question was sent in parts and
                # `message_id` is its last one, so that part gets the answer under it.
                await bot.edit_message_text(
                    split_text(str(edit_text))[-1],
                    chat_id=message.address,
                    message_id=int(message_id),
                )
            except BadRequest as exc:
                if "message is not modified" not in exc.message.lower():
                    return replace(self._result(exc), progress={"answered": True})
            except TelegramError as exc:
                return replace(self._result(exc), progress={"answered": True})
        return SendResult("sent")

    def _result(self, exc: TelegramError) -> SendResult:
        return classify(exc, scrub(exc.message, self._settings))


def classify(exc: TelegramError, detail: str) -> SendResult:
    """What a Bot API error means for the row: retry later, or failed (and the chat stopped)."""
    if isinstance(exc, RetryAfter):
        return SendResult(
            "retry", retry_after=seconds(exc.retry_after), status_code=429, error_code="flood"
        )
    if isinstance(exc, Forbidden):  # blocked by the user, user deactivated, never started
        return SendResult(
            "failed", status_code=403, error_code="forbidden", detail=detail, stop_identity=True
        )
    if isinstance(exc, BadRequest):
        gone = "chat not found" in detail.lower()
        return SendResult(
            "failed",
            status_code=400,
            error_code="chat_not_found" if gone else "bad_request",
            detail=detail,
            stop_identity=gone,
        )
    if isinstance(exc, ChatMigrated):  # groups only; families write from private chats
        return SendResult("failed", error_code="chat_migrated", detail="chat migrated")
    if isinstance(exc, InvalidToken):  # our configuration, not the recipient: keep the row
        return SendResult("retry", status_code=401, error_code="token", detail="token rejected")
    # TimedOut, NetworkError (connection errors and 5xx), Conflict and anything new.
    code = "conflict" if isinstance(exc, Conflict) else "network"
    return SendResult("retry", error_code=code, detail=detail)


class TelegramSetupError(RuntimeError):
    """A start-up call to the Bot API failed (the message never holds the token)."""


def register_webhook(settings: Settings) -> None:
    """setWebhook to C3N_PUBLIC_URL + /webhooks/telegram with the secret and the update types."""
    secret = settings.telegram_webhook_secret
    if not settings.telegram_enabled or secret is None:
        raise TelegramSetupError("webhook mode needs C3N_TELEGRAM_TOKEN and its webhook secret")
    url = f"{settings.public_url}{WEBHOOK_PATH}"

    async def set_webhook() -> None:
        async with new_bot(settings) as bot:
            await bot.set_webhook(
                url=url, secret_token=secret.get_secret_value(), allowed_updates=ALLOWED_UPDATES
            )

    try:
        run_sync(set_webhook)
    except TelegramError as exc:
        raise TelegramSetupError(f"setWebhook failed: {scrub(exc.message, settings)}") from None
    log.info("telegram.webhook_registered")


_usernames: dict[tuple[str, str], str] = {}
_usernames_lock = threading.Lock()


def bot_username(settings: Settings) -> str | None:
    """The bot's @username for deep links (getMe once per process); None when unavailable."""
    if settings.telegram_token is None:
        return None
    key = (settings.telegram_api_url, settings.telegram_token.get_secret_value())
    with _usernames_lock:
        if key in _usernames:
            return _usernames[key]

    async def get_me() -> str:
        async with new_bot(settings) as bot:  # initialize() calls getMe
            return bot.username

    try:
        username = run_sync(get_me)
    except TelegramError as exc:
        log.warning("telegram.get_me_failed", extra={"error": type(exc).__name__})
        return None
    with _usernames_lock:
        _usernames[key] = username
    return username
