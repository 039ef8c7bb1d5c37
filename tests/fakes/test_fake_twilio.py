"""The fake Twilio REST API answers the real twilio `Client` as Twilio does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.limits import ManualClock
from tests.fakes.server import LoopbackServer, Request, Response
from tests.fakes.twilio import FakeTwilioApi
from tests.fakes.twilio_wire import segments

TO = "+15551230001"
FROM = "+15550009999"
STATUS_URL = "http://testserver/webhooks/twilio/status"


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi() as fake:
        yield fake


@contextmanager
def twilio_client(api: FakeTwilioApi, auth_token: str | None = None) -> Iterator[Any]:
    """The real client pointed at the fake, its connection pool closed afterwards."""
    client = Client(api.account_sid, auth_token or api.auth_token)
    client.api.base_url = api.url
    with client.http_client.session:
        yield client


@pytest.fixture
def client(api: FakeTwilioApi) -> Iterator[Any]:
    with twilio_client(api) as client:
        yield client


class Recorder:
    """A `post` that keeps what it was given instead of sending it."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], dict[str, str]]] = []

    def __call__(self, url: str, *, data: dict[str, str], headers: dict[str, str]) -> int:
        self.posts.append((url, data, headers))
        return 204


def send(client: Any, to: str = TO, **extra: Any) -> Any:
    return client.messages.create(to=to, from_=FROM, body="Hello", **extra)


def test_create_returns_a_queued_message(client: Any, api: FakeTwilioApi) -> None:
    message = send(client, status_callback=STATUS_URL)
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.from_, message.body) == (
        "queued",
        TO,
        FROM,
        "Hello",
    )
    assert (message.num_segments, message.account_sid) == ("1", api.account_sid)
    assert isinstance(message.date_created, datetime)
    assert api.sent == [
        {"To": TO, "From": FROM, "Body": "Hello", "StatusCallback": STATUS_URL, "sid": message.sid}
    ]
    assert client.messages(message.sid).fetch().status == "queued"


def test_a_messaging_service_message_is_accepted(client: Any) -> None:
    service = "MG" + "0" * 32
    message = client.messages.create(to=TO, messaging_service_sid=service, body="Hi")
    assert (message.status, message.messaging_service_sid, message.from_) == (
        "accepted",
        service,
        None,
    )


def test_segments_follow_gsm7_and_ucs2() -> None:
    assert [segments("a" * 160), segments("a" * 161), segments("€" * 80)] == [1, 2, 1]
    assert [segments("’" * 70), segments("’" * 71), segments("😀" * 35)] == [1, 2, 1]
    assert segments("é" * 160) == 1  # é is GSM-7, unlike ’ or —


def test_wrong_credentials_are_refused_with_20003(api: FakeTwilioApi) -> None:
    with twilio_client(api, auth_token="0" * 32) as client:
        with pytest.raises(TwilioRestException) as refused:
            send(client)
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert api.sent == [] and api.calls == []


def test_unsubscribed_recipient_is_refused_with_21610(client: Any, api: FakeTwilioApi) -> None:
    api.fail_next(400, 21610)
    with pytest.raises(TwilioRestException) as once:
        send(client)
    assert (once.value.status, once.value.code) == (400, 21610)
    api.opt_out(TO)
    with pytest.raises(TwilioRestException, match="unsubscribed recipient"):
        send(client)
    api.opt_in(TO)
    assert send(client).status == "queued"


def test_invalid_number_is_refused_with_21211(client: Any) -> None:
    with pytest.raises(TwilioRestException) as invalid:
        send(client, to="5551230001")
    assert (invalid.value.status, invalid.value.code) == (400, 21211)


def test_injected_429_and_5xx(client: Any, api: FakeTwilioApi) -> None:
    api.fail_next(429)
    api.fail_next(503)
    codes = []
    for _ in range(2):
        with pytest.raises(TwilioRestException) as failed:
            send(client)
        codes.append((failed.value.status, failed.value.code))
    assert codes == [(429, 20429), (503, 20503)]
    assert api.violations == 0


def test_enforced_rate_answers_429_and_counts_violations(clock: ManualClock) -> None:
    with FakeTwilioApi(clock=clock) as api, twilio_client(api) as client:
        api.enforce_rate(2)
        send(client)
        send(client)
        with pytest.raises(TwilioRestException) as limited:
            send(client)
        clock.now += 1.0
        send(client)
    assert (limited.value.status, limited.value.code) == (429, 20429)
    assert (api.violations, len(api.sent)) == (1, 3)


def test_status_callback_is_signed_and_updates_the_message(client: Any, api: FakeTwilioApi) -> None:
    sid = send(client, status_callback=STATUS_URL).sid
    post = Recorder()
    api.deliver_status(sid, "undelivered", 30007, post=post)
    url, form, headers = post.posts[0]
    assert url == STATUS_URL
    assert RequestValidator(api.auth_token).validate(url, form, headers["X-Twilio-Signature"])
    assert (form["MessageSid"], form["MessageStatus"], form["ErrorCode"]) == (
        sid,
        "undelivered",
        "30007",
    )
    assert (form["To"], form["From"], form["AccountSid"]) == (TO, FROM, api.account_sid)
    assert client.messages(sid).fetch().status == "undelivered"


def test_status_needs_a_callback_url(client: Any, api: FakeTwilioApi) -> None:
    with pytest.raises(ValueError, match="StatusCallback"):
        api.deliver_status(send(client).sid, "sent", post=Recorder())


def test_inbound_sms_reaches_a_real_server_with_a_valid_signature(api: FakeTwilioApi) -> None:
    validator = RequestValidator(api.auth_token)
    verdicts: list[bool] = []

    def app(request: Request) -> Response:
        form = {key: str(value) for key, value in request.params().items()}
        url = f"http://{request.headers['host']}{request.path}"
        verdicts.append(validator.validate(url, form, request.headers["x-twilio-signature"]))
        return Response(200, b"<Response/>", "text/xml")

    with LoopbackServer(app) as server:
        url = f"{server.url}/webhooks/twilio/sms"
        answer = api.inbound_sms(url, TO, FROM, "JOIN ab12", post=httpx.post)
    assert (answer.status_code, answer.text, verdicts) == (200, "<Response/>", [True])


def test_signature_for_lets_tests_forge_bad_signatures(api: FakeTwilioApi) -> None:
    post = Recorder()
    api.inbound_sms("https://bot.example.org/webhooks/twilio/sms", TO, FROM, "STOP", post=post)
    url, form, headers = post.posts[0]
    assert (form["Body"], form["From"], form["NumMedia"]) == ("STOP", TO, "0")
    assert form["MessageSid"] == form["SmsSid"] and form["MessageSid"].startswith("SM")
    assert headers["X-Twilio-Signature"] == api.signature_for(url, form)
    forged = api.signature_for("https://evil.example.org/webhooks/twilio/sms", form)
    assert not RequestValidator(api.auth_token).validate(url, form, forged)
