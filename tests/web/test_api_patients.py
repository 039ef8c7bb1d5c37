"""The patients JSON API: bearer keys, validation that names the field, center scoping."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import World, new_id


def _auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.api_token_a}"}


def _patient(world: World, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "center_id": str(world.center_a.id),
        "external_id": "A2",
        "given_name": "Lucia",
        "family_name": "Reyes",
        "birth_date": "2011-02-03",
        "condition": "ibd",
        "language": "es",
        "contacts": [
            {"display_name": "Ana Reyes", "relationship": "parent", "phone": "+1 617 555 0123"},
            {"display_name": "Lucia", "relationship": "self", "telegram_chat_id": "99887766"},
        ],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Bearer c3n_abcdef123456_nope", "Basic dXNlcjpwdw=="]
)
def test_missing_or_wrong_key_gets_401(
    client: TestClient, world: World, header: str | None
) -> None:
    headers = {"authorization": header} if header else {}
    response = client.get("/api/v1/patients", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_create_and_get_patient(client: TestClient, world: World) -> None:
    created = client.post("/api/v1/patients", json=_patient(world), headers=_auth(world))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["timezone"] == "America/New_York"  # the center's, when none is given
    phones = [i["address"] for c in body["contacts"] for i in c["identities"]]
    assert "+16175550123" in phones  # normalised to E.164
    fetched = client.get(f"/api/v1/patients/{body['id']}", headers=_auth(world))
    assert fetched.status_code == 200
    assert fetched.json()["external_id"] == "A2"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"language": "fr"}, "language"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"condition": "flu"}, "condition"),
        ({"birth_date": "2011-13-01"}, "birth_date"),
        ({"birth_date": "2099-01-01"}, "birth_date"),
        ({"center_id": new_id()}, "center_id"),
    ],
)
def test_invalid_field_is_named(
    client: TestClient, world: World, change: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/patients", json=_patient(world, **change), headers=_auth(world))
    assert response.status_code == 422
    assert field in [str(part) for error in response.json()["detail"] for part in error["loc"]]


def test_invalid_phone_is_named(client: TestClient, world: World) -> None:
    contacts = [{"display_name": "X", "relationship": "parent", "phone": "555-0000"}]
    response = client.post(
        "/api/v1/patients", json=_patient(world, contacts=contacts), headers=_auth(world)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "phone"


def test_duplicate_external_id_conflicts(client: TestClient, world: World) -> None:
    response = client.post(
        "/api/v1/patients", json=_patient(world, external_id="A1"), headers=_auth(world)
    )
    assert response.status_code == 409


def test_other_center_is_invisible(client: TestClient, world: World) -> None:
    other = client.get(f"/api/v1/patients/{world.patient_b.id}", headers=_auth(world))
    assert other.status_code == 404
    listed = client.get("/api/v1/patients", headers=_auth(world)).json()
    assert [p["external_id"] for p in listed["items"]] == ["A1"]
    into_b = client.post(
        "/api/v1/patients",
        json=_patient(world, center_id=str(world.center_b.id)),
        headers=_auth(world),
    )
    assert into_b.status_code == 422


def test_pagination_walks_every_patient_once(client: TestClient, world: World) -> None:
    for n in range(5):
        body = _patient(world, external_id=f"P{n}", contacts=[])
        assert client.post("/api/v1/patients", json=body, headers=_auth(world)).status_code == 201
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = client.get("/api/v1/patients", params=params, headers=_auth(world)).json()
        seen += [p["external_id"] for p in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert sorted(seen) == sorted(["A1", "P0", "P1", "P2", "P3", "P4"])


def test_no_phi_in_logs(client: TestClient, world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/api/v1/patients", json=_patient(world), headers=_auth(world))
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in ("Lucia", "Reyes", "6175550123", "99887766", world.api_token_a):
        assert secret not in logged
