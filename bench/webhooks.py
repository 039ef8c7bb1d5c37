"""Webhook requests as the providers send them: Telegram Updates and signed Twilio SMS forms."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from tests.fakes import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.fakes import telegram_wire as tg_wire
from tests.fakes.twilio import SERVICE_NUMBER
from tests.fakes.twilio_wire import inbound_form

TELEGRAM_PATH = "/webhooks/telegram"
SMS_PATH = "/webhooks/twilio/sms"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Webhook:
    """One POST to the app, ready to send (and to send again: it is immutable)."""

    path: str
    body: bytes
    headers: dict[str, str]


class WebhookFactory:
    """Builds the webhooks Telegram and Twilio would post to a deployment at `public_url`."""

    def __init__(self, *, public_url: str, telegram_secret: str) -> None:
        self._telegram_headers = {
            "Content-Type": "application/json",
            SECRET_HEADER: telegram_secret,
        }
        self._sms_url = public_url + SMS_PATH
        self._validator = RequestValidator(TEST_AUTH_TOKEN)

    def telegram_text(self, chat: int, text: str, *, update_id: int) -> Webhook:
        """An Update carrying a private text message from user `chat`."""
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "from": tg_wire.user(chat, "Ana", language_code="en"),
                "chat": tg_wire.private_chat(chat, "Ana"),
                "date": int(time.time()),
                "text": text,
            },
        }
        return Webhook(TELEGRAM_PATH, json.dumps(update).encode(), self._telegram_headers)

    def sms(self, number: str, text: str, *, serial: int) -> Webhook:
        """An incoming SMS from `number`, its MessageSid made from `serial`, validly signed."""
        form = inbound_form(
            account_sid=TEST_ACCOUNT_SID,
            sid=f"SM{serial:032x}",
            from_=number,
            to=SERVICE_NUMBER,
            body=text,
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self._validator.compute_signature(self._sms_url, form),
        }
        return Webhook(SMS_PATH, urlencode(form).encode(), headers)
