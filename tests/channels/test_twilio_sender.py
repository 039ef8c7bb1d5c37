"""TwilioSender against the fake Twilio REST API, driven by the real twilio `Client`."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException

from c3n_bot.channels.sms_encoding import segments
from c3n_bot.channels.sms_split import fits
from c3n_bot.channels.twilio_sms import TwilioSender, classify_error
from c3n_bot.config import Settings
from c3n_bot.service.delivery import Outgoing, SendResult, parse_retry_after
from c3n_bot.store.base import Channel
from tests.fakes import TEST_ACCOUNT_SID, FakeTwilioApi, LoopbackServer, guard_loopback
from tests.fakes.server import Request, Response
from tests.fakes.twilio_wire import error

TO = "+15551230001"
FROM = "+15005550006"
SERVICE_SID = "MG" + "0123456789abcdef" * 2
STATUS_URL = "http://testserver/webhooks/twilio/status"
PHQ_CHOICES = [
    {"item_id": "q1", "code": f"c{n}", "number": str(n), "label": label}
    for n, label in enumerate(
        ["Not at all", "Several days", "More than half the days", "Nearly every day"]
    )
]
# Four lines of Spanish, 311 UCS-2 units: two SMS (of two lines, 155 units) within budget.
LONG_SPANISH = "\n".join(
    f"{n} Durante las últimas dos semanas, ¿con qué frecuencia ha tenido molestias?"
    for n in range(1, 5)
)
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi() as fake:
        yield fake


def settings_for(url: str, *, token: str, origin: str = FROM) -> Settings:
    """Settings with the SMS channel pointed at a fake (no database needed)."""
    return Settings(
        demo=True,
        database_url="sqlite:///unused.db",
        public_url="http://testserver",
        twilio_account_sid=TEST_ACCOUNT_SID,
        twilio_auth_token=SecretStr(token),
        twilio_from=origin,
        twilio_api_url=url,
    )


@pytest.fixture
def sender(api: FakeTwilioApi, clean_env: Path) -> Iterator[TwilioSender]:
    twilio = TwilioSender(settings_for(api.url, token=api.auth_token))
    yield twilio
    twilio.close()


def outgoing(body: str, address: str = TO, **payload: Any) -> Outgoing:
    return Outgoing(
        id=next(_ids), channel=Channel.SMS, address=address, kind="reply", body=body,
        payload=payload,
    )  # fmt: skip


# -- bodies -------------------------------------------------------------------------------


def test_a_question_is_sent_with_numbered_options_and_hint(
    sender: TwilioSender, api: FakeTwilioApi
) -> None:
    message = outgoing("How often?", choices=PHQ_CHOICES, hint="Reply 0-3")
    result = sender.send(message)
    body = "How often?\n0 Not at all\n1 Several days\n2 More than half the days\n"
    body += "3 Nearly every day\n(Reply 0-3)"
    assert api.sent == [
        {
            "To": TO,
            "From": FROM,
            "Body": body,
            "StatusCallback": STATUS_URL,
            "sid": api.sent[0]["sid"],
        }
    ]
    assert result == SendResult("sent", provider_message_id=api.sent[0]["sid"])


def test_options_are_left_out_when_the_payload_says_so(
    sender: TwilioSender, api: FakeTwilioApi
) -> None:
    sender.send(outgoing("How often?", choices=PHQ_CHOICES, show_options=False, hint="Reply 0-3"))
    assert api.sent[0]["Body"] == "How often?\n(Reply 0-3)"


def test_smart_punctuation_becomes_gsm7(sender: TwilioSender, api: FakeTwilioApi) -> None:
    sender.send(outgoing("Don\u2019t worry \u2014 it\u2019s \u201cfine\u201d\u2026"))
    body = api.sent[0]["Body"]
    assert body == "Don't worry - it's \"fine\"..."
    assert segments(body).encoding == "GSM-7"
    assert api.messages[api.sent[0]["sid"]]["num_segments"] == "1"


def test_a_messaging_service_sends_without_a_from_number(
    api: FakeTwilioApi, clean_env: Path
) -> None:
    sender = TwilioSender(settings_for(api.url, token=api.auth_token, origin=SERVICE_SID))
    try:
        assert sender.send(outgoing("Hi")).outcome == "sent"
    finally:
        sender.close()
    assert api.sent[0]["MessagingServiceSid"] == SERVICE_SID and "From" not in api.sent[0]


# -- several parts ------------------------------------------------------------------------


def test_a_long_spanish_text_goes_as_parts_in_order(
    sender: TwilioSender, api: FakeTwilioApi
) -> None:
    result = sender.send(outgoing(LONG_SPANISH))
    bodies = [sent["Body"] for sent in api.sent]
    assert len(bodies) == 2 and "\n".join(bodies) == LONG_SPANISH
    assert all(fits(body) and segments(body).encoding == "UCS-2" for body in bodies)
    # Receipts follow the row's provider id, the last part's sid: only that part reports.
    assert ["StatusCallback" in sent for sent in api.sent] == [False, True]
    assert result.outcome == "sent"
    assert result.provider_message_id == api.sent[-1]["sid"]
    assert result.progress == {"parts_sent": 2}


class FlakyProxy:
    """Forwards to the fake Twilio API, but answers the `fail_at`-th create with a 503."""

    def __init__(self, target: str, fail_at: int) -> None:
        self._target = httpx.Client(base_url=target)
        self._fail_at = fail_at
        self._creates = 0
        self.server = LoopbackServer(self._handle)

    def _handle(self, request: Request) -> Response:
        if request.method == "POST":
            self._creates += 1
            if self._creates == self._fail_at:
                return error(20503)
        answer = self._target.request(
            request.method,
            request.path,
            content=request.body,
            headers={k: v for k, v in request.headers.items() if k != "host"},
        )
        return Response(answer.status_code, answer.content)

    def close(self) -> None:
        self.server.stop()
        self._target.close()


def test_a_retry_after_a_5xx_on_part_two_continues_with_part_two(
    api: FakeTwilioApi, clean_env: Path
) -> None:
    proxy = FlakyProxy(api.url, fail_at=2)
    proxy.server.start()
    sender = TwilioSender(settings_for(proxy.server.url, token=api.auth_token))
    try:
        first = sender.send(outgoing(LONG_SPANISH))
        assert (first.outcome, first.status_code, first.progress) == (
            "retry",
            503,
            {"parts_sent": 1},
        )
        assert len(api.sent) == 1
        # The dispatcher merges the progress into the row's payload before the retry.
        again = sender.send(outgoing(LONG_SPANISH, parts_sent=1))
    finally:
        sender.close()
        proxy.close()
    assert again.outcome == "sent" and again.provider_message_id == api.sent[-1]["sid"]
    assert "\n".join(sent["Body"] for sent in api.sent) == LONG_SPANISH  # each part once


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (400, 20429), (429, 20001)])
def test_rate_limited_sends_are_retried(
    sender: TwilioSender, api: FakeTwilioApi, status: int, code: int
) -> None:
    api.fail_next(status, code)
    result = sender.send(outgoing("Hi"))
    assert (result.outcome, result.status_code, result.error_code) == ("retry", status, str(code))
    assert result.retry_after is None  # no Retry-After header: the dispatcher backs off
    assert not result.stop_identity


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(sender: TwilioSender, api: FakeTwilioApi, status: int) -> None:
    api.fail_next(status)
    assert sender.send(outgoing("Hi")).outcome == "retry"


def test_an_unsubscribed_number_fails_and_stops_the_identity(
    sender: TwilioSender, api: FakeTwilioApi
) -> None:
    api.opt_out(TO)
    result = sender.send(outgoing("Hi"))
    assert (result.outcome, result.error_code, result.stop_identity) == ("failed", "21610", True)


def test_an_invalid_number_fails_without_stopping(
    sender: TwilioSender, api: FakeTwilioApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = sender.send(outgoing("Hi", address="5551230001"))
    assert (result.outcome, result.status_code, result.error_code) == ("failed", 400, "21211")
    assert not result.stop_identity and api.sent == []
    assert "5551230001" not in caplog.text and "5551230001" not in (result.detail or "")


def test_wrong_credentials_fail_and_are_logged_without_the_token(
    api: FakeTwilioApi, clean_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "0123456789" * 3 + "ab"
    caplog.set_level(logging.DEBUG)
    sender = TwilioSender(settings_for(api.url, token=wrong))
    try:
        result = sender.send(outgoing("Hi"))
    finally:
        sender.close()
    assert (result.outcome, result.status_code, result.error_code) == ("failed", 401, "20003")
    failures = [r for r in caplog.records if r.getMessage() == "sms.send_failed"]
    assert [r.levelno for r in failures] == [logging.ERROR]
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert wrong not in logged and TO not in logged and "Hi" not in caplog.messages


def test_network_errors_are_retried(clean_env: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    sender = TwilioSender(settings_for(f"http://127.0.0.1:{port}", token="x" * 32))
    try:
        result = sender.send(outgoing("Hi"))
    finally:
        sender.close()
    assert (result.outcome, result.detail) == ("retry", "network error: ConnectionError")


class _TooManyRequests(BaseHTTPRequestHandler):
    """Answers every request 429 with a Retry-After header (the fake sends none)."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"code": 20429, "message": "Too Many Requests", "status": 429})
        self.send_response(429)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def test_a_retry_after_header_is_honoured(clean_env: Path) -> None:
    with HTTPServer(("127.0.0.1", 0), _TooManyRequests) as server:
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        url = f"http://127.0.0.1:{server.server_port}"
        sender = TwilioSender(settings_for(url, token="x" * 32))
        try:
            result = sender.send(outgoing("Hi"))
        finally:
            sender.close()
            thread.join()
    assert (result.outcome, result.retry_after, result.error_code) == ("retry", 7.0, "20429")


