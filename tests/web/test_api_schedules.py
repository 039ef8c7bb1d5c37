"""The schedules JSON API: list, add, pause and resume, and the preview, scoped to centers.

The fixed ``now`` is Monday 2026-03-02 15:00Z; the next Sunday 18:00 in New York is
2026-03-08 18:00 EDT (22:00Z), just after the spring-forward change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from c3n_bot.store.base import Purpose
from c3n_bot.store.models import AuditEvent, Consent, ContactPatient, DueWork, Patient, Schedule
from c3n_bot.store.models.scheduling import DueStatus
from tests.web.conftest import World, new_id

CHECKIN = {"flow": "ibd_checkin", "rrule": "FREQ=WEEKLY;BYDAY=SU", "at_local": "18:00"}
CHECKIN_OUT = ("ibd_checkin", "FREQ=WEEKLY;BYDAY=SU", "18:00")


@pytest.fixture
def ids(db: Session, world: World, now: datetime) -> dict[str, uuid.UUID]:
    """Seed ids; patient A's parent consented to prompts."""
    contact_a = db.scalars(
        select(ContactPatient.contact_id).where(ContactPatient.patient_id == world.patient_a.id)
    ).one()
    db.add(
        Consent(
            contact_id=contact_a,
            purpose=Purpose.PRO_REPORTS,
            granted=True,
            source="test",
            updated_at=now,
        )
    )
    found = {"patient_a": world.patient_a.id, "patient_b": world.patient_b.id, "contact": contact_a}
    db.commit()
    return found


def _auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.api_token_a}"}


def _read(db: Session, query: Select[Any]) -> Sequence[Any]:
    # End each read at once: on SQLite a transaction holds the lock the app writes under.
    db.expire_all()
    try:
        return db.scalars(query).all()
    finally:
        db.commit()


def _errors(body: dict[str, Any]) -> list[str]:
    return [str(part) for error in body["detail"] for part in error["loc"]]


def _create(client: TestClient, world: World, patient: uuid.UUID, **body: Any) -> Any:
    return client.post(
        f"/api/v1/patients/{patient}/schedules", json={**CHECKIN, **body}, headers=_auth(world)
    )


