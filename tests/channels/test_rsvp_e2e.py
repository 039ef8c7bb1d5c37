"""RSVPs end to end: an invitation out through the fakes, answers back through the webhooks.

A Telegram family presses the invitation's "Yes" button and an SMS family replies YES; the
activity has one place, so the second is waitlisted and told so by SMS. Every test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.channels.telegram import TelegramSender, register_webhook
from c3n_bot.channels.twilio_sms import TwilioSender
from c3n_bot.config import Settings
from c3n_bot.service import activities, broadcasts, due
from c3n_bot.service.activities import ActivityIn
from c3n_bot.service.audit import SYSTEM
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.context import Services
from c3n_bot.service.delivery import Sender
from c3n_bot.service.dispatcher import Dispatcher
from c3n_bot.store.base import Channel, Purpose, Relationship
from c3n_bot.store.models import Center, Consent, Rsvp
from c3n_bot.store.models.community import RsvpResponse
from c3n_bot.web.app import create_app
from tests.builders import link, make_contact, make_identity, make_patient
from tests.community_seed import seed_organisers
from tests.fakes import FakeTelegramApi, FakeTwilioApi, guard_loopback
from tests.fakes.twilio import SERVICE_NUMBER

PUBLIC_URL = "http://testserver"
SECRET = "test-webhook-secret_0123456789"
CHAT = 7001
PHONE = "+16175550177"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    guard_loopback(monkeypatch)


@dataclass
class World:
    """The app, both fakes, a dispatcher over the real senders, and the two families."""

    client: TestClient
    telegram: FakeTelegramApi
    twilio: FakeTwilioApi
    dispatcher: Dispatcher
    sessions: sessionmaker[Session]
    services: Services
    contacts: dict[str, uuid.UUID]

    def drain(self) -> None:
        while self.dispatcher.drain_once():
            pass

    def answers(self) -> dict[uuid.UUID, tuple[RsvpResponse, bool]]:
        with self.sessions() as db:
            return {r.contact_id: (r.response, r.waitlisted) for r in db.scalars(select(Rsvp))}


def _configure(settings: Settings, telegram: FakeTelegramApi, twilio: FakeTwilioApi) -> Settings:
    return settings.model_copy(
        update={
            "telegram_token": SecretStr(telegram.token),
            "telegram_api_url": telegram.url,
            "telegram_mode": "webhook",
            "telegram_webhook_secret": SecretStr(SECRET),
            "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": SecretStr(twilio.auth_token),
            "twilio_from": SERVICE_NUMBER,
            "twilio_api_url": twilio.url,
            "public_url": PUBLIC_URL,
        }
    )


def _invite(
    sessions: sessionmaker[Session], services: Services, now: datetime
) -> dict[str, uuid.UUID]:
    """Two consenting families (Telegram, SMS) invited to a one-place activity."""
    with sessions.begin() as db:
        org = seed_organisers(db, now)
        contacts = {}
        for name, channel, address in (
            ("tg", Channel.TELEGRAM, str(CHAT)),
            ("sms", Channel.SMS, PHONE),
        ):
            patient = make_patient(db, now=now, center=db.get(Center, org.center_id))
            contact = make_contact(db, now=now)
            link(db, contact=contact, patient=patient, relation=Relationship.SELF)
            make_identity(db, contact=contact, now=now, channel=channel, address=address)
            db.add(Consent(contact_id=contact.id, purpose=Purpose.CODESIGN_INVITATIONS,
                           granted=True, source="test", updated_at=now))  # fmt: skip
            contacts[name] = contact.id
        activity = activities.create_activity(
            db,
            data=ActivityIn(title="Design day", starts_at=datetime(2026, 3, 20, 10, 0),
                            timezone="America/New_York", place="Room 4B", capacity=1),
            allowed={org.center_id}, actor=SYSTEM, user_id=org.organiser_id, now=now,
        )  # fmt: skip
        invitation = broadcasts.create_broadcast(
            db,
            data=BroadcastIn(name="Invite", kind="invitation", activity_id=activity.id),
            allowed={org.center_id}, actor=SYSTEM, user_id=org.organiser_id, now=now,
        )  # fmt: skip
        broadcasts.send_now(
            db, broadcast_id=invitation.id, allowed={org.center_id}, actor=SYSTEM,
            services=services, now=now,
        )  # fmt: skip
    with sessions.begin() as db:
        due.run_due(db, now, services)  # the clock starts each family's RSVP flow
    return contacts


@pytest.fixture
def world(settings: Settings, now: datetime) -> Iterator[World]:
    with FakeTelegramApi() as telegram, FakeTwilioApi() as twilio:
        configured = _configure(settings, telegram, twilio)
        app = create_app(configured, clock=lambda: now)
        state = app.state.c3n
        senders: dict[Channel, Sender] = {
            Channel.TELEGRAM: TelegramSender(configured),
            Channel.SMS: TwilioSender(configured),
        }
        dispatcher = Dispatcher(state.sessions, senders, state.clock)
        with TestClient(app, base_url=PUBLIC_URL) as client:
            if telegram.webhook is None:
                register_webhook(configured)
            contacts = _invite(state.sessions, state.services, now)
            yield World(client, telegram, twilio, dispatcher, state.sessions, state.services,
                        contacts)  # fmt: skip
        dispatcher.close()


def test_rsvp_by_telegram_button_and_by_sms_text_with_a_waitlist(world: World) -> None:
    world.drain()
    [question] = [m for m in world.telegram.sent if "reply_markup" in m]
    assert question["text"] == "Will you join us?"
    texts = [m["Body"] for m in world.twilio.sent if m["To"] == PHONE]
    assert texts[0].startswith("You are invited: Design day, Friday, March 20, 2026")

    [yes] = [
        row[0]["callback_data"]
        for row in question["reply_markup"]["inline_keyboard"]
        if row[0]["text"] == "Yes"
    ]
    update = world.telegram.callback_update(CHAT, yes, question["message_id"])
    assert world.telegram.deliver_update(update, post=world.client.post).status_code == 200
    response = world.twilio.inbound_sms(
        f"{PUBLIC_URL}/webhooks/twilio/sms", PHONE, SERVICE_NUMBER, "YES", None,
        post=world.client.post,
    )  # fmt: skip
    assert response.status_code == 200
    world.drain()

    assert world.answers() == {
        world.contacts["tg"]: (RsvpResponse.YES, False),
        world.contacts["sms"]: (RsvpResponse.YES, True),
    }
    replies = [m["Body"] for m in world.twilio.sent if m["To"] == PHONE]
    assert replies[-1].startswith("Design day is full, so you are on the waitlist.")
