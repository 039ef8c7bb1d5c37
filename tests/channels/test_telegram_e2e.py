"""Telegram end to end: updates into the real app, replies out through the real `telegram.Bot`.

The fake Bot API posts updates to the app's webhook (TestClient) with the registered secret
and receives what the dispatcher sends with TelegramSender; the dispatcher is driven
explicitly (never a sleep). Polling is driven one getUpdates at a time, and once as a
thread to check that it stops promptly. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.channels.telegram import (
    CURSOR,
    WEBHOOK_PATH,
    TelegramPoller,
    TelegramSender,
    bot_username,
    parse_update,
    register_webhook,
)
from c3n_bot.config import Settings
from c3n_bot.engine.events import MessageOut
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, StartError, start_flow
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.service.enrollment import create_invitation
from c3n_bot.service.outbox import enqueue
from c3n_bot.service.receipts import read_cursor
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.models import ChannelIdentity, InboundMessage, OutboxMessage, Submission
from c3n_bot.store.models.conversations import OutboxStatus, SubmissionStatus
from c3n_bot.web import webhooks_telegram
from c3n_bot.web.app import create_app
from tests.builders import link, make_contact, make_patient
from tests.fakes import FakeTelegramApi

PUBLIC_URL = "http://testserver"
SECRET = "test-webhook-secret_0123456789"
CHAT = 5550001
STRANGER = 5550999


@dataclass(frozen=True)
class Invited:
    """A patient reporting for themself, invited to Telegram."""

    token: str
    contact_id: uuid.UUID
    patient_id: uuid.UUID


@dataclass
class TelegramWorld:
    """The app, the fake Bot API, a dispatcher over TelegramSender, and the invited contact."""

    client: TestClient
    api: FakeTelegramApi
    dispatcher: Dispatcher
    sessions: sessionmaker[Session]
    services: Services
    clock: Callable[[], datetime]
    invited: Invited

    def deliver(self, update: dict[str, Any]) -> None:
        """Telegram posts an update to the registered webhook with its secret: 200, ok."""
        response = self.api.deliver_update(update, post=self.client.post)
        assert response.status_code == 200, response.text
        assert response.json() == {"ok": True}

    def drain(self) -> None:
        """Send everything due."""
        for _ in range(100):
            if self.dispatcher.drain_once() == 0:
                return
        raise AssertionError("the outbox never emptied")

    def say(self, text: str, chat: int = CHAT) -> None:
        """The user types a message; the replies are sent."""
        self.deliver(self.api.text_update(chat, text))
        self.drain()

    def question(self) -> dict[str, Any]:
        """The last message sent to the chat, which must carry buttons."""
        last = [m for m in self.api.sent if m["chat_id"] == CHAT][-1]
        assert "reply_markup" in last, f"no buttons on the last message: {last['text']!r}"
        return last

    def press(self, label: str) -> dict[str, Any]:
        """Press a button of the last question by its label; returns the update delivered."""
        question = self.question()
        [data] = [
            row[0]["callback_data"]
            for row in question["reply_markup"]["inline_keyboard"]
            if row[0]["text"] == label
        ]
        update = self.api.callback_update(CHAT, data, question["message_id"])
        self.deliver(update)
        self.drain()
        return update

    def count(self, model: type[Any]) -> int:
        with self.sessions() as db:
            return db.scalar(select(func.count()).select_from(model)) or 0

    def start_phq9(self) -> None:
        """The care team starts a PHQ-9 now (as the sessions API does)."""
        with self.sessions.begin() as db:
            start_flow(
                db,
                contact_id=self.invited.contact_id,
                flow_id="phq9",
                patient_id=self.invited.patient_id,
                services=self.services,
                now=self.clock(),
                channel=Channel.TELEGRAM,
            )


def telegram_settings(settings: Settings, api: FakeTelegramApi, **changes: Any) -> Settings:
    """The test's settings with the Telegram channel (webhook mode) pointed at the fake."""
    update: dict[str, Any] = {
        "telegram_token": SecretStr(api.token),
        "telegram_api_url": api.url,
        "telegram_mode": "webhook",
        "telegram_webhook_secret": SecretStr(SECRET),
        "public_url": PUBLIC_URL,
    }
    return settings.model_copy(update={**update, **changes})


def build_app(settings: Settings, now: datetime) -> FastAPI:
    """The real app; the Telegram route is included here should create_app not wire it."""
    app = create_app(settings, clock=lambda: now)
    if not any(getattr(route, "path", "") == WEBHOOK_PATH for route in app.routes):
        app.include_router(webhooks_telegram.router)
    return app


def invite(sessions: sessionmaker[Session], now: datetime) -> Invited:
    """Seed a patient with their own contact and a Telegram invitation."""
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
        return Invited(invitation.enrollment.token, contact.id, patient.id)


