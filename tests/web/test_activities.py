"""Activities and RSVPs: what an organiser sees (answers to invitations, never clinical data)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.models import Activity, ContactPatient, Rsvp, StaffUser
from c3n_bot.store.models.community import RsvpResponse
from tests.web.chart_data import INBOUND_TEXT, ORGANISER, seed_chart
from tests.web.conftest import World, login, new_id


@pytest.fixture
def activities(db: Session, world: World, now: datetime) -> dict[str, uuid.UUID]:
    """A chart for patient A, a network-wide activity their parent said yes to, and one of B."""
    seed_chart(db, world, now)
    author = db.scalars(select(StaffUser.id).where(StaffUser.email == ORGANISER)).one()
    found = {}
    for key, center in (("network", None), ("b", world.center_b.id)):
        activity = Activity(
            network_id=world.center_a.network_id,
            center_id=center,
            title=f"Design day {key}",
            description="Help us design the next check-in.",
            starts_at=now + timedelta(days=14),
            timezone="America/New_York",
            capacity=12,
            created_by=author,
            created_at=now,
        )
        db.add(activity)
        db.flush()
        found[key] = activity.id
    parent = db.scalars(
        select(ContactPatient.contact_id).where(ContactPatient.patient_id == world.patient_a.id)
    ).one()
    db.add(
        Rsvp(
            activity_id=found["network"],
            contact_id=parent,
            response=RsvpResponse.YES,
            responded_at=now,
        )
    )
    db.commit()
    return found


@pytest.mark.parametrize("path", ["/activities", "/activities/{id}"])
def test_without_a_session_activities_redirect_to_login(
    client: TestClient, activities: dict[str, uuid.UUID], path: str
) -> None:
    url = path.format(id=activities["network"])
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={url}"


def test_an_organiser_sees_rsvps_and_no_clinical_answer(
    client: TestClient, activities: dict[str, uuid.UUID]
) -> None:
    login(client, ORGANISER)
    listing = client.get("/activities").text
    assert "Design day network" in listing and "Design day b" not in listing
    assert "<td>1</td><td>0</td><td>0</td><td>0</td>" in listing
    listed = client.get("/activities").text
    assert f'href="/activities/{activities["network"]}"' in listed
    page = client.get(f"/activities/{activities['network']}").text
    assert "Parent of A1" in page and "Yes" in page
    assert "Several days" not in page and INBOUND_TEXT not in page
    assert client.get(f"/activities/{activities['b']}").status_code == 404
    assert client.get(f"/activities/{new_id()}").status_code == 404
    assert 'href="/activities"' in client.get("/").text
