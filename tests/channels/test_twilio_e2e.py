"""SMS end to end: signed webhooks into the real app, replies out through the real twilio Client.

The fake Twilio API posts signed webhooks with the app's TestClient and receives what the
dispatcher sends with TwilioSender; the dispatcher is driven explicitly (never a sleep), on a
clock the test moves. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from c3n_bot.channels.sms_encoding import is_gsm7
from c3n_bot.channels.sms_split import fits
from c3n_bot.channels.twilio_sms import TwilioSender
from c3n_bot.config import Settings
from c3n_bot.engine.prompts import fill
from c3n_bot.service import texts
from c3n_bot.service.conversations import start_flow
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.service.enrollment import create_invitation
from c3n_bot.service.sessions import StartError
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.models import ChannelIdentity, InboundMessage, OutboxMessage, Submission
from c3n_bot.store.models.conversations import OutboxStatus, SubmissionStatus
from c3n_bot.web import webhooks_twilio
from c3n_bot.web.app import create_app
from tests.builders import link, make_contact, make_patient
from tests.fakes import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, FakeTwilioApi, guard_loopback
from tests.fakes.limits import MovableClock
from tests.fakes.twilio import SERVICE_NUMBER
from tests.fakes.twilio_wire import inbound_form

PUBLIC_URL = "http://testserver"
SMS_URL = f"{PUBLIC_URL}/webhooks/twilio/sms"
STATUS_URL = f"{PUBLIC_URL}/webhooks/twilio/status"
PHONE = "+16175550142"
STRANGER = "+16175550199"
PROGRAM = {"program": "Test Network", "center": "Test Center"}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


@dataclass
class SmsWorld:
    """The app, the fake Twilio API, a dispatcher over TwilioSender, and the invited contact."""

    client: TestClient
    api: FakeTwilioApi
    dispatcher: Dispatcher
    sessions: sessionmaker[Session]
    clock: MovableClock
    code: str = ""
    contact_id: uuid.UUID | None = None
    delivered: int = field(default=0)

    def text(self, body: str, *, from_: str = PHONE, sid: str | None = None) -> None:
        """Twilio posts an incoming SMS; the app must answer empty TwiML."""
        response = self.api.inbound_sms(
            SMS_URL, from_, SERVICE_NUMBER, body, sid, post=self.client.post
        )
        assert response.status_code == 200, response.text
        assert response.text == EMPTY_TWIML
        assert response.headers["content-type"].startswith("text/xml")

    def deliver(self, to: str = PHONE) -> list[str]:
        """Send everything due; the bodies that reached `to` since the last call."""
        for _ in range(100):
            if self.dispatcher.drain_once() == 0:
                break
        new = self.api.sent[self.delivered :]
        self.delivered = len(self.api.sent)
        return [sent["Body"] for sent in new if sent["To"] == to]

    def say(self, body: str, **kwargs: Any) -> list[str]:
        """Text the app and return what it sent back."""
        self.text(body, **kwargs)
        return self.deliver(kwargs.get("from_", PHONE))

    def count(self, model: type[Any]) -> int:
        with self.sessions() as db:
            return db.scalar(select(func.count()).select_from(model)) or 0

    def identity(self, address: str = PHONE) -> ChannelIdentity:
        with self.sessions() as db:
            found = db.scalar(select(ChannelIdentity).where(ChannelIdentity.address == address))
        assert found is not None
        return found


def sms_settings(settings: Settings, api: FakeTwilioApi) -> Settings:
    """The test's settings with the SMS channel pointed at the fake."""
    return settings.model_copy(
        update={
            "twilio_account_sid": api.account_sid,
            "twilio_auth_token": SecretStr(api.auth_token),
            "twilio_from": "+15005550006",
            "twilio_api_url": api.url,
            "public_url": PUBLIC_URL,
        }
    )


def build_app(settings: Settings, clock: MovableClock) -> FastAPI:
    """The real app; the Twilio routes are included here until create_app wires them."""
    app = create_app(settings, clock=clock)
    if not any(getattr(route, "path", "") == "/webhooks/twilio/sms" for route in app.routes):
        app.include_router(webhooks_twilio.router)
    return app