def test_retry_after_header_values() -> None:
    values = ("3", "1.5", "86400", None, "", "-1", "inf", "nan", "Wed, 21 Oct 2015 07:28:00 GMT")
    assert [parse_retry_after(v) for v in values] == [3.0, 1.5, 3600.0] + [None] * 6
    refused = TwilioRestException(429, "/Messages.json", "Too Many Requests", 20429, "POST")
    limited = classify_error(refused, retry_after=2.0)
    assert (limited.outcome, limited.retry_after) == ("retry", 2.0)


# -- connections --------------------------------------------------------------------------


def test_sends_reuse_one_connection_until_closed(
    sender: TwilioSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[Any] = []
    connect = socket.socket.connect

    def counting(sock: socket.socket, address: Any) -> None:
        connects.append(address)
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    for _ in range(3):
        assert sender.send(outgoing("Hi")).outcome == "sent"
    assert len(connects) == 1
    sender.close()
    assert sender.send(outgoing("Hi")).outcome == "sent"
    assert len(connects) == 2  # the pool was emptied: a fresh connection


def test_there_is_no_per_recipient_rate_bucket(sender: TwilioSender) -> None:
    # Twilio limits the sender number as a whole (C3N_TWILIO_MPS), paced by the dispatcher.
    assert sender.rate_key(outgoing("Hi")) is None


def test_the_sender_refuses_to_start_unconfigured(clean_env: Path) -> None:
    settings = Settings(demo=True, database_url="sqlite:///unused.db")
    with pytest.raises(ValueError, match="C3N_TWILIO_ACCOUNT_SID"):
        TwilioSender(settings)
