"""Sending a message broadcast: who is reached, who is not and why, quiet hours, retries."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3n_bot.service import broadcast_send, broadcasts, community, community_results
from c3n_bot.service.audit import Actor
from c3n_bot.service.broadcasts import BroadcastIn
from c3n_bot.service.context import Services
from c3n_bot.service.errors import Conflict, InvalidInput
from c3n_bot.service.segments import Segment
from c3n_bot.store.base import Channel
from c3n_bot.store.models import Broadcast, BroadcastRecipient, OutboxMessage
from c3n_bot.store.models.community import BroadcastStatus, RecipientOutcome
from tests.community_seed import Organisers, Seeded, seed_contacts, seed_organisers

ACTOR = Actor(type="staff", id="test")
TEMPLATES = {
    "en": "Hi {{ first_name }}, {{ program }} news from {{ center }}.",
    "es": "Hola {{ first_name }}, noticias de {{ program }}.",
}


@pytest.fixture
def org(db: Session, now: datetime) -> Organisers:
    organisers = seed_organisers(db, now)
    db.commit()
    return organisers


def _seed(db: Session, org: Organisers, now: datetime, count: int = 200) -> list[Seeded]:
    seeded = seed_contacts(db, center_id=org.center_id, count=count, now=now)
    db.commit()
    return seeded


def _create(db: Session, org: Organisers, now: datetime, **changes: object) -> Broadcast:
    data = BroadcastIn.model_validate({"name": "Spring news", "templates": TEMPLATES, **changes})
    broadcast = broadcasts.create_broadcast(
        db, data=data, allowed={org.center_id}, actor=ACTOR, user_id=org.organiser_id, now=now
    )
    db.commit()
    return broadcast


def _expected(seeded: list[Seeded]) -> Counter[str]:
    return Counter(s.expected(quiet=s.timezone == "Asia/Tokyo").value for s in seeded)


def test_every_member_is_counted_by_outcome_and_only_the_included_get_a_row(
    db: Session, org: Organisers, services: Services, now: datetime
) -> None:
    seeded = _seed(db, org, now)
    broadcast = _create(db, org, now)

    broadcasts.send_now(
        db, broadcast_id=broadcast.id, allowed={org.center_id}, actor=ACTOR,
        services=services, now=now,
    )  # fmt: skip
    db.commit()

    expected = _expected(seeded)
    assert broadcast.status == BroadcastStatus.SENT
    assert broadcast.counts == {k: v for k, v in expected.items() if v}
    results = community_results.broadcast_results(db, [broadcast])
    assert results.recipients == len(seeded)
    assert results.delivery["waiting"] == expected["queued"] + expected["deferred"]
    rows = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    reached = {s.address for s in seeded if s.expected(quiet=False) == RecipientOutcome.QUEUED}
    assert {row.address for row in rows} == reached
    assert all(row.kind == "broadcast" and row.priority == 10 for row in rows)


def test_texts_are_in_each_language_and_sms_says_how_to_stop(
    db: Session, org: Organisers, services: Services, now: datetime
) -> None:
    seeded = _seed(db, org, now, count=40)
    broadcast = _create(db, org, now)
    broadcasts.send_now(
        db, broadcast_id=broadcast.id, allowed={org.center_id}, actor=ACTOR,
        services=services, now=now,
    )  # fmt: skip
    db.commit()
    by_address: dict[str | None, OutboxMessage] = {
        row.address: row for row in db.scalars(select(OutboxMessage))
    }
    spanish_sms = next(
        s
        for s in seeded
        if s.language == "es" and s.channel == Channel.SMS and s.address in by_address
    )
    english_chat = next(
        s for s in seeded if s.language == "en" and s.channel == Channel.TELEGRAM
        and s.address in by_address
    )  # fmt: skip
    assert by_address[english_chat.address].body == (
        f"Hi Family{english_chat.index}, Test Network news from Test Center."
    )
    assert by_address[spanish_sms.address].body == (
        f"Hola Family{spanish_sms.index}, noticias de Test Network.\n"
        "Responda STOP para cancelar la suscripción."
    )


def test_quiet_hours_defer_to_their_end_in_the_family_zone(
    db: Session, org: Organisers, services: Services, now: datetime
) -> None:
    seeded = _seed(db, org, now, count=16)
    broadcast = _create(db, org, now)
    broadcasts.send_now(
        db, broadcast_id=broadcast.id, allowed={org.center_id}, actor=ACTOR,
        services=services, now=now,
    )  # fmt: skip
    db.commit()
    tokyo = [
        s.address
        for s in seeded
        if s.timezone == "Asia/Tokyo" and s.expected(quiet=True) == RecipientOutcome.DEFERRED
    ]
    assert tokyo
    rows = db.scalars(select(OutboxMessage).where(OutboxMessage.address.in_(tokyo))).all()
    # 15:00 UTC is midnight in Tokyo; quiet hours end at 08:00 there, 23:00 UTC.
    assert {row.next_attempt_at for row in rows} == {now.replace(hour=23)}


def test_a_send_resumed_after_a_crash_never_doubles(
    db: Session, org: Organisers, services: Services, now: datetime
) -> None:
    seeded = _seed(db, org, now, count=120)
    broadcast = _create(db, org, now)
    broadcasts.schedule(
        db, broadcast_id=broadcast.id, at=now, allowed={org.center_id}, actor=ACTOR, now=now
    )
    db.commit()

    first = broadcast_send.send_due(db, now, services, limit=50)
    db.commit()
    assert first == 50
    assert db.scalar(select(Broadcast.status)) == BroadcastStatus.SENDING
    rest = community.tick(db, now + timedelta(minutes=1), services)
    db.commit()
    again = community.tick(db, now + timedelta(minutes=2), services)
    db.commit()

    assert rest == len(seeded) - 50 and again == 0
    assert db.scalar(select(Broadcast.status)) == BroadcastStatus.SENT
    recipients = db.scalar(select(func.count()).select_from(BroadcastRecipient))
    assert recipients == len(seeded)
    keys = db.scalars(select(OutboxMessage.dedupe_key)).all()
    assert len(keys) == len(set(keys)) == sum(1 for s in seeded if s.expected(False).value
                                              in ("queued", "deferred"))  # fmt: skip


def test_a_scheduled_broadcast_is_sent_by_the_clock_and_a_cancelled_one_never(
    db: Session, org: Organisers, services: Services, now: datetime
) -> None:
    _seed(db, org, now, count=10)
    kept, dropped = _create(db, org, now), _create(db, org, now, name="Dropped")
    for broadcast in (kept, dropped):
        broadcasts.schedule(
            db, broadcast_id=broadcast.id, at=now + timedelta(hours=1),
            allowed={org.center_id}, actor=ACTOR, now=now,
        )  # fmt: skip
    broadcasts.cancel(db, broadcast_id=dropped.id, allowed={org.center_id}, actor=ACTOR, now=now)
    db.commit()

    assert community.tick(db, now + timedelta(minutes=59), services) == 0
    assert community.tick(db, now + timedelta(hours=1), services) == 10
    db.commit()

    assert kept.status == BroadcastStatus.SENT and dropped.status == BroadcastStatus.CANCELLED
    assert not db.scalars(
        select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == dropped.id)
    ).all()
    with pytest.raises(Conflict):
        broadcasts.cancel(db, broadcast_id=kept.id, allowed={org.center_id}, actor=ACTOR, now=now)


def test_a_segment_outside_the_organisers_centers_is_refused(
    db: Session, org: Organisers, now: datetime
) -> None:
    with pytest.raises(InvalidInput):
        _create(db, org, now, segment=Segment(centers=[org.other_center_id]).stored())
    with pytest.raises(InvalidInput, match="unknown variable 'first_nam'"):
        _create(db, org, now, templates={"en": "Hi {{ first_nam }}"})