def invite(sessions: sessionmaker[Session], now: datetime) -> tuple[str, uuid.UUID]:
    """A patient reporting for themself, invited by SMS code; (code, contact id)."""
    with sessions() as db:
        patient = make_patient(db, now=now)
        contact = make_contact(db, now=now)
        link(db, contact=contact, patient=patient, relation=Relationship.SELF)
        invitation = create_invitation(
            db,
            patient_id=patient.id,
            contact_id=contact.id,
            allowed_centers={patient.center_id},
            now=now,
        )
        db.commit()
        return invitation.enrollment.sms_code, contact.id


@pytest.fixture
def sms(settings: Settings, now: datetime) -> Iterator[SmsWorld]:
    clock = MovableClock(now)
    with FakeTwilioApi() as api:
        configured = sms_settings(settings, api)
        app = build_app(configured, clock)
        sessions = app.state.c3n.sessions
        dispatcher = Dispatcher(sessions, {Channel.SMS: TwilioSender(configured)}, clock)
        with TestClient(app, base_url=PUBLIC_URL) as client:
            world = SmsWorld(client, api, dispatcher, sessions, clock)
            world.code, world.contact_id = invite(sessions, now)
            yield world
        dispatcher.stop()


def enroll(sms: SmsWorld) -> None:
    """JOIN by code and consent to everything."""
    sms.say(f"JOIN {sms.code}")
    for _ in range(4):
        sms.say("yes")


