"""The activities and broadcasts API: roles, scoping, preview, send, schedule, cancel, results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import staff
from c3n_bot.store.base import Purpose, Role
from c3n_bot.store.models import Consent, ContactPatient
from tests.web.conftest import PASSWORD, World, new_id

ACTIVITY = {
    "title": "Design day",
    "starts_at": "2026-04-11T10:30:00",
    "timezone": "America/New_York",
    "video_url": "https://meet.example.org/design",
    "capacity": 10,
}


@pytest.fixture
def organiser_key(db: Session, world: World, now: datetime) -> dict[str, str]:
    """The bearer header of an organiser of center A, whose one family consents to news."""
    staff.create_user(
        db, email="api-org@test.org", name="Org", password=PASSWORD, role=Role.ORGANISER,
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
    key = staff.create_api_key(db, owner_email="api-org@test.org", name="org", now=now)
    db.commit()
    return {"Authorization": f"Bearer {key.token}"}


def _clinician(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.api_token_a}"}


def test_a_clinicians_key_and_no_key_are_refused(client: TestClient, world: World) -> None:
    for path in ("/api/v1/activities", "/api/v1/broadcasts"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=_clinician(world)).status_code == 403


def test_activities_are_created_read_changed_and_scoped(
    client: TestClient, world: World, organiser_key: dict[str, str]
) -> None:
    created = client.post("/api/v1/activities", json=ACTIVITY, headers=organiser_key)
    assert created.status_code == 201, created.text
    activity = created.json()
    assert activity["starts_at"].startswith("2026-04-11T14:30:00")  # 10:30 EDT
    assert activity["network_id"] == str(world.center_a.network_id)

    changed = client.put(
        f"/api/v1/activities/{activity['id']}", json={**ACTIVITY, "capacity": 20},
        headers=organiser_key,
    )  # fmt: skip
    assert changed.json()["capacity"] == 20
    one = client.get(f"/api/v1/activities/{activity['id']}", headers=organiser_key).json()
    assert one["answers"] == {"yes": 0, "no": 0, "maybe": 0, "waitlisted": 0}
    assert one["invitations"]["recipients"] == 0
    listed = client.get("/api/v1/activities", headers=organiser_key).json()
    assert [a["id"] for a in listed] == [activity["id"]]
    elsewhere = {**ACTIVITY, "center_id": str(world.center_b.id)}
    assert (
        client.post("/api/v1/activities", json=elsewhere, headers=organiser_key).status_code == 422
    )
    assert client.get(f"/api/v1/activities/{new_id()}", headers=organiser_key).status_code == 404
    csv = client.get(f"/api/v1/activities/{activity['id']}/attendees.csv", headers=organiser_key)
    assert csv.text == "name,status,answered_at\n"


def test_preview_counts_the_segment_and_reports_template_errors(
    client: TestClient, organiser_key: dict[str, str]
) -> None:
    body: dict[str, Any] = {
        "name": "News",
        "templates": {"en": "Hi {{ first_name }} from {{ center }}", "es": "{% for x in y %}"},
    }
    found = client.post("/api/v1/broadcasts/preview", json=body, headers=organiser_key).json()
    assert found["count"] == 1 and found["sample"] == ["Parent of A1"]
    en, es = found["languages"]
    assert en["text"] == "Hi Alex from Center a"
    assert en["sms_segments"] == 1 and en["sms_encoding"] == "GSM-7"
    assert es["error"].startswith("line 1: ")
    segment = client.post(
        "/api/v1/broadcasts/segment", json={"roles": ["patient"]}, headers=organiser_key
    )
    assert segment.json() == {"count": 0, "sample": []}


def test_a_broadcast_is_sent_scheduled_and_cancelled_with_its_results(
    client: TestClient, organiser_key: dict[str, str]
) -> None:
    body = {"name": "News", "templates": {"en": "Hi {{ first_name }}"}}
    draft = client.post("/api/v1/broadcasts", json=body, headers=organiser_key).json()
    sent = client.post(f"/api/v1/broadcasts/{draft['id']}/send", headers=organiser_key).json()
    assert sent["status"] == "sent"
    assert sent["results"]["outcomes"]["queued"] == 1
    assert sent["results"]["delivery"]["waiting"] == 1
    assert (
        client.post(f"/api/v1/broadcasts/{draft['id']}/cancel", headers=organiser_key).status_code
        == 409
    )

    later = client.post("/api/v1/broadcasts", json=body, headers=organiser_key).json()
    when = {"scheduled_at": "2026-03-09T09:00:00-04:00"}
    scheduled = client.post(
        f"/api/v1/broadcasts/{later['id']}/schedule", json=when, headers=organiser_key
    ).json()
    assert scheduled["status"] == "scheduled"
    assert scheduled["scheduled_at"].startswith("2026-03-09T13:00:00")
    cancelled = client.post(f"/api/v1/broadcasts/{later['id']}/cancel", headers=organiser_key)
    assert cancelled.json()["status"] == "cancelled"
    broken = {"name": "Bad", "templates": {"en": "{{ nope }}"}}
    refused = client.post("/api/v1/broadcasts", json=broken, headers=organiser_key)
    assert refused.status_code == 422 and "unknown variable 'nope'" in refused.text
