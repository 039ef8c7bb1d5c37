"""Patient pages through the real app: access, audit, the chart's sections, and its actions."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.models import (
    Appointment,
    AuditEvent,
    ConversationSession,
    DueWork,
    Patient,
)
from c3n_bot.store.models.scheduling import AppointmentStatus, DueStatus
from tests.web.chart_data import (
    INBOUND_TEXT,
    ORGANISER,
    OUTBOUND_TEXT,
    Chart,
    read,
    seed_chart,
)
from tests.web.conftest import World, csrf_of, login, new_id

SPANISH = {"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}


@pytest.fixture
def chart(db: Session, world: World, now: datetime) -> Chart:
    return seed_chart(db, world, now)


def _page(client: TestClient, chart: Chart, **headers: str) -> str:
    response = client.get(f"/patients/{chart.patient_id}", headers=headers)
    assert response.status_code == 200, response.text
    return html.unescape(response.text)


def _post(client: TestClient, path: str, data: dict[str, str], token: str | None = None) -> str:
    """Post a form with the session's CSRF token; the Location the app redirects to."""
    fields = {"csrf_token": token if token is not None else csrf_of(client, "/patients"), **data}
    response = client.post(path, data=fields, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _flash(client: TestClient, chart: Chart) -> str:
    found = re.search(r'class="flash flash-(\w+)"[^>]*>([^<]*)<', _page(client, chart))
    assert found, "no notice on the page"
    return f"{found.group(1)}: {found.group(2)}"


POSTS = [
    ("/patients/{patient}/flows", {"flow": "phq9"}),
    ("/patients/{patient}/schedules/pause", {}),
    ("/patients/{patient}/appointments", {"starts_at": "2026-04-01T09:00"}),
    ("/appointments/{appointment}/move", {"starts_at": "2026-04-02T09:00"}),
    ("/appointments/{appointment}/cancel", {}),
]
GETS = ["/patients", "/patients/{patient}", "/appointments/import"]


def _url(path: str, chart: Chart) -> str:
    return path.format(patient=chart.patient_id, appointment=chart.appointment_id)


@pytest.mark.parametrize("path", GETS + [path for path, _ in POSTS])
def test_without_a_session_every_route_redirects_to_login(
    client: TestClient, chart: Chart, path: str
) -> None:
    url = _url(path, chart)
    method = client.get if path in GETS else client.post
    response = method(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={url}"


def test_a_clinician_of_another_center_gets_404(
    client: TestClient, chart: Chart, world: World
) -> None:
    login(client, world.clinician_b)
    assert client.get(f"/patients/{chart.patient_id}").status_code == 404
    assert client.get(f"/patients/{new_id()}").status_code == 404
    token = csrf_of(client, "/patients")
    for path, data in POSTS:
        response = client.post(_url(path, chart), data={"csrf_token": token, **data})
        assert response.status_code == 404, path
    assert "FamilyA1" not in client.get("/patients?q=Family").text


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_a_missing_or_forged_csrf_token_is_refused(
    client: TestClient, chart: Chart, world: World, db: Session, token: str
) -> None:
    login(client, world.clinician_a)
    csrf_of(client, "/patients")  # the session has a token; the forms carry another
    for path, data in POSTS:
        response = client.post(_url(path, chart), data={"csrf_token": token, **data})
        assert response.status_code == 403, path
    patient = read(db, select(Patient).where(Patient.id == chart.patient_id))[0]
    assert not patient.schedules_paused
    assert read(db, select(ConversationSession)) == []


def test_every_view_of_a_chart_is_audited(
    client: TestClient, chart: Chart, world: World, db: Session
) -> None:
    login(client, world.clinician_a)
    _page(client, chart)
    _page(client, chart)
    views = read(
        db, select(AuditEvent).where(AuditEvent.action == "patient.view").order_by(AuditEvent.id)
    )
    assert len(views) == 2
    assert {v.patient_id for v in views} == {chart.patient_id}
    assert {v.center_id for v in views} == {world.center_a.id}
    assert all(v.actor_type == "staff" and v.detail == {"message_bodies": True} for v in views)


def test_an_organiser_sees_no_clinical_page(client: TestClient, chart: Chart) -> None:
    login(client, ORGANISER)
    for path in GETS:
        assert client.get(_url(path, chart)).status_code == 403, path
    token = csrf_of(client, "/")
    for path, data in POSTS:
        response = client.post(_url(path, chart), data={"csrf_token": token, **data})
        assert response.status_code == 403, path
    home = client.get("/").text
    assert 'href="/patients"' not in home and 'href="/simulator"' not in home


def test_a_malformed_chart_id_is_checked_after_sign_in_and_role(
    client: TestClient, chart: Chart, world: World
) -> None:
    signed_out = client.get("/patients/not-an-id", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?next=/patients/not-an-id"
    login(client, ORGANISER)
    assert client.get("/patients/not-an-id").status_code == 403
    client.cookies.clear()
    login(client, world.clinician_a)
    malformed = client.get("/patients/not-an-id")
    assert malformed.status_code == 422
    assert [e["loc"] for e in malformed.json()["detail"]] == [["path", "patient_id"]]
    assert client.get(f"/patients/{chart.patient_id.hex.upper()}").status_code == 200


def test_the_chart_words_answers_for_the_viewer(
    client: TestClient, chart: Chart, world: World
) -> None:
    login(client, world.clinician_a)
    english = _page(client, chart)
    assert "Little interest or pleasure in doing things" in english
    assert "Several days" in english and "Varios días" not in english
    spanish = _page(client, chart, **SPANISH)
    assert "Poco interés o placer en hacer las cosas" in spanish
    assert "Varios días" in spanish and "Several days" not in spanish
    assert 'lang="es"' in spanish and "Cerrar sesión" in spanish


def test_the_chart_shows_trends_with_bands(client: TestClient, chart: Chart, world: World) -> None:
    login(client, world.clinician_a)
    page = _page(client, chart)
    trends = page[page.index('id="trends"') : page.index('id="visits"')]
    assert trends.count('<svg class="chart"') == 2  # PHQ-9 and GAD-7 (no PUCAI yet)
    for band in ("minimal", "mild", "moderate", "moderately severe", "severe"):
        assert f"<title>{band}</title>" in trends
    assert trends.count('class="point"') == 4
    assert "2026-01-01" in trends and "2026-03-01" in trends  # local dates of the points


def test_the_chart_shows_visits_schedules_and_contacts(
    client: TestClient, chart: Chart, world: World
) -> None:
    login(client, world.clinician_a)
    page = _page(client, chart)
    visits = page[page.index('id="visits"') : page.index('id="schedules"')]
    assert "2026-03-12 11:00 EDT" in visits and "Clinic B" in visits
    assert visits.count("Reminder:") == 2 and "pending" in visits
    schedules = page[page.index('id="schedules"') : page.index('id="messages"')]
    assert "FREQ=MONTHLY" in schedules and "2026-03-02 18:00 EST" in schedules
    contacts = page[page.index('id="contacts"') : page.index('id="reports"')]
    assert "Parent of A1" in contacts and "+16175550100" in contacts
    assert contacts.count("not asked") == 3 and ">yes<" in contacts


def test_message_bodies_are_for_the_centers_clinicians_only(
    client: TestClient, chart: Chart, world: World, db: Session
) -> None:
    login(client, world.clinician_a)
    page = _page(client, chart)
    assert INBOUND_TEXT in page and OUTBOUND_TEXT in page
    login(client, world.admin)
    page = _page(client, chart)
    messages = page[page.index('id="messages"') : page.index('id="actions"')]
    assert INBOUND_TEXT not in page and OUTBOUND_TEXT not in page
    assert "received" in messages and "delivered" in messages
    assert "shown to the clinicians of this center only" in messages
    views = read(
        db, select(AuditEvent).where(AuditEvent.action == "patient.view").order_by(AuditEvent.id)
    )
    assert [v.detail["message_bodies"] for v in views] == [True, False]


def test_start_a_flow_now(client: TestClient, chart: Chart, world: World, db: Session) -> None:
    login(client, world.clinician_a)
    target = _post(client, f"/patients/{chart.patient_id}/flows", {"flow": "gad7"})
    assert target == f"/patients/{chart.patient_id}#actions"
    sessions = read(db, select(ConversationSession))
    assert [(s.flow_id, s.contact_id, s.patient_id) for s in sessions] == [
        ("gad7", chart.contact_id, chart.patient_id)
    ]
    assert _flash(client, chart) == "ok: Flow started."
    _post(client, f"/patients/{chart.patient_id}/flows", {"flow": "phq9"})
    assert _flash(client, chart) == "ok: Flow queued after the current one."
    _post(client, f"/patients/{chart.patient_id}/flows", {"flow": "nope"})
    assert _flash(client, chart) == "error: Not done: flow: unknown flow"
    starts = read(
        db, select(AuditEvent).where(AuditEvent.action == "session.start").order_by(AuditEvent.id)
    )
    assert [e.detail["flow"] for e in starts] == ["gad7", "phq9"]


def test_pause_and_resume_schedules(
    client: TestClient, chart: Chart, world: World, db: Session
) -> None:
    login(client, world.clinician_a)
    _post(client, f"/patients/{chart.patient_id}/schedules/pause", {})
    assert read(db, select(Patient.schedules_paused).where(Patient.id == chart.patient_id)) == [
        True
    ]
    page = _page(client, chart)
    assert "Resume schedules" in page and ">paused<" in page
    _post(client, f"/patients/{chart.patient_id}/schedules/resume", {})
    assert read(db, select(Patient.schedules_paused).where(Patient.id == chart.patient_id)) == [
        False
    ]
    actions = read(
        db,
        select(AuditEvent.action)
        .where(AuditEvent.action.like("schedules.%"))
        .order_by(AuditEvent.id),
    )
    assert actions == ["schedules.pause", "schedules.resume"]


def test_book_move_and_cancel_a_visit(
    client: TestClient, chart: Chart, world: World, db: Session, now: datetime
) -> None:
    login(client, world.clinician_a)
    path = f"/patients/{chart.patient_id}/appointments"
    _post(client, path, {"starts_at": "2026-03-20T09:30", "location": "Room 4"})
    booked = read(db, select(Appointment).where(Appointment.location == "Room 4"))[0]
    assert booked.starts_at == datetime.fromisoformat("2026-03-20T13:30+00:00")  # EDT
    _post(client, f"/appointments/{booked.id}/move", {"starts_at": "2026-03-27T10:00"})
    moved = read(db, select(Appointment).where(Appointment.id == booked.id))[0]
    assert moved.starts_at == datetime.fromisoformat("2026-03-27T14:00+00:00")
    _post(client, f"/appointments/{booked.id}/cancel", {})
    cancelled = read(db, select(Appointment).where(Appointment.id == booked.id))[0]
    assert cancelled.status == AppointmentStatus.CANCELLED
    work = read(db, select(DueWork).where(DueWork.appointment_id == booked.id))
    assert work and all(row.status == DueStatus.CANCELLED for row in work)
    actions = read(
        db,
        select(AuditEvent.action)
        .where(AuditEvent.subject == str(booked.id))
        .order_by(AuditEvent.id),
    )
    assert actions == ["appointment.create", "appointment.move", "appointment.cancel"]


def test_a_refused_change_is_a_notice_not_an_error_page(
    client: TestClient, chart: Chart, world: World, now: datetime
) -> None:
    login(client, world.clinician_a)
    past = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    target = _post(client, f"/patients/{chart.patient_id}/appointments", {"starts_at": past})
    assert target == f"/patients/{chart.patient_id}#visits"
    assert _flash(client, chart) == "error: Not done: starts_at: is in the past"
    _post(client, f"/appointments/{chart.appointment_id}/move", {"starts_at": "not a time"})
    assert _flash(client, chart) == "error: Not done: starts_at: is not a date and time"
    _post(client, f"/appointments/{chart.appointment_id}/cancel", {})
    _post(client, f"/appointments/{chart.appointment_id}/move", {"starts_at": "2026-04-01T09:00"})
    assert _flash(client, chart).startswith("error: Not done: the appointment is cancelled")


def test_the_patient_list_finds_by_name_or_id_and_is_audited(
    client: TestClient, chart: Chart, world: World, db: Session
) -> None:
    login(client, world.admin)
    assert "FamilyA1" in client.get("/patients").text and "FamilyB1" in client.get("/patients").text
    found = client.get("/patients", params={"q": "familyb"}).text
    assert "FamilyB1" in found and "FamilyA1" not in found
    assert "FamilyA1" in client.get("/patients", params={"q": "A1"}).text
    assert "No patients found." in client.get("/patients", params={"q": "%"}).text
    lists = read(db, select(AuditEvent).where(AuditEvent.action == "patient.list"))
    assert len(lists) == 5 and {e.patient_id for e in lists} == {None}
    assert sorted(e.detail["query"] for e in lists) == ["", "", "%", "A1", "familyb"]
