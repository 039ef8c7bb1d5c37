"""Segments: each filter, a contact counted once, and names only in the sample."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from c3n_bot.service import segments
from c3n_bot.service.errors import InvalidInput
from c3n_bot.service.segments import Segment, years_before
from c3n_bot.service.staff import create_user
from c3n_bot.store.base import Purpose, Role
from c3n_bot.store.models import Activity, Consent, Rsvp
from c3n_bot.store.models.community import RsvpResponse
from tests.service.conftest import Family

# On 2 March 2026 the teen (Maya) is 15; the parent's children are 12 (Leo) and 10 (Nora).


def _count(db: Session, family: Family, now: datetime, **filters: Any) -> int:
    segment = Segment.model_validate(filters).scoped({family.center.id})
    return segments.count(db, segment, now=now)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, 2),
        ({"roles": ["patient"]}, 1),
        ({"roles": ["parent"]}, 1),
        ({"roles": ["patient", "parent"]}, 2),
        ({"conditions": ["ibd"]}, 2),
        ({"conditions": ["cf", "t1d"]}, 0),
        ({"languages": ["es"]}, 0),
        ({"age_min": 13}, 1),
        ({"age_max": 10}, 1),
        ({"age_min": 11, "age_max": 12}, 1),
        ({"age_min": 16}, 0),
    ],
)
def test_each_filter_and_a_parent_of_two_children_counted_once(
    db: Session, family: Family, now: datetime, filters: dict[str, Any], expected: int
) -> None:
    assert _count(db, family, now, **filters) == expected


def test_consent_and_past_participation(db: Session, family: Family, now: datetime) -> None:
    db.add(
        Consent(
            contact_id=family.parent.id, purpose=Purpose.COMMUNITY_BROADCASTS, granted=True,
            source="test", updated_at=now,
        )
    )  # fmt: skip
    db.add(
        Consent(
            contact_id=family.teen_contact.id, purpose=Purpose.COMMUNITY_BROADCASTS,
            granted=False, source="test", updated_at=now,
        )
    )  # fmt: skip
    author = _staff(db, family, now)
    past, future = (
        Activity(
            network_id=family.center.network_id, title=title, description="", starts_at=at,
            timezone="America/New_York", created_by=author, created_at=now,
        )
        for title, at in (("Past", now - timedelta(days=30)), ("Future", now + timedelta(days=3)))
    )  # fmt: skip
    db.add_all([past, future])
    db.flush()
    db.add(Rsvp(activity_id=past.id, contact_id=family.teen_contact.id,
                response=RsvpResponse.YES, responded_at=now))  # fmt: skip
    db.add(Rsvp(activity_id=future.id, contact_id=family.parent.id,
                response=RsvpResponse.YES, responded_at=now))  # fmt: skip
    db.commit()

    assert _count(db, family, now, consent="community_broadcasts") == 1
    assert _count(db, family, now, consent="codesign_invitations") == 0
    assert _count(db, family, now, participated=True) == 1
    assert _count(db, family, now, participated=False) == 1


def _staff(db: Session, family: Family, now: datetime) -> uuid.UUID:
    user = create_user(
        db, email="o@test.org", name="O", password="organiser pass", role=Role.ORGANISER,
        center_ids=[family.center.id], now=now,
    )  # fmt: skip
    return user.id


def test_the_sample_is_display_names_only(db: Session, family: Family, now: datetime) -> None:
    segment = Segment().scoped({family.center.id})
    assert segments.sample(db, segment, now=now) == ["Laura Okafor", "Maya Okafor"]


def test_a_center_outside_the_callers_is_refused(family: Family) -> None:
    with pytest.raises(InvalidInput):
        Segment(centers=[family.center.id]).scoped(set())


def test_age_bands_follow_birthdays_including_29_february() -> None:
    assert years_before(date(2026, 3, 1), 14) == date(2012, 3, 1)
    assert years_before(date(2028, 2, 29), 14) == date(2014, 2, 28)
    with pytest.raises(ValueError):
        Segment(age_min=12, age_max=10)
