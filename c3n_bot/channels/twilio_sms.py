"""The SMS channel's outbound half: the real twilio `Client`, multi-part sends, error mapping."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from c3n_bot.channels.sms_encoding import sms_body
from c3n_bot.channels.sms_split import split_for_sms
from c3n_bot.channels.text import render_text
from c3n_bot.config import Settings
from c3n_bot.service.delivery import Outgoing, SendResult, parse_retry_after
from c3n_bot.store.base import Channel

log = logging.getLogger(__name__)
# twilio's client logs every request line and header at INFO (never the auth header or the
# form); under our name and at WARNING unless an operator lowers it.
http_log = logging.getLogger(f"{__name__}.http")
http_log.setLevel(logging.WARNING)

# Without a timeout `requests` waits forever, and one stuck call would stall every SMS.
TIMEOUT_SECONDS = 15.0
RATE_LIMITED = 20429
UNSUBSCRIBED = 21610
STATUS_PATH = "/webhooks/twilio/status"


class TwilioSender:
    """Sends SMS through Twilio's Messages API; one pooled HTTP session for all sends."""

    channel = Channel.SMS

    def __init__(self, settings: Settings, *, timeout: float = TIMEOUT_SECONDS) -> None:
        token, origin = settings.twilio_auth_token, settings.twilio_from
        if not settings.twilio_account_sid or token is None or not origin:
            raise ValueError("SMS needs C3N_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _FROM")
        self._retry_after = threading.local()
        self._http = TwilioHttpClient(
            timeout=timeout,
            logger=http_log,
            request_hooks={"response": [self._remember_retry_after]},
        )
        self._client = Client(
            settings.twilio_account_sid,
            token.get_secret_value(),
            http_client=self._http,
        )
        # Read when each request is made, so the REST base can be pointed elsewhere (tests).
        self._client.api.base_url = settings.twilio_api_url
        self._origin = sender_params(origin)
        self._status_callback = settings.public_url + STATUS_PATH

    def send(self, message: Outgoing) -> SendResult:
        """Send the rendered text, in parts when over budget, resuming after parts sent."""
        parts = split_for_sms(sms_body(render_text(message.body, message.payload)))
        done = int(message.payload.get("parts_sent", 0))
        sid: str | None = None
        for index in range(done, len(parts)):
            try:
                sid = self._create(message.address, parts[index], last=index == len(parts) - 1)
            except (TwilioException, requests.RequestException) as exc:
                result = self._failure(message, exc, part=index)
                # Parts already accepted stay sent: a retry continues with this one.
                return replace(result, progress={"parts_sent": index}) if index > done else result
        progress = {"parts_sent": len(parts)} if len(parts) > 1 else None
        return SendResult("sent", provider_message_id=sid, progress=progress)

    def rate_key(self, message: Outgoing) -> str | None:
        """None: Twilio limits the sender number as a whole, which the dispatcher paces."""
        return None

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        if self._http.session is not None:
            self._http.session.close()

    def _create(self, to: str, body: str, *, last: bool) -> str:
        # Receipts are matched on the row's provider id, the last part's sid: only it reports.
        callback = {"status_callback": self._status_callback} if last else {}
        created = self._client.messages.create(to=to, body=body, **self._origin, **callback)
        sid: str = created.sid
        return sid

    def _failure(self, message: Outgoing, exc: Exception, *, part: int) -> SendResult:
        retry_after = getattr(self._retry_after, "seconds", None)
        result = classify_error(exc, retry_after=retry_after)
        level = logging.ERROR if result.status_code in (401, 403) else logging.WARNING
        # Ids and codes only: Twilio's messages quote phone numbers.
        log.log(
            level,
            "sms.send_failed",
            extra={
                "outbox_id": message.id,
                "part": part,
                "outcome": result.outcome,
                "status_code": result.status_code,
                "error_code": result.error_code,
            },
        )
        return result

    def _remember_retry_after(self, response: requests.Response, *_: Any, **__: Any) -> None:
        # TwilioRestException drops the response headers; keep Retry-After for this thread.
        self._retry_after.seconds = parse_retry_after(response.headers.get("Retry-After"))


def sender_params(origin: str) -> dict[str, str]:
    """`from_` for an E.164 number, `messaging_service_sid` for a Messaging Service (MG…)."""
    if origin.startswith("MG"):
        return {"messaging_service_sid": origin}
    return {"from_": origin}


def classify_error(exc: Exception, *, retry_after: float | None = None) -> SendResult:
    """Map a Twilio or transport error to retry (429, 5xx, network) or failed (other 4xx)."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if not isinstance(status, int):
        # No HTTP answer: connection refused or reset, timeout, or a transport error.
        return SendResult("retry", detail=f"network error: {type(exc).__name__}")
    error_code = str(code) if code is not None else None
    detail = f"twilio {status} error {error_code}"
    if status == 429 or code == RATE_LIMITED:
        return SendResult(
            "retry",
            retry_after=retry_after,
            status_code=status,
            error_code=error_code,
            detail=detail,
        )
    if status >= 500:
        return SendResult("retry", status_code=status, error_code=error_code, detail=detail)
    return SendResult(
        "failed",
        status_code=status,
        error_code=error_code,
        detail=detail,
        stop_identity=code == UNSUBSCRIBED,
    )
