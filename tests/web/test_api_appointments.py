"""The appointments JSON API: book, list, move, cancel and CSV import, scoped to centers.

``now`` is 2026-03-02 15:00Z; patient A lives in New York (EST until 2026-03-08, then EDT).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from c3n_bot.service import schedules
from c3n_bot.store.models import AuditEvent
from c3n_bot.web.api import appointments
from tests.web.conftest import World, new_id

VISIT_REMINDERS = [
    ("visit_reminder", "2026-03-02T23:00:00Z", "2026-03-02T18:00:00-05:00"),
    ("visit_reminder", "2026-03-08T22:00:00Z", "2026-03-08T18:00:00-04:00"),
]


@pytest.fixture
def api(client: TestClient) -> TestClient:
    """The client, with the appointments router mounted if the app does not include it yet."""
    app: Any = client.app
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/api/v1/appointments/import" not in paths:
        app.include_router(appointments.router, prefix="/api/v1")
    return client


def _auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.api_token_a}"}


def _book(api: TestClient, world: World, **body: Any) -> Any:
    body.setdefault("starts_at", "2026-03-09T09:00:00-04:00")
    url = f"/api/v1/patients/{world.patient_a.id}/appointments"
    return api.post(url, json=body, headers=_auth(world))


def _reminders(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["due_at"], r["due_at_local"]) for r in body["reminders"]]


def _read(db: Session, query: Select[Any]) -> Sequence[Any]:
    # End each read at once: on SQLite a transaction holds the lock the app writes under.
    db.expire_all()
    try:
        return db.scalars(query).all()
    finally:
        db.commit()


def _fields(response: Any) -> list[str]:
    return [str(part) for error in response.json()["detail"] for part in error["loc"]]


def test_booking_plans_reminders_in_utc_and_local_time(api: TestClient, world: World) -> None:
    response = _book(api, world, location="Clinic B", external_id="EHR-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["starts_at"] == "2026-03-09T13:00:00Z"
    assert body["starts_at_local"] == "2026-03-09T09:00:00-04:00"
    assert (body["status"], body["location"], body["external_id"]) == (
        "booked",
        "Clinic B",
        "EHR-1",
    )
    assert _reminders(body) == VISIT_REMINDERS
    assert {r["status"] for r in body["reminders"]} == {"pending"}


def test_a_naive_start_is_the_patients_local_time(api: TestClient, world: World) -> None:
    response = _book(api, world, starts_at="2026-03-09T09:00")
    assert response.status_code == 201, response.text
    assert response.json()["starts_at"] == "2026-03-09T13:00:00Z"


def test_an_ibd_center_with_defaults_adds_the_pucai_prompt(
    api: TestClient, world: World, db: Session, now: datetime
) -> None:
    schedules.ensure_center_defaults(db, center_id=world.center_a.id, now=now)
    db.commit()
    body = _book(api, world).json()
    assert [(r["kind"], r["flow_id"], r["due_at"]) for r in body["reminders"]][1] == (
        "pre_visit",
        "pucai",
        "2026-03-06T23:00:00Z",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"starts_at": "2026-03-01T09:00:00-05:00"}, "starts_at"),
        ({"starts_at": "next tuesday"}, "starts_at"),
        ({"location": ""}, "location"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_fields_are_named(
    api: TestClient, world: World, body: dict[str, Any], field: str
) -> None:
    response = _book(api, world, **body)
    assert response.status_code == 422, response.text
    assert field in _fields(response)


def test_other_centers_and_unknown_patients_are_not_found(api: TestClient, world: World) -> None:
    for patient_id in (world.patient_b.id, new_id()):
        url = f"/api/v1/patients/{patient_id}/appointments"
        body = {"starts_at": "2026-03-09T09:00"}
        assert api.post(url, json=body, headers=_auth(world)).status_code == 404
        assert api.get(url, headers=_auth(world)).status_code == 404
    assert api.get(f"/api/v1/appointments/{new_id()}", headers=_auth(world)).status_code == 404
    url = f"/api/v1/patients/{world.patient_a.id}/appointments"
    assert api.get(url).status_code == 401


def test_duplicate_external_id_is_a_conflict(api: TestClient, world: World) -> None:
    assert _book(api, world, external_id="EHR-1").status_code == 201
    assert _book(api, world, external_id="EHR-1").status_code == 409


def test_move_and_cancel(api: TestClient, world: World, db: Session) -> None:
    created = _book(api, world).json()
    url = f"/api/v1/appointments/{created['id']}"
    moved = api.patch(url, json={"starts_at": "2026-03-16T09:00"}, headers=_auth(world))
    assert moved.status_code == 200, moved.text
    assert moved.json()["starts_at"] == "2026-03-16T13:00:00Z"
    assert [r[1] for r in _reminders(moved.json())] == [
        "2026-03-09T22:00:00Z",
        "2026-03-15T22:00:00Z",
    ]
    listed = api.get(
        f"/api/v1/patients/{world.patient_a.id}/appointments", headers=_auth(world)
    ).json()
    assert [(a["id"], len(a["reminders"])) for a in listed] == [(created["id"], 2)]
    cancelled = api.patch(url, json={"status": "cancelled"}, headers=_auth(world))
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["reminders"]) == ("cancelled", [])
    again = api.patch(url, json={"status": "cancelled"}, headers=_auth(world))
    assert again.status_code == 200
    late = api.patch(url, json={"starts_at": "2026-03-20T09:00"}, headers=_auth(world))
    assert late.status_code == 409
    actions = _read(db, select(AuditEvent.action).where(AuditEvent.action.like("appointment.%")))
    assert sorted(actions) == [
        "appointment.cancel",
        "appointment.create",
        "appointment.list",
        "appointment.move",
    ]


@pytest.mark.parametrize("body", [{}, {"starts_at": "2026-03-16T09:00", "status": "cancelled"}])
def test_a_patch_moves_or_cancels_not_both(
    api: TestClient, world: World, body: dict[str, Any]
) -> None:
    created = _book(api, world).json()
    response = api.patch(f"/api/v1/appointments/{created['id']}", json=body, headers=_auth(world))
    assert response.status_code == 422


def _upload(api: TestClient, world: World, data: bytes) -> Any:
    files = {"file": ("visits.csv", data, "text/csv")}
    return api.post("/api/v1/appointments/import", files=files, headers=_auth(world))


def test_csv_import_reports_each_row(api: TestClient, world: World) -> None:
    data = (
        b"patient_external_id,center,starts_at_local,location,external_id,status\n"
        b"A1,a,2026-03-09 09:00,Clinic B,EHR-1,\n"
        b"B1,b,2026-03-09 09:00,,EHR-2,\n"
        b"A1,a,yesterday,,EHR-3,\n"
    )
    response = _upload(api, world, data)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [(r["row"], r["status"], r["error"]) for r in rows] == [
        (2, "created", None),
        (3, "error", "center not allowed: b"),
        (4, "error", "bad date 'yesterday': starts_at_local must look like 2026-03-09 09:00"),
    ]
    listed = api.get(
        f"/api/v1/patients/{world.patient_a.id}/appointments", headers=_auth(world)
    ).json()
    assert [a["id"] for a in listed] == [rows[0]["appointment_id"]]
    again = _upload(api, world, data).json()
    assert [r["status"] for r in again] == ["unchanged", "error", "error"]


@pytest.mark.parametrize(
    "data", [b"\xff\xd8\xff\xe0\x00\x10JFIF", b"just some notes\nnothing else\n", b""]
)
def test_a_file_that_is_not_csv_is_422(api: TestClient, world: World, data: bytes) -> None:
    response = _upload(api, world, data)
    assert response.status_code == 422
    assert "file" in _fields(response)


def test_import_needs_a_file(api: TestClient, world: World) -> None:
    response = api.post("/api/v1/appointments/import", headers=_auth(world))
    assert response.status_code == 422
    assert "file" in _fields(response)
