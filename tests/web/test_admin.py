"""Admin pages through the real app: access, the audit log, users, centers and API keys."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import audit, staff
from c3n_bot.store.base import Channel, Role
from c3n_bot.store.models import ApiKey, AuditEvent, Center, StaffUser
from tests.web.chart_data import ORGANISER, read
from tests.web.conftest import PASSWORD, World, csrf_of, login, new_id

ADMIN_A = "admin-a@test.org"
GETS = ["/admin", "/admin/audit", "/admin/users", "/admin/centers", "/admin/keys"]
POSTS = [
    "/admin/users",
    "/admin/users/{user}",
    "/admin/centers",
    "/admin/centers/{center}",
    "/admin/keys",
    "/admin/keys/{key}/revoke",
]


@dataclass(frozen=True)
class Admins:
    """Ids of the world (its objects expire once a test reads what the app wrote)."""

    center_a: uuid.UUID
    center_b: uuid.UUID
    patient_a: uuid.UUID
    patient_b: uuid.UUID
    clinician_a: str
    clinician_b: str
    admin: str


@pytest.fixture
def admins(db: Session, world: World, now: datetime) -> Admins:
    """The world plus an admin of center A only and an organiser of center A."""
    for email, role in ((ADMIN_A, Role.ADMIN), (ORGANISER, Role.ORGANISER)):
        staff.create_user(
            db,
            email=email,
            name=email.split("@")[0],
            password=PASSWORD,
            role=role,
            center_ids=[world.center_a.id],
            now=now,
        )
    db.commit()
    return Admins(
        center_a=world.center_a.id,
        center_b=world.center_b.id,
        patient_a=world.patient_a.id,
        patient_b=world.patient_b.id,
        clinician_a=world.clinician_a,
        clinician_b=world.clinician_b,
        admin=world.admin,
    )


def _ids(db: Session, world: Admins) -> dict[str, str]:
    user = read(db, select(StaffUser.id).where(StaffUser.email == world.clinician_a))[0]
    key = read(db, select(ApiKey.id))[0]
    return {"user": str(user), "center": str(world.center_a), "key": str(key)}


def _post(client: TestClient, path: str, data: Mapping[str, str | list[str]]) -> str:
    fields = {"csrf_token": csrf_of(client, "/admin/audit"), **data}
    response = client.post(path, data=fields, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _notice(client: TestClient, path: str) -> str:
    found = re.search(r'class="flash flash-(\w+)"[^>]*>([^<]*)<', client.get(path).text)
    assert found, "no notice"
    return f"{found.group(1)}: {html.unescape(found.group(2))}"


@pytest.mark.parametrize("path", GETS + POSTS)
def test_without_a_session_every_admin_route_redirects_to_login(
    client: TestClient, admins: Admins, db: Session, path: str
) -> None:
    url = path.format(**_ids(db, admins))
    method = client.get if path in GETS else client.post
    response = method(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={url}"


@pytest.mark.parametrize("who", ["clin-a@test.org", ORGANISER])
def test_admin_pages_are_for_admins_only(
    client: TestClient, admins: Admins, db: Session, who: str
) -> None:
    ids = _ids(db, admins)
    login(client, who)
    for path in GETS:
        assert client.get(path).status_code == 403, path
    token = csrf_of(client, "/")
    for path in POSTS:
        response = client.post(path.format(**ids), data={"csrf_token": token})
        assert response.status_code == 403, path
    assert 'href="/admin"' not in client.get("/").text


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_admin_forms_refuse_a_missing_or_forged_csrf_token(
    client: TestClient, admins: Admins, db: Session, token: str
) -> None:
    ids = _ids(db, admins)
    login(client, admins.admin)
    csrf_of(client, "/admin/audit")
    for path in POSTS:
        response = client.post(path.format(**ids), data={"csrf_token": token})
        assert response.status_code == 403, path
    assert read(db, select(ApiKey.revoked_at)) == [None]


def test_the_audit_log_filters_and_pages(
    client: TestClient, admins: Admins, db: Session, now: datetime
) -> None:
    login(client, ADMIN_A)  # signing in is an audited event too
    actor = audit.Actor(type="staff", id="someone", ip="10.0.0.1")
    for minute in range(55):
        audit.record(
            db,
            actor=actor,
            action="patient.view",
            now=now + timedelta(minutes=minute),
            patient_id=admins.patient_a,
            center_id=admins.center_a,
        )
    audit.record(
        db,
        actor=actor,
        action="patient.view",
        now=now,
        center_id=admins.center_b,
        patient_id=admins.patient_b,
    )
    audit.record(db, actor=actor, action="export.run", now=now - timedelta(days=3))
    db.commit()
    page = client.get("/admin/audit", params={"action": "patient."}).text
    assert page.count("<code>patient.view</code>") == 50  # one page; center B's is not shown
    assert ">A1</a>" in page and ">B1</a>" not in page
    older = re.search(r'href="(/admin/audit\?[^"]*before=\d+)"', page)
    assert older, "no link to older events"
    assert html.unescape(older.group(1)).startswith("/admin/audit?actor=&action=patient.")
    assert client.get(html.unescape(older.group(1))).text.count("<code>patient.view</code>") == 5
    day_before = (now - timedelta(days=1)).date().isoformat()
    by_day = client.get("/admin/audit", params={"until": day_before}).text
    assert "<code>export.run</code>" in by_day and "patient.view" not in by_day
    mine = client.get("/admin/audit", params={"actor": ADMIN_A}).text
    assert "<code>login</code>" in mine and "patient.view" not in mine
    assert client.get("/admin/audit", params={"patient": "B1"}).text.count("<code>") == 0
    assert client.get("/admin/audit", params={"patient": "A1"}).text.count("patient.view") == 50


def test_create_update_and_deactivate_a_user(
    client: TestClient, admins: Admins, db: Session
) -> None:
    login(client, ADMIN_A)
    new: dict[str, str | list[str]] = {
        "email": "new@test.org",
        "name": "New",
        "password": PASSWORD,
        "role": "clinician",
        "centers": [str(admins.center_a)],
    }
    assert _post(client, "/admin/users", new) == "/admin/users"
    created = read(db, select(StaffUser).where(StaffUser.email == "new@test.org"))[0]
    assert [c.id for c in created.centers] == [admins.center_a]
    created_id = created.id
    _post(
        client,
        "/admin/users",
        {**new, "email": "other@test.org", "centers": [str(admins.center_b)]},
    )
    assert (
        _notice(client, "/admin/users")
        == "error: Not saved: centers: you can only grant your own centers"
    )
    # Admin A manages the clinician of center B too? No: that user is not shown nor changed.
    other = read(db, select(StaffUser.id).where(StaffUser.email == admins.clinician_b))[0]
    assert (
        client.post(
            f"/admin/users/{other}",
            data={"csrf_token": csrf_of(client, "/admin/users"), "role": "admin"},
        ).status_code
        == 404
    )
    # The world admin works for A and B: admin A withdraws A, B stays.
    both = read(db, select(StaffUser.id).where(StaffUser.email == admins.admin))[0]
    _post(client, f"/admin/users/{both}", {"role": "organiser", "active": "on"})
    changed = read(db, select(StaffUser).where(StaffUser.id == both))[0]
    assert changed.role == Role.ORGANISER and changed.active
    assert [c.id for c in changed.centers] == [admins.center_b]
    _post(client, f"/admin/users/{created_id}", {"role": "clinician"})  # "active" unticked
    assert read(db, select(StaffUser.active).where(StaffUser.id == created_id)) == [False]
    client.cookies.clear()
    response = client.post(
        "/login",
        data={"email": "new@test.org", "password": PASSWORD, "csrf_token": csrf_of(client)},
    )
    assert response.status_code == 401
    actions = read(db, select(AuditEvent.action).where(AuditEvent.action.like("staff.%")))
    assert sorted(actions) == ["staff.create", "staff.update", "staff.update"]


def test_an_admin_cannot_lock_themself_out(client: TestClient, admins: Admins, db: Session) -> None:
    login(client, ADMIN_A)
    me = read(db, select(StaffUser.id).where(StaffUser.email == ADMIN_A))[0]
    _post(
        client,
        f"/admin/users/{me}",
        {"role": "clinician", "active": "on", "centers": [str(admins.center_a)]},
    )
    assert _notice(client, "/admin/users").startswith("error: Not saved: role: you cannot")
    assert read(db, select(StaffUser.role).where(StaffUser.id == me)) == [Role.ADMIN]


def test_edit_and_add_centers(client: TestClient, admins: Admins, db: Session) -> None:
    login(client, ADMIN_A)
    fields = {
        "name": "Riverside",
        "timezone": "America/Chicago",
        "crisis_en": "Call or text 988.",
        "crisis_es": "",
        "on_call_channel": "sms",
        "on_call_address": "+1 617 555 0199",
        "on_call_language": "es",
    }
    _post(client, f"/admin/centers/{admins.center_a}", fields)
    center = read(db, select(Center).where(Center.id == admins.center_a))[0]
    assert (center.name, center.timezone, center.crisis_resources) == (
        "Riverside",
        "America/Chicago",
        {"en": "Call or text 988."},
    )
    assert (center.on_call_channel, center.on_call_address, center.on_call_language) == (
        Channel.SMS,
        "+16175550199",
        "es",
    )
    _post(client, f"/admin/centers/{admins.center_a}", {**fields, "timezone": "Mars/Base"})
    assert _notice(client, "/admin/centers").startswith("error: Not saved: timezone: not an IANA")
    assert (
        client.post(
            f"/admin/centers/{admins.center_b}",
            data={"csrf_token": csrf_of(client, "/admin/centers"), **fields},
        ).status_code
        == 404
    )
    network = read(db, select(Center.network_id).where(Center.id == admins.center_a))[0]
    _post(
        client,
        "/admin/centers",
        {
            **fields,
            "name": "Lakeside",
            "slug": "lake",
            "network": str(network),
            "on_call_channel": "",
        },
    )
    assert (
        _notice(client, "/admin/centers")
        == "error: Not saved: on_call_address: give both the channel and the address"
    )
    _post(
        client,
        "/admin/centers",
        {**fields, "name": "Lakeside", "slug": "lake", "network": str(network)},
    )
    page = client.get("/admin/centers").text
    assert "Lakeside" in page and "<code>lake</code>" in page
    actions = read(
        db, select(AuditEvent).where(AuditEvent.action.like("center.%")).order_by(AuditEvent.id)
    )
    assert [a.action for a in actions] == ["center.update", "center.create"]
    assert all("+1617" not in str(a.detail) for a in actions)  # no on-call number in the trail


def test_an_api_key_is_shown_once_and_can_be_revoked(
    client: TestClient, admins: Admins, db: Session
) -> None:
    login(client, ADMIN_A)
    owner = read(db, select(StaffUser.id).where(StaffUser.email == admins.clinician_a))[0]
    response = client.post(
        "/admin/keys",
        data={
            "csrf_token": csrf_of(client, "/admin/keys"),
            "owner": str(owner),
            "name": "EHR bridge",
        },
    )
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-token" readonly value="(c3n_[^"]+)"', response.text)
    assert token, "the new token is not shown"
    auth = {"Authorization": f"Bearer {token.group(1)}"}
    assert client.get("/api/v1/patients", headers=auth).status_code == 200
    assert token.group(1) not in client.get("/admin/keys").text
    key = read(db, select(ApiKey.id).where(ApiKey.name == "EHR bridge"))[0]
    _post(client, f"/admin/keys/{key}/revoke", {})
    assert client.get("/api/v1/patients", headers=auth).status_code == 401
    assert (
        client.post(
            f"/admin/keys/{new_id()}/revoke", data={"csrf_token": csrf_of(client, "/admin/keys")}
        ).status_code
        == 404
    )
    actions = read(
        db, select(AuditEvent).where(AuditEvent.action.like("api_key.%")).order_by(AuditEvent.id)
    )
    assert [(a.action, a.actor_type) for a in actions] == [
        ("api_key.create", "system"),
        ("api_key.create", "staff"),
        ("api_key.revoke", "staff"),
    ]
