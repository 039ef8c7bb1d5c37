"""Community pages through the real app: access, CSRF, activities, compose with preview, results."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import staff
from c3n_bot.store.base import Purpose, Role
from c3n_bot.store.models import Activity, Broadcast, Consent, ContactPatient, OutboxMessage
from c3n_bot.store.models.community import BroadcastStatus
from tests.web.chart_data import read
from tests.web.conftest import PASSWORD, World, csrf_of, login, new_id

ORGANISER_A = "community-a@test.org"
GETS = [
    "/community",
    "/community/segment",
    "/community/activities/new",
    "/community/activities/{activity}",
    "/community/activities/{activity}/edit",
    "/community/activities/{activity}/attendees.csv",
    "/community/broadcasts/new",
    "/community/broadcasts/{broadcast}",
    "/community/broadcasts/{broadcast}/edit",
]
POSTS = [
    "/community/activities",
    "/community/activities/{activity}",
    "/community/broadcasts",
    "/community/broadcasts/{broadcast}",
    "/community/broadcasts/{broadcast}/send",
    "/community/broadcasts/{broadcast}/cancel",
]
ACTIVITY_FORM = {
    "title": "Design day",
    "description": "Help us shape the next check-in.",
    "day": "2026-04-11",
    "time": "10:30",
    "timezone": "America/New_York",
    "place": "Room 4B",
    "capacity": "12",
}


@pytest.fixture
def community(db: Session, world: World, now: datetime) -> dict[str, str]:
    """An organiser of center A, patient A's parent consenting to news, a draft broadcast."""
    user = staff.create_user(
        db, email=ORGANISER_A, name="Olu", password=PASSWORD, role=Role.ORGANISER,
        center_ids=[world.center_a.id], now=now,
    )  # fmt: skip
    parent = db.scalars(
        select(ContactPatient.contact_id).where(ContactPatient.patient_id == world.patient_a.id)
    ).one()
    db.add(
        Consent(
            contact_id=parent, purpose=Purpose.COMMUNITY_BROADCASTS, granted=True,
            source="test", updated_at=now,
        )
    )  # fmt: skip
    activity = Activity(
        network_id=world.center_a.network_id, title="Spring workshop", description="",
        starts_at=now, timezone="America/New_York", created_by=user.id, created_at=now,
    )  # fmt: skip
    db.add(activity)
    db.flush()
    broadcast = Broadcast(
        network_id=world.center_a.network_id, name="Draft news", purpose="community_broadcasts",
        templates={"en": "Hi {{ first_name }}"}, segment={"centers": [str(world.center_a.id)]},
        status=BroadcastStatus.DRAFT, counts={}, created_by=user.id, created_at=now,
    )  # fmt: skip
    db.add(broadcast)
    db.commit()
    return {"activity": str(activity.id), "broadcast": str(broadcast.id)}


def _post(client: TestClient, path: str, data: Mapping[str, object]) -> Response:
    fields = {"csrf_token": csrf_of(client, "/community"), **data}
    return client.post(path, data=fields, follow_redirects=False)