def signed(
    form: dict[str, str], url: str = SMS_URL, token: str = TEST_AUTH_TOKEN
) -> dict[str, str]:
    """The headers of a request signed for `url` with `token` (the fake account's by default)."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


def join_form(code: str, sid: str = "SM" + "f" * 32, from_: str = PHONE) -> dict[str, str]:
    """An incoming `JOIN <code>` as Twilio posts it."""
    return inbound_form(
        account_sid=TEST_ACCOUNT_SID, sid=sid, from_=from_, to=SERVICE_NUMBER, body=f"JOIN {code}"
    )


# -- enrollment and a whole PHQ-9 by text -------------------------------------------------

PHQ9_REPLIES = [
    # (as typed, expected code): numbers, option words, a misspelling
    ("1", "LA6569-3"),
    ("several days", "LA6569-3"),
    ("nearly evry day", "LA6571-9"),
    ("0", "LA6568-5"),
    ("Not at all", "LA6568-5"),
    (" 2 ", "LA6570-1"),
    ("0", "LA6568-5"),
    ("never", "LA6568-5"),
    ("0", "LA6568-5"),
    ("somewhat difficult", "LA6573-5"),
]


def test_join_consent_and_phq9_by_text(sms: SmsWorld) -> None:
    welcome = sms.say(f"join {sms.code.lower()}")
    assert welcome[0] == fill(texts.ENROLLED, PROGRAM)
    assert welcome[1].startswith("Welcome to the messaging service of Test Center.")
    for _ in range(4):
        sms.say("Yes")
    assert sms.identity().contact_id == sms.contact_id

    asked = sms.say("phq9")
    assert "Over the last 2 weeks" in asked[0] and "(Reply 0-3)" in asked[-1]
    sent: list[str] = []
    for reply, _code in PHQ9_REPLIES:
        sent += sms.say(reply)
    assert sent[-1].startswith("Thank you. Your PHQ-9 score is 7 (mild)")

    with sms.sessions() as db:
        submission = db.scalars(select(Submission)).one()
        assert (submission.status, submission.channel) == (SubmissionStatus.COMPLETED, Channel.SMS)
        assert {k: a["code"] for k, a in submission.answers.items()} == {
            f"q{n}": code for n, (_reply, code) in enumerate(PHQ9_REPLIES, start=1)
        }
        assert submission.scores == {"total": 7}
    every = [message["Body"] for message in sms.api.sent]
    assert all(is_gsm7(body) and fits(body) for body in every)  # English, within budget
    assert {message["To"] for message in sms.api.sent} == {PHONE}


# -- forged, malformed and replayed webhooks ----------------------------------------------


def test_forged_webhooks_get_403_and_change_nothing(sms: SmsWorld) -> None:
    form = join_form(sms.code)
    forgeries = {
        "/webhooks/twilio/sms": [
            signed(form, token="0123456789abcdef" * 2),  # another account's token
            signed(form, url="https://evil.example/webhooks/twilio/sms"),  # another URL
            signed({**form, "Body": "JOIN SOMEONE"}),  # the form changed after signing
            {"X-Twilio-Signature": ""},
            {},
        ],
        "/webhooks/twilio/sms?retry=1": [signed(form)],  # signed without the query
        "/webhooks/twilio/status": [signed(form, url=SMS_URL), {}],
    }
    for path, attempts in forgeries.items():
        for headers in attempts:
            assert sms.client.post(path, data=form, headers=headers).status_code == 403
    assert [sms.count(model) for model in (InboundMessage, OutboxMessage, ChannelIdentity)] == [
        0,
        0,
        0,
    ]
    assert sms.deliver() == [] and sms.api.sent == []


def test_a_signed_query_string_is_part_of_the_url(sms: SmsWorld) -> None:
    form = join_form(sms.code)
    url = f"{SMS_URL}?source=twilio"
    response = sms.client.post(url, data=form, headers=signed(form, url=url))
    assert response.status_code == 200
    assert sms.deliver()[0] == fill(texts.ENROLLED, PROGRAM)


def test_a_url_signed_with_its_default_port_is_accepted_too(sms: SmsWorld) -> None:
    # Twilio's side sometimes signs the URL with the scheme's port written out; twilio's
    # RequestValidator accepts both forms, and so does the webhook.
    form = join_form(sms.code)
    with_port = SMS_URL.replace(PUBLIC_URL, f"{PUBLIC_URL}:80")
    response = sms.client.post(SMS_URL, data=form, headers=signed(form, url=with_port))
    assert response.status_code == 200
    assert sms.deliver()[0] == fill(texts.ENROLLED, PROGRAM)


def test_the_webhooks_refuse_everything_when_twilio_is_not_configured(
    settings: Settings, now: datetime
) -> None:
    form = join_form("ABCD2345")
    with TestClient(build_app(settings, MovableClock(now)), base_url=PUBLIC_URL) as client:
        for url in (SMS_URL, STATUS_URL):
            assert client.post(url, data=form, headers=signed(form, url=url)).status_code == 403


def test_only_a_url_encoded_form_is_read(sms: SmsWorld) -> None:
    form = join_form(sms.code)
    headers = signed(form)
    as_files = {name: (None, value) for name, value in form.items()}
    assert sms.client.post(SMS_URL, files=as_files, headers=headers).status_code == 403
    assert sms.client.post(SMS_URL, json=form, headers=headers).status_code == 403
    latin1 = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    assert sms.client.post(SMS_URL, content=b"Body=\xe9", headers=latin1).status_code == 403
    assert sms.count(InboundMessage) == 0
    # The same form, URL-encoded with a charset, is read and answered.
    utf8 = {**headers, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert sms.client.post(SMS_URL, content=urlencode(form), headers=utf8).status_code == 200
    assert sms.count(InboundMessage) == 1


def test_a_signed_request_without_a_message_sid_is_a_400(sms: SmsWorld) -> None:
    form = {k: v for k, v in join_form(sms.code).items() if k != "MessageSid"}
    assert sms.client.post(SMS_URL, data=form, headers=signed(form)).status_code == 400
    assert sms.count(InboundMessage) == 0


def test_a_sender_that_is_not_a_phone_number_gets_no_reply(sms: SmsWorld) -> None:
    sms.text(f"JOIN {sms.code}", from_="22395")  # a short code
    assert sms.count(InboundMessage) == 0 and sms.deliver(to="22395") == []


def test_a_webhook_replayed_five_times_is_one_answer_and_one_reply(sms: SmsWorld) -> None:
    enroll(sms)
    sms.say("PHQ9")
    rows = sms.count(OutboxMessage)
    for _ in range(5):
        sms.text("2", sid="SM" + "a" * 32)
    assert sms.deliver() == ["(2 of 10) Feeling down, depressed, or hopeless"]
    assert sms.count(OutboxMessage) == rows + 1
    with sms.sessions() as db:
        recorded = db.scalars(select(InboundMessage.body).where(InboundMessage.body == "2")).all()
    assert recorded == ["2"]


def test_a_webhook_logs_one_line_that_says_what_became_of_its_message(
    sms: SmsWorld, caplog: pytest.LogCaptureFixture
) -> None:
    enroll(sms)
    sms.say("PHQ9")
    caplog.set_level(logging.INFO)
    sms.text("2", sid="SM" + "b" * 32)
    sms.text("2", sid="SM" + "b" * 32)
    lines = [r for r in caplog.records if r.name.startswith("c3n_bot")]
    assert [r.getMessage() for r in lines] == ["http.request", "http.request"]
    with sms.sessions() as db:
        stored = db.scalar(
            select(InboundMessage.id).where(InboundMessage.provider_message_id == "SM" + "b" * 32)
        )
    first, replay = (r.__dict__ for r in lines)
    assert first["route"] == "/webhooks/twilio/sms" and first["status"] == 200
    assert first["inbound.handled"] == {"inbound_id": stored, "outcome": "answered"}
    assert replay["inbound.duplicate"] == {"channel": "sms"}
    assert "inbound.handled" not in replay


# -- keywords -----------------------------------------------------------------------------

STOP_WORDS = ["STOP", "stopall", "Unsubscribe", "cancel", "END", "Quit", "revoke", "OptOut"]
START_WORDS = ["START", "unstop", "Yes"]
STOPPED = fill(texts.STOPPED, PROGRAM)
RESTARTED = fill(texts.RESTARTED, PROGRAM)
HELP = fill(texts.HELP, PROGRAM)


def test_every_stop_word_confirms_then_nothing_is_sent_until_start(sms: SmsWorld) -> None:
    enroll(sms)
    enrolled = sms.count(OutboxMessage)
    for n, word in enumerate(STOP_WORDS):
        start_phq9(sms)  # due prompts, not sent yet when the STOP arrives
        assert sms.say(word) == [STOPPED]
        assert sms.identity().stopped_at is not None
        assert sms.say("PHQ9") == [] and sms.say("hello") == []
        with pytest.raises(StartError):
            start_phq9(sms)
        assert sms.deliver() == []
        assert sms.say(START_WORDS[n % len(START_WORDS)]) == [RESTARTED]
        assert sms.identity().stopped_at is None
    with sms.sessions() as db:
        later = select(OutboxMessage.status, func.count()).where(OutboxMessage.id > enrolled)
        counts = {status: n for status, n in db.execute(later.group_by(OutboxMessage.status))}
    # Per round: the PHQ-9 intro and question cancelled; the STOP and START answers sent.
    assert counts == {OutboxStatus.CANCELLED: 16, OutboxStatus.SENT: 16}


def start_phq9(sms: SmsWorld) -> None:
    """The care team (or the schedule) starts a PHQ-9 for the contact now."""
    assert sms.contact_id is not None
    with sms.sessions() as db:
        start_flow(
            db,
            contact_id=sms.contact_id,
            flow_id="phq9",
            patient_id=None,
            services=sms.client.app.state.c3n.services,  # type: ignore[attr-defined]
            now=sms.clock(),
        )
        db.commit()


def test_help_and_info_answer_even_after_stop(sms: SmsWorld) -> None:
    enroll(sms)
    for word in ["HELP", "help", "Info", "INFO"]:
        assert sms.say(word) == [HELP]
    assert sms.say("stop") == [STOPPED]
    assert sms.say("Help") == [HELP]
    assert sms.say("Yes") == [RESTARTED]


def test_an_unknown_sender_gets_one_not_enrolled_reply_a_day(sms: SmsWorld) -> None:
    first = sms.say("hello", from_=STRANGER)
    assert len(first) == 1 and first[0].startswith(texts.NOT_ENROLLED)
    assert sms.say("hello?", from_=STRANGER) == []
    sms.clock.advance(hours=23)
    assert sms.say("anyone?", from_=STRANGER) == []
    sms.clock.advance(hours=1, minutes=1)
    assert len(sms.say("hi", from_=STRANGER)) == 1
    other = "+16175550198"
    refused = sms.say("JOIN ZZZZ2345", from_=other)
    assert len(refused) == 1 and refused[0].startswith(texts.CODE_UNKNOWN)


# -- delivery receipts --------------------------------------------------------------------


def test_status_callbacks_move_the_outbox_row(sms: SmsWorld) -> None:
    enroll(sms)
    sid = sms.api.sent[-1]["sid"]
    steps = [
        ("queued", OutboxStatus.QUEUED),
        ("sent", OutboxStatus.SENT),
        ("delivered", OutboxStatus.DELIVERED),
        ("sent", OutboxStatus.DELIVERED),  # late and out of order: never undoes a final one
    ]
    for status, expected in steps:
        assert receipt(sms, sid, status) == 204
        assert row_of(sms, sid).status == expected
    for status, code, expected in [
        ("undelivered", 30007, OutboxStatus.UNDELIVERED),
        ("failed", 30008, OutboxStatus.FAILED),
    ]:
        sms.say("help")
        sid = sms.api.sent[-1]["sid"]
        assert receipt(sms, sid, status, code) == 204
        row = row_of(sms, sid)
        assert (row.status, row.last_error) == (expected, f"provider error {code}")
    assert sms.identity().stopped_at is None


def test_an_unsubscribed_receipt_stops_the_number(sms: SmsWorld) -> None:
    enroll(sms)
    assert receipt(sms, sms.api.sent[-1]["sid"], "failed", 21610) == 204
    assert sms.identity().stopped_at is not None
    assert sms.say("PHQ9") == []


def test_a_receipt_for_an_unknown_message_is_accepted_and_ignored(sms: SmsWorld) -> None:
    form = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered"}
    response = sms.client.post(STATUS_URL, data=form, headers=signed(form, url=STATUS_URL))
    assert response.status_code == 204 and sms.count(OutboxMessage) == 0


def receipt(sms: SmsWorld, sid: str, status: str, error_code: int | None = None) -> int:
    """Twilio posts a signed status callback for one message; the app's HTTP status."""
    return sms.api.deliver_status(sid, status, error_code, post=sms.client.post).status_code