def test_create_list_and_preview(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    created = _create(client, world, ids["patient_a"])

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["flow_id"], body["rrule"], body["at_local"]) == CHECKIN_OUT
    assert body["next_due_at"] == "2026-03-08T22:00:00Z"
    assert body["next_due_local"] == "2026-03-08T18:00:00-04:00"
    listed = client.get(f"/api/v1/patients/{ids['patient_a']}/schedules", headers=_auth(world))
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [body["id"]]
    preview = client.get(
        f"/api/v1/patients/{ids['patient_a']}/schedule-preview",
        params={"days": 14},
        headers=_auth(world),
    )
    assert preview.status_code == 200, preview.text
    assert [(line["planned_local"], line["status"]) for line in preview.json()] == [
        ("2026-03-08T18:00:00-04:00", "will send"),
        ("2026-03-15T18:00:00-04:00", "will send"),
    ]
    assert set(preview.json()[0]) == {
        "planned_local",
        "send_local",
        "timezone",
        "flow_id",
        "kind",
        "source",
        "status",
        "reason",
    }
    actions = [e.action for e in _read(db, select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-3:] == ["schedule.create", "schedule.list", "schedule.preview"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"rrule": "FREQ=HOURLY"}, "rrule", "too frequent"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule", "BYDAY=XX"),
        ({"flow": "no_such_flow"}, "flow", "unknown flow"),
        ({"at_local": "25:00"}, "at_local", "HH:MM"),
        ({"at_local": "6pm"}, "at_local", "HH:MM"),
        ({"contact_id": new_id()}, "contact_id", "not a contact"),
    ],
)
def test_invalid_fields_are_named(
    client: TestClient,
    world: World,
    ids: dict[str, uuid.UUID],
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = _create(client, world, ids["patient_a"], **change)

    assert response.status_code == 422
    assert field in _errors(response.json())
    assert message in " ".join(error["msg"] for error in response.json()["detail"])


def test_preview_days_are_bounded(
    client: TestClient, world: World, ids: dict[str, uuid.UUID]
) -> None:
    url = f"/api/v1/patients/{ids['patient_a']}/schedule-preview"
    for days in (0, 91):
        response = client.get(url, params={"days": days}, headers=_auth(world))
        assert response.status_code == 422
        assert "days" in _errors(response.json())


def test_pause_and_resume_one_schedule(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session, now: datetime
) -> None:
    schedule_id = _create(client, world, ids["patient_a"]).json()["id"]
    db.add(
        DueWork(
            key="waiting",
            kind="prompt",
            patient_id=ids["patient_a"],
            schedule_id=uuid.UUID(schedule_id),
            flow_id="ibd_checkin",
            slot_at=now,
            due_at=now + timedelta(hours=1),
            status=DueStatus.DEFERRED,
            detail={},
            created_at=now,
        )
    )
    db.commit()
    url = f"/api/v1/schedules/{schedule_id}"

    paused = client.patch(url, json={"active": False}, headers=_auth(world))

    assert paused.status_code == 200, paused.text
    assert (paused.json()["active"], paused.json()["next_due_at"]) == (False, None)
    (waiting,) = _read(db, select(DueWork))
    assert (waiting.status, waiting.reason) == (DueStatus.CANCELLED, "the schedule was paused")
    resumed = client.patch(url, json={"active": True}, headers=_auth(world))
    assert resumed.status_code == 200
    assert (resumed.json()["active"], resumed.json()["next_due_at"]) == (
        True,
        "2026-03-08T22:00:00Z",
    )
    actions = [e.action for e in _read(db, select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-2:] == ["schedule.pause", "schedule.resume"]


def test_pause_and_resume_every_schedule_of_a_patient(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    _create(client, world, ids["patient_a"])
    base = f"/api/v1/patients/{ids['patient_a']}/schedules"

    paused = client.post(f"{base}/pause", headers=_auth(world))

    assert paused.status_code == 200
    assert paused.json() == {"patient_id": str(ids["patient_a"]), "schedules_paused": True}
    (patient,) = _read(db, select(Patient).where(Patient.id == ids["patient_a"]))
    assert patient.schedules_paused
    lines = client.get(
        f"/api/v1/patients/{ids['patient_a']}/schedule-preview", headers=_auth(world)
    ).json()
    assert {line["reason"] for line in lines} == {"not sent: the patient's schedules are paused"}
    resumed = client.post(f"{base}/resume", headers=_auth(world))
    assert resumed.json()["schedules_paused"] is False
    actions = [e.action for e in _read(db, select(AuditEvent).order_by(AuditEvent.id))]
    assert "schedules.pause" in actions and actions[-1] == "schedules.resume"


def test_another_centers_patient_and_schedule_are_not_found(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session, now: datetime
) -> None:
    other = ids["patient_b"]
    (patient_b,) = _read(db, select(Patient).where(Patient.id == other))
    db.add(
        Schedule(
            patient_id=other,
            flow_id="ibd_checkin",
            rrule="FREQ=WEEKLY;BYDAY=SU",
            timezone="America/Los_Angeles",
            dtstart_local="2026-03-02T18:00:00",
            starts_at=now,
            created_at=now,
        )
    )
    db.commit()
    (foreign,) = _read(db, select(Schedule).where(Schedule.patient_id == other))
    auth = _auth(world)
    responses = [
        client.get(f"/api/v1/patients/{other}/schedule-preview", headers=auth),
        client.get(f"/api/v1/patients/{other}/schedules", headers=auth),
        client.post(f"/api/v1/patients/{other}/schedules", json=CHECKIN, headers=auth),
        client.post(f"/api/v1/patients/{other}/schedules/pause", headers=auth),
        client.post(f"/api/v1/patients/{other}/schedules/resume", headers=auth),
        client.patch(f"/api/v1/schedules/{foreign.id}", json={"active": False}, headers=auth),
        client.patch(f"/api/v1/schedules/{new_id()}", json={"active": False}, headers=auth),
        client.get(f"/api/v1/patients/{new_id()}/schedule-preview", headers=auth),
    ]
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert patient_b.schedules_paused is False
    (still,) = _read(db, select(Schedule).where(Schedule.patient_id == other))
    assert still.active


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/patients/{p}/schedule-preview"),
        ("GET", "/api/v1/patients/{p}/schedules"),
        ("POST", "/api/v1/patients/{p}/schedules"),
        ("POST", "/api/v1/patients/{p}/schedules/pause"),
        ("POST", "/api/v1/patients/{p}/schedules/resume"),
        ("PATCH", "/api/v1/schedules/{p}"),
    ],
)
def test_no_key_gets_401(
    client: TestClient, ids: dict[str, uuid.UUID], method: str, path: str
) -> None:
    body = CHECKIN if path.endswith("/schedules") else {"active": False}
    response = client.request(method, path.format(p=ids["patient_a"]), json=body)
    assert response.status_code == 401