@pytest.fixture
def api() -> Iterator[FakeTelegramApi]:
    """The fake Bot API on loopback."""
    with FakeTelegramApi() as fake:
        yield fake


@pytest.fixture
def tg(settings: Settings, api: FakeTelegramApi, now: datetime) -> Iterator[TelegramWorld]:
    """The app in webhook mode with its webhook registered at the fake."""
    configured = telegram_settings(settings, api)
    app = build_app(configured, now)
    state = app.state.c3n
    sender = TelegramSender(configured)
    dispatcher = Dispatcher(state.sessions, {Channel.TELEGRAM: sender}, state.clock)
    with TestClient(app, base_url=PUBLIC_URL) as client:
        if api.webhook is None:  # start-up registers it once create_app does so
            register_webhook(configured)
        invited = invite(state.sessions, now)
        yield TelegramWorld(
            client, api, dispatcher, state.sessions, state.services, state.clock, invited
        )
    sender.close()


def enroll(tg: TelegramWorld) -> None:
    """Open the deep link and consent to everything."""
    tg.say(f"/start {tg.invited.token}")
    while "reply_markup" in tg.api.sent[-1]:
        tg.press("Yes")


# -- set-up -------------------------------------------------------------------------------


def test_the_webhook_is_registered_with_its_secret_and_update_types(
    settings: Settings, api: FakeTelegramApi
) -> None:
    register_webhook(telegram_settings(settings, api))
    assert api.webhook == {
        "url": f"{PUBLIC_URL}/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }
    assert bot_username(telegram_settings(settings, api)) == "c3n_test_bot"


# -- enrollment and PHQ-9 with buttons ----------------------------------------------------

PHQ9 = ["Several days"] + ["Not at all"] * 8 + ["Somewhat difficult"]


def test_enroll_by_deep_link_and_answer_phq9_with_buttons(tg: TelegramWorld) -> None:
    tg.say(f"/start {tg.invited.token}")
    first = tg.question()
    buttons = [row[0] for row in first["reply_markup"]["inline_keyboard"]]
    assert [b["text"] for b in buttons] == ["Yes", "No"]
    assert [b["callback_data"] for b in buttons] == ["pro_reports:yes", "pro_reports:no"]
    assert "(Reply" not in first["text"]  # buttons, not a typing hint

    presses = 0
    while "reply_markup" in tg.api.sent[-1]:
        tg.press("Yes")
        presses += 1
    assert presses == 4  # the four consent purposes

    tg.start_phq9()
    tg.drain()
    assert tg.question()["text"] == "(1 of 10) Little interest or pleasure in doing things"
    assert tg.api.sent[-2]["text"].startswith("Over the last 2 weeks")  # the intro
    for label in PHQ9:
        tg.press(label)
    assert "reply_markup" not in tg.api.sent[-1]  # the closing message

    # Every press answered at once, and the question kept with the chosen option under it.
    assert len(tg.api.answers) == presses + len(PHQ9)
    assert [e["text"].rsplit("✓ ", 1)[1] for e in tg.api.edits] == ["Yes"] * 4 + PHQ9
    assert all("reply_markup" not in edit for edit in tg.api.edits)
    with tg.sessions() as db:
        [submission] = db.scalars(select(Submission).where(Submission.flow_id == "phq9")).all()
        assert submission.status == SubmissionStatus.COMPLETED
        assert submission.channel == Channel.TELEGRAM
        assert submission.scores["total"] == 1
        outbox = db.scalars(select(OutboxMessage)).all()
        assert {row.status for row in outbox} == {OutboxStatus.SENT}


def test_a_used_token_gets_a_clear_reply(tg: TelegramWorld) -> None:
    enroll(tg)
    before = len(tg.api.sent)
    tg.say(f"/start {tg.invited.token}", chat=STRANGER)
    [reply] = tg.api.sent[before:]
    assert reply["chat_id"] == STRANGER and "invitation was already used" in reply["text"]


# -- forged and repeated traffic ----------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {webhooks_telegram.SECRET_HEADER: "wrong"}])
def test_a_wrong_or_missing_secret_is_refused_and_changes_nothing(
    tg: TelegramWorld, headers: dict[str, str]
) -> None:
    update = tg.api.text_update(CHAT, f"/start {tg.invited.token}")
    response = tg.client.post(WEBHOOK_PATH, json=update, headers=headers)
    assert response.status_code == 403
    tg.drain()
    assert (tg.count(InboundMessage), tg.count(ChannelIdentity), tg.api.sent) == (0, 0, [])


def test_no_secret_configured_refuses_everything(
    settings: Settings, api: FakeTelegramApi, now: datetime
) -> None:
    configured = telegram_settings(
        settings, api, telegram_mode="polling", telegram_webhook_secret=None
    )
    with TestClient(build_app(configured, now), base_url=PUBLIC_URL) as client:
        update = api.text_update(CHAT, "hello")
        for headers in ({}, {webhooks_telegram.SECRET_HEADER: ""}):
            assert client.post(WEBHOOK_PATH, json=update, headers=headers).status_code == 403


def test_a_body_that_is_not_an_update_object_is_a_bad_request(tg: TelegramWorld) -> None:
    headers = {webhooks_telegram.SECRET_HEADER: SECRET}
    for body in (b"{not json", b"[1, 2]"):
        response = tg.client.post(WEBHOOK_PATH, content=body, headers=headers)
        assert response.status_code == 400
    assert tg.count(InboundMessage) == 0


def test_an_update_replayed_five_times_makes_one_answer_and_one_reply(tg: TelegramWorld) -> None:
    tg.say(f"/start {tg.invited.token}")
    question = tg.question()
    update = tg.api.callback_update(CHAT, "pro_reports:yes", question["message_id"])
    sent_before, inbound_before = len(tg.api.sent), tg.count(InboundMessage)
    for _ in range(5):
        tg.deliver(update)
    tg.drain()
    assert tg.count(InboundMessage) == inbound_before + 1
    [reply] = tg.api.sent[sent_before:]
    assert reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
        "visit_reminders:yes"
    )
    assert (len(tg.api.answers), len(tg.api.edits)) == (1, 1)


