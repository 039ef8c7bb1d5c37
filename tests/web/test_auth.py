"""Staff sign-in, sessions, CSRF and center scoping on the dashboard."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.models import AuditEvent
from tests.web.conftest import PASSWORD, World, csrf_of, login, new_id


@pytest.mark.parametrize("path", ["/", "/patients/{a}", "/patients/{missing}"])
def test_pages_without_session_redirect_to_login(
    client: TestClient, world: World, path: str
) -> None:
    url = path.format(a=world.patient_a.id, missing=new_id())
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={url}"


def test_login_then_see_own_center_patients_only(client: TestClient, world: World) -> None:
    login(client, world.clinician_a)
    page = client.get("/patients")
    assert page.status_code == 200
    assert "FamilyA1" in page.text
    assert "FamilyB1" not in page.text


def test_session_cookie_is_httponly_and_samesite(client: TestClient, world: World) -> None:
    client.get("/login")
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={"email": world.admin, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # the test public URL is plain http


def test_wrong_password_is_refused(client: TestClient, world: World) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login", data={"email": world.admin, "password": "nope-nope-nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_bad_csrf_token_is_refused(client: TestClient, world: World, token: str) -> None:
    csrf_of(client)  # the session has a real token; the form carries another
    response = client.post(
        "/login", data={"email": world.admin, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_session(client: TestClient, world: World) -> None:
    login(client, world.admin)
    assert client.post("/logout", data={"csrf_token": "x"}).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200
    response = client.post(
        "/logout", data={"csrf_token": csrf_of(client, "/")}, follow_redirects=False
    )
    assert response.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_rate_limit(client: TestClient, world: World) -> None:
    for _ in range(5):
        token = csrf_of(client)
        client.post("/login", data={"email": world.admin, "password": "x", "csrf_token": token})
    token = csrf_of(client)
    response = client.post(
        "/login", data={"email": world.admin, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429


def test_clinician_cannot_see_other_center_patient(client: TestClient, world: World) -> None:
    login(client, world.clinician_a)
    other = client.get(f"/patients/{world.patient_b.id}", headers={"accept": "text/html"})
    assert other.status_code == 404
    assert "FamilyB1" not in other.text
    assert client.get(f"/patients/{world.patient_a.id}").status_code == 200


def test_patient_view_is_audited(client: TestClient, world: World, db: Session) -> None:
    login(client, world.clinician_a)
    client.get(f"/patients/{world.patient_a.id}")
    events = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "patient.view", AuditEvent.patient_id == world.patient_a.id
        )
    ).all()
    assert len(events) == 1
    assert events[0].actor_type == "staff"


def test_open_redirect_is_not_followed(client: TestClient, world: World) -> None:
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={
            "email": world.admin,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"