@pytest.mark.parametrize("path", GETS + POSTS)
def test_without_a_session_every_page_redirects_to_login(
    client: TestClient, community: dict[str, str], path: str
) -> None:
    url = path.format(**community)
    method = client.post if path in POSTS else client.get
    response = method(url, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/login?next={url}"


def test_a_clinician_may_not_use_the_community_pages(
    client: TestClient, world: World, community: dict[str, str]
) -> None:
    login(client, world.clinician_a)
    for path in GETS:
        assert client.get(path.format(**community)).status_code == 403, path
    assert "/community" not in re.findall(r'href="(/community)"', client.get("/").text)


def test_a_form_without_its_csrf_token_is_refused(
    client: TestClient, community: dict[str, str]
) -> None:
    login(client, ORGANISER_A)
    for path in POSTS:
        response = client.post(path.format(**community), data={"csrf_token": "forged"})
        assert response.status_code == 403, path


def test_an_organiser_creates_and_edits_an_activity(
    client: TestClient, db: Session, community: dict[str, str]
) -> None:
    login(client, ORGANISER_A)
    assert 'href="/community"' in client.get("/community").text
    assert "Nueva actividad" in client.get("/community", headers={"accept-language": "es"}).text
    invalid = _post(client, "/community/activities", {**ACTIVITY_FORM, "title": ""})
    assert invalid.status_code == 422 and "title" in invalid.text

    created = _post(client, "/community/activities", ACTIVITY_FORM)
    location = created.headers["location"]
    page = client.get(location).text
    assert "Design day" in page and "2026-04-11 10:30 EDT" in page and "Room 4B" in page

    activity_id = location.rsplit("/", 1)[1]
    # The list links each activity to its organiser page (the staff view links elsewhere).
    assert f'href="/community/activities/{activity_id}"' in client.get("/community").text
    _post(client, f"/community/activities/{activity_id}", {**ACTIVITY_FORM, "capacity": "30"})
    [capacity] = read(db, select(Activity.capacity).where(Activity.id == uuid.UUID(activity_id)))
    assert capacity == 30
    assert client.get(f"/community/activities/{new_id()}").status_code == 404


def test_compose_previews_each_language_with_its_sms_cost_and_template_errors(
    client: TestClient, world: World, community: dict[str, str]
) -> None:
    login(client, ORGANISER_A)
    form = {
        "action": "preview",
        "name": "News",
        "kind": "message",
        "template_en": "Hi {{ first_name }}, news from {{ program }}!",
        "template_es": "Hola {{ first_nam }}",
    }
    page = _post(client, "/community/broadcasts", form).text
    assert "Contacts in this segment:" in page and "<strong>1</strong>" in page
    assert "(Parent of A1)" in page
    assert "Hi Alex, news from Test Network!" in page
    assert "1 segments, GSM-7, 1 messages" in page
    assert "Template error:" in page and "unknown variable &#39;first_nam&#39;" in page

    live = client.get("/community/segment", params={"languages": "en"}).json()
    assert live == {"count": 1, "sample": ["Parent of A1"]}


def test_send_now_then_the_results_count_every_recipient(
    client: TestClient, db: Session, world: World, community: dict[str, str]
) -> None:
    login(client, ORGANISER_A)
    form = {
        "action": "send",
        "name": "News",
        "kind": "message",
        "template_en": "Hi {{ first_name }}",
    }
    response = _post(client, "/community/broadcasts", form)
    page = client.get(response.headers["location"]).text
    assert "sent" in page and re.search(r"<dt>Queued</dt><dd>1</dd>", page)
    bodies = read(db, select(OutboxMessage.body))
    assert bodies == ["Hi Parent\nReply STOP to unsubscribe."]


def test_schedule_then_cancel_a_broadcast(
    client: TestClient, db: Session, community: dict[str, str]
) -> None:
    login(client, ORGANISER_A)
    path = f"/community/broadcasts/{community['broadcast']}"
    form = {
        "action": "schedule", "name": "Later", "kind": "message", "template_en": "Hi",
        "send_day": "2026-03-09", "send_time": "09:00", "send_timezone": "America/New_York",
    }  # fmt: skip
    _post(client, path, form)
    [scheduled] = read(db, select(Broadcast).where(Broadcast.name == "Later"))
    assert scheduled.status == BroadcastStatus.SCHEDULED
    assert scheduled.scheduled_at.isoformat() == "2026-03-09T13:00:00+00:00"

    _post(client, f"{path}/cancel", {})
    [status] = read(db, select(Broadcast.status).where(Broadcast.name == "Later"))
    assert status == BroadcastStatus.CANCELLED
    again = _post(client, f"{path}/cancel", {})
    assert "Not done:" in client.get(again.headers["location"]).text


def test_an_invitation_starts_from_the_activity_and_attendees_download_as_csv(
    client: TestClient, community: dict[str, str]
) -> None:
    login(client, ORGANISER_A)
    compose = client.get(f"/community/broadcasts/new?activity={community['activity']}").text
    assert 'value="invitation" selected' in compose
    preview = _post(
        client, "/community/broadcasts",
        {"action": "preview", "name": "Invite", "kind": "invitation",
         "activity_id": community["activity"]},
    )  # fmt: skip
    assert "You are invited: Spring workshop" in preview.text
    csv = client.get(f"/community/activities/{community['activity']}/attendees.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == "name,status,answered_at\n"
