"""Invitations: the RSVP flow per family, places and the waitlist, promotion, reminders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import activities, attendance, broadcasts, community, community_results, due
from c3n_bot.service.activities import ActivityIn
from c3n_bot.service.audit import Actor
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Outcome
from c3n_bot.service.segments import Segment
from c3n_bot.service.staff import create_user
from c3n_bot.store.base import Purpose, Role
from c3n_bot.store.models import Activity, Consent, DueWork, OutboxMessage, Rsvp
from c3n_bot.store.models.community import RsvpResponse
from tests.service.conftest import Family, bodies_after, last_outbox_id, send

ACTOR = Actor(type="staff", id="test")


@pytest.fixture
def activity(db: Session, family: Family, now: datetime) -> Activity:
    """A one-place workshop the teen and the parent (both consenting) are invited to."""
    for contact in (family.teen_contact, family.parent):
        db.add(
            Consent(
                contact_id=contact.id, purpose=Purpose.CODESIGN_INVITATIONS, granted=True,
                source="test", updated_at=now,
            )
        )  # fmt: skip
    user = create_user(
        db, email="org@test.org", name="Org", password="organiser pass", role=Role.ORGANISER,
        center_ids=[family.center.id], now=now,
    )  # fmt: skip
    data = ActivityIn(
        title="Design our check-in",
        starts_at=datetime(2026, 3, 3, 19, 0),
        timezone="America/New_York",
        place="Room 4B",
        capacity=1,
    )
    created = activities.create_activity(
        db, data=data, allowed={family.center.id}, actor=ACTOR, user_id=user.id, now=now
    )
    db.commit()
    return created


def _invite(
    db: Session,
    family: Family,
    activity: Activity,
    services: Services,
    now: datetime,
    **segment: object,
) -> uuid.UUID:
    data = BroadcastIn(
        name="Invite", kind="invitation", activity_id=activity.id,
        segment=Segment.model_validate(segment),
    )  # fmt: skip
    allowed = {family.center.id}
    broadcast = broadcasts.create_broadcast(
        db, data=data, allowed=allowed, actor=ACTOR, user_id=activity.created_by, now=now
    )
    broadcasts.send_now(
        db, broadcast_id=broadcast.id, allowed=allowed, actor=ACTOR, services=services, now=now
    )
    due.run_due(db, now, services)
    db.commit()
    return broadcast.id


def test_an_invitation_starts_the_flow_with_the_activity_in_each_familys_words(
    db: Session, family: Family, activity: Activity, services: Services, now: datetime
) -> None:
    family.parent.language = "es"
    db.commit()
    _invite(db, family, activity, services, now)

    work = {w.contact_id: w for w in db.scalars(select(DueWork))}
    assert work[family.parent.id].detail["values"]["activity_time"] == (
        "martes, 3 de marzo de 2026, 19:00 EST"
    )
    teen_sms = bodies_after(db, family.teen_sms, 0)
    assert teen_sms[0] == (
        "You are invited: Design our check-in, Tuesday, March 3, 2026, 7:00\u202fPM EST. Room 4B"
    )
    parent_chat = bodies_after(db, family.parent_telegram, 0)
    assert (
        parent_chat[0]
        == "Le invitamos: Design our check-in, martes, 3 de marzo de 2026, 19:00 EST. Room 4B"
    )


def test_rsvp_by_sms_text_and_telegram_button_with_a_waitlist_and_its_promotion(
    db: Session, family: Family, activity: Activity, services: Services, now: datetime
) -> None:
    _invite(db, family, activity, services, now)

    assert send(db, services, family.teen_sms, "YES", now=now) == Outcome.ANSWERED
    mark = last_outbox_id(db)
    send(db, services, family.parent_telegram, choice=("rsvp", "yes"), now=now)
    assert any(
        "is full, so you are on the waitlist" in b
        for b in bodies_after(db, family.parent_telegram, mark)
    )

    rsvps = {r.contact_id: r for r in db.scalars(select(Rsvp))}
    assert rsvps[family.teen_contact.id].response == RsvpResponse.YES
    assert not rsvps[family.teen_contact.id].waitlisted
    assert rsvps[family.parent.id].waitlisted

    # The teen is asked again (a new invitation) and can no longer come: the parent moves up.
    _invite(db, family, activity, services, now + timedelta(minutes=5), roles=["patient"])
    mark = last_outbox_id(db)
    send(db, services, family.teen_sms, "no", now=now + timedelta(minutes=6))
    db.refresh(rsvps[family.parent.id])
    assert not rsvps[family.parent.id].waitlisted
    assert rsvps[family.parent.id].promoted_at == now + timedelta(minutes=6)
    assert bodies_after(db, family.parent_telegram, mark) == [
        "Good news: a place opened for Design our check-in, "
        "Tuesday, March 3, 2026, 7:00\u202fPM EST. See you there!"
    ]

    results, answers = community_results.activity_results(db, activity)
    assert answers == {"yes": 1, "no": 1, "maybe": 0, "waitlisted": 0}
    assert results.outcomes["queued"] == 3 and results.delivery["waiting"] == 3


def test_more_places_promote_the_waitlist_in_answer_order(
    db: Session, family: Family, activity: Activity, services: Services, now: datetime
) -> None:
    attendance.record_answer(
        db, activity_id=activity.id, contact_id=family.teen_contact.id,
        answer=RsvpResponse.YES, now=now,
    )  # fmt: skip
    attendance.record_answer(
        db, activity_id=activity.id, contact_id=family.parent.id, answer=RsvpResponse.YES,
        now=now + timedelta(seconds=1),
    )  # fmt: skip
    assert attendance.seats_taken(db, activity.id) == 1
    activity.capacity = 2
    assert attendance.fill_places(db, activity, now) == 1
    assert attendance.seats_taken(db, activity.id) == 2


def test_attendees_get_one_reminder_the_evening_before(
    db: Session, family: Family, activity: Activity, services: Services, now: datetime
) -> None:
    for contact in (family.teen_contact, family.parent):
        attendance.record_answer(
            db, activity_id=activity.id, contact_id=contact.id, answer=RsvpResponse.YES, now=now
        )
    db.commit()
    evening = datetime.fromisoformat("2026-03-02T23:00:00+00:00")  # 18:00 in New York

    assert community.tick(db, evening - timedelta(minutes=1), services) == 0
    assert community.tick(db, evening, services) == 1  # one place: the waitlisted get none
    assert community.tick(db, evening + timedelta(minutes=1), services) == 0
    db.commit()

    reminders = db.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key.is_not(None))).all()
    assert [r.identity_id for r in reminders] == [family.teen_sms.id]
    assert reminders[0].body == (
        "Reminder: Design our check-in is coming up, Tuesday, March 3, 2026, 7:00\u202fPM EST. "
        "Room 4B"
    )