def test_other_updates_are_acknowledged_and_ignored(tg: TelegramWorld) -> None:
    enroll(tg)
    sent, inbound = len(tg.api.sent), tg.count(InboundMessage)
    group = tg.api.text_update(CHAT, "hi")
    group["message"]["chat"] = {"id": -100123, "type": "group", "title": "Family"}
    sticker = tg.api.text_update(CHAT, "")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {"file_id": "x"}
    edited = tg.api.text_update(CHAT, "edit")
    edited["edited_message"] = edited.pop("message")
    for update in (group, sticker, edited):
        tg.deliver(update)
    tg.drain()
    assert (len(tg.api.sent), tg.count(InboundMessage)) == (sent, inbound)


def test_an_unreachable_database_answers_503_so_telegram_retries(
    settings: Settings, api: FakeTelegramApi, now: datetime, tmp_path: Path
) -> None:
    configured = telegram_settings(
        settings, api, database_url=f"sqlite:///{tmp_path / 'missing' / 'c3n.db'}"
    )
    with TestClient(build_app(configured, now), base_url=PUBLIC_URL) as client:
        update = api.text_update(CHAT, "hello")
        response = client.post(
            WEBHOOK_PATH, json=update, headers={webhooks_telegram.SECRET_HEADER: SECRET}
        )
    assert response.status_code == 503


def test_updates_are_parsed_into_inbound_messages(api: FakeTelegramApi) -> None:
    text = parse_update(api.text_update(CHAT, "/start abc", update_id=41))
    assert text == Inbound(Channel.TELEGRAM, str(CHAT), "41", text="/start abc")
    update = api.callback_update(CHAT, "q1:LA6569-3", 7, update_id=42)
    press = parse_update(update)
    assert press == Inbound(
        Channel.TELEGRAM,
        str(CHAT),
        "42",
        choice=("q1", "LA6569-3"),
        ack={"callback_query_id": update["callback_query"]["id"], "message_id": 7},
    )


def test_updates_that_are_not_for_the_bot_are_ignored(api: FakeTelegramApi) -> None:
    press = api.callback_update(CHAT, "not-ours", 7)
    inline = api.callback_update(CHAT, "q1:yes", 7)
    del inline["callback_query"]["message"]
    photo = api.text_update(CHAT, "x")
    photo["message"].pop("text")
    photo["message"]["photo"] = [{"file_id": "p"}]
    channel_post = api.text_update(CHAT, "x")
    channel_post["channel_post"] = channel_post.pop("message")
    malformed: list[dict[str, Any]] = [{"message": {}}, {"update_id": "1"}]
    for update in [press, inline, photo, channel_post, *malformed]:
        assert parse_update(update) is None


# -- stop ---------------------------------------------------------------------------------