def row_of(sms: SmsWorld, sid: str) -> OutboxMessage:
    with sms.sessions() as db:
        row = db.scalar(select(OutboxMessage).where(OutboxMessage.provider_message_id == sid))
    assert row is not None
    return row


# -- the database is down -----------------------------------------------------------------


def unreachable_urls(tmp_path: Path) -> list[str]:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    # A directory is no SQLite file; nothing listens on the closed port.
    return [f"sqlite:///{tmp_path}", f"postgresql://c3n:pw@127.0.0.1:{port}/c3n"]


def test_webhooks_answer_503_when_the_database_is_unreachable(
    clean_env: Path, tmp_path: Path, now: datetime
) -> None:
    for url in unreachable_urls(tmp_path):
        settings = Settings(
            secret_key=SecretStr("test-only-secret-key-0123456789abcdefghi"),
            database_url=url,
            public_url=PUBLIC_URL,
            twilio_account_sid=TEST_ACCOUNT_SID,
            twilio_auth_token=SecretStr(TEST_AUTH_TOKEN),
            twilio_from="+15005550006",
        )
        form = join_form("ABCD2345")
        status_form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
        with TestClient(build_app(settings, MovableClock(now)), base_url=PUBLIC_URL) as client:
            sms = client.post(SMS_URL, data=form, headers=signed(form))
            receipt = client.post(
                STATUS_URL, data=status_form, headers=signed(status_form, url=STATUS_URL)
            )
        assert (sms.status_code, receipt.status_code) == (503, 503), url