def test_after_stop_nothing_more_is_sent(tg: TelegramWorld) -> None:
    enroll(tg)
    tg.start_phq9()  # queued, not yet sent
    tg.say("/stop")
    stop_reply = tg.api.sent[-1]["text"]
    assert "reply_markup" not in tg.api.sent[-1]
    assert not any("Little interest" in m["text"] for m in tg.api.sent)

    sent = len(tg.api.sent)
    with pytest.raises(StartError):
        tg.start_phq9()
    with tg.sessions.begin() as db:  # a due prompt written by a clock that missed the stop
        identity = db.scalar(select(ChannelIdentity).where(ChannelIdentity.address == str(CHAT)))
        assert identity is not None and identity.stopped_at is not None
        row_id = enqueue(
            db, identity=identity, message=MessageOut("Due"), kind="prompt", now=tg.clock()
        )
        db.flush()
    tg.drain()
    assert len(tg.api.sent) == sent, stop_reply
    with tg.sessions() as db:
        assert db.get(OutboxMessage, row_id).status == OutboxStatus.CANCELLED  # type: ignore[union-attr]


def test_a_user_who_blocked_the_bot_is_stopped(tg: TelegramWorld) -> None:
    enroll(tg)
    tg.api.block_chat(CHAT)
    tg.start_phq9()
    tg.drain()
    with tg.sessions() as db:
        identity = db.scalar(select(ChannelIdentity).where(ChannelIdentity.address == str(CHAT)))
        assert identity is not None and identity.stopped_at is not None


# -- polling ------------------------------------------------------------------------------


@pytest.fixture
def polling(
    settings: Settings, api: FakeTelegramApi, now: datetime
) -> Iterator[tuple[TelegramWorld, Callable[[], TelegramPoller]]]:
    """The app in polling mode (no webhook) and a factory of pollers over its database."""
    configured = telegram_settings(settings, api, telegram_mode="polling")
    app = build_app(configured, now)
    state = app.state.c3n
    sender = TelegramSender(configured)
    dispatcher = Dispatcher(state.sessions, {Channel.TELEGRAM: sender}, state.clock)
    pollers: list[TelegramPoller] = []

    def new_poller() -> TelegramPoller:
        poller = TelegramPoller(configured, state.sessions, state.services, state.clock, timeout=0)
        pollers.append(poller)
        return poller

    with TestClient(app, base_url=PUBLIC_URL) as client:
        world = TelegramWorld(
            client, api, dispatcher, state.sessions, state.services, state.clock,
            invite(state.sessions, now),
        )  # fmt: skip
        yield world, new_poller
    for poller in pollers:
        poller.stop()
    sender.close()


def test_polling_resumes_after_a_restart_without_losing_or_repeating(
    polling: tuple[TelegramWorld, Callable[[], TelegramPoller]],
) -> None:
    tg, new_poller = polling
    tg.api.webhook = {"url": "https://old.example/hook"}  # left over from webhook mode
    first = tg.api.queue_update(tg.api.text_update(CHAT, f"/start {tg.invited.token}"))
    poller = new_poller()
    assert poller.poll_once() == 1
    assert tg.api.webhook is None  # deleteWebhook before the first getUpdates
    tg.drain()
    question = tg.question()

    # Telegram still holds the update until the next getUpdates confirms it: a new process
    # must confirm it from the saved cursor, not handle it again.
    press = tg.api.queue_update(
        tg.api.callback_update(CHAT, "pro_reports:yes", question["message_id"])
    )
    restarted = new_poller()
    assert restarted.poll_once() == 1
    offsets = [params.get("offset") for method, params in tg.api.calls if method == "getUpdates"]
    assert offsets == [None, first["update_id"] + 1]
    with tg.sessions() as db:
        assert read_cursor(db, CURSOR) == press["update_id"]
    assert restarted.poll_once() == 0
    assert tg.count(InboundMessage) == 2
    tg.drain()
    assert tg.question()["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
        "visit_reminders:yes"
    )


def test_a_polling_thread_handles_updates_and_stops_promptly(
    polling: tuple[TelegramWorld, Callable[[], TelegramPoller]], settings: Settings
) -> None:
    tg, _ = polling
    poller = TelegramPoller(
        telegram_settings(settings, tg.api, telegram_mode="polling"),
        tg.sessions,
        tg.services,
        tg.clock,
        timeout=30,
        backoff=0.01,
    )
    tg.api.fail_next("getUpdates", 502)  # Telegram hiccups: the poller backs off and goes on
    poller.start()
    try:
        tg.api.queue_update(tg.api.text_update(CHAT, f"/start {tg.invited.token}"))
        assert wait_for(lambda: tg.count(ChannelIdentity) == 1)
        assert wait_for(lambda: _long_polls(tg.api) >= 3)  # back in a 30 s long poll
    finally:
        started = time.monotonic()
        poller.stop()
    assert time.monotonic() - started < 2


def _long_polls(api: FakeTelegramApi) -> int:
    return sum(1 for method, _params in api.calls if method == "getUpdates")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether `condition` holds within `timeout` seconds (checked every 10 ms)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.01)
    return True
