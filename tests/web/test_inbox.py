"""The inbox: scoped to the user's centers, urgent first, filtered, paged; acknowledging."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.service import inbox, staff
from c3n_bot.store.base import Role
from c3n_bot.store.models import Alert, AuditEvent, StaffUser
from c3n_bot.store.models.conversations import Severity
from tests.builders import make_alert, make_submission
from tests.web.conftest import PASSWORD, World, csrf_of, login, new_id


@pytest.mark.parametrize("path", ["/", "/?center=x&flow=phq9", "/qi", "/qi/{a}"])
def test_pages_without_session_redirect_to_login(
    client: TestClient, world: World, path: str
) -> None:
    url = path.format(a=world.center_a.id)
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_acknowledge_without_session_redirects_to_login(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    alert = make_alert(db, patient=world.patient_a, now=now)
    db.commit()
    response = client.post(
        f"/alerts/{alert.id}/acknowledge", data={"note": "x"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/alerts/{alert.id}/acknowledge"


def test_inbox_shows_own_centers_only_urgent_first_with_local_due_times(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    make_alert(db, patient=world.patient_a, now=now, severity=Severity.REVIEW, due_in=timedelta(0))
    make_alert(db, patient=world.patient_a, now=now, title="Urgent one")
    make_alert(db, patient=world.patient_b, now=now, title="Other center")
    make_submission(
        db, patient=world.patient_a, now=now, scores={"total": 12}, bands={"total": "moderate"}
    )
    make_submission(db, patient=world.patient_b, now=now)
    db.commit()
    login(client, world.clinician_a)

    page = client.get("/")

    assert page.status_code == 200
    assert "Other center" not in page.text and "FamilyB1" not in page.text
    rows = re.findall(r'<tr class="alert-row (\w+)', page.text)
    assert rows == ["open", "overdue"]  # the urgent one first, though the review one is older
    assert page.text.index("Urgent one") < page.text.index("PHQ-9 item 9 above 0")
    assert "2026-03-02 11:00 EST" in page.text  # due 16:00 UTC, in the center's New York time
    assert "total 12 (moderate)" in page.text


def test_an_escalated_alert_is_marked(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    alert = make_alert(db, patient=world.patient_a, now=now - timedelta(hours=2))
    alert.escalated_at = now - timedelta(minutes=30)
    db.commit()
    login(client, world.clinician_a)
    page = client.get("/")
    assert 'class="alert-row escalated error"' in page.text
    assert "Escalated" in page.text


def test_filters_by_center_flow_band_and_date(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    yesterday = now - timedelta(days=1)
    make_submission(db, patient=world.patient_a, now=now, flow_id="gad7", bands={"total": "mild"})
    make_submission(db, patient=world.patient_a, now=yesterday, bands={"total": "severe"})
    make_submission(db, patient=world.patient_b, now=now, bands={"total": "severe"})
    db.commit()
    login(client, world.admin)

    def families(query: str) -> list[str]:
        page = client.get(f"/?{query}")
        assert page.status_code == 200
        section = page.text.split('id="submissions-heading"')[1]
        return re.findall(r"Family(\w+),", section)

    assert sorted(families("")) == ["A1", "A1", "B1"]
    assert families(f"center={world.center_b.id.hex}") == ["B1"]
    assert families("flow=gad7") == ["A1"]
    assert sorted(families("band=severe")) == ["A1", "B1"]
    assert families(f"center={world.center_a.id}&since=2026-03-02") == ["A1"]
    assert families("until=2026-03-01") == ["A1"]
    # Values that are not valid are ignored, never an error page.
    assert len(families("center=nope&flow=unknown&band=DROP%20TABLE&since=x&apage=-1")) == 3


def test_submissions_are_paged_newest_first_without_repeats(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    for minutes in range(55):
        make_submission(db, patient=world.patient_a, now=now - timedelta(minutes=minutes))
    db.commit()
    login(client, world.clinician_a)

    first = client.get("/")
    older = re.search(r'href="(/\?before=[^"]+)" rel="next"', first.text)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"))

    times = [
        re.findall(r'<time datetime="([^"]+)"', page.text.split('id="submissions-heading"')[1])
        for page in (first, second)
    ]
    assert (len(times[0]), len(times[1])) == (50, 5)
    assert times[0] + times[1] == sorted(times[0] + times[1], reverse=True)
    assert 'rel="next"' not in second.text


def _acknowledge(client: TestClient, alert: Alert, **data: str) -> int:
    token = csrf_of(client, "/")
    response = client.post(
        f"/alerts/{alert.id}/acknowledge",
        data={"csrf_token": token, **data},
        follow_redirects=False,
    )
    return response.status_code


def test_acknowledge_records_who_when_note_and_returns_to_the_filtered_inbox(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    alert = make_alert(db, patient=world.patient_a, now=now)
    db.commit()
    login(client, world.clinician_a)
    token = csrf_of(client, "/")

    response = client.post(
        f"/alerts/{alert.id}/acknowledge",
        data={"csrf_token": token, "note": "Called; safe.", "back": "flow=phq9&next=//evil"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/?flow=phq9"
    db.expire_all()
    saved = db.get(Alert, alert.id)
    assert saved is not None and saved.acknowledged_at == now and saved.note == "Called; safe."
    user = db.scalars(select(StaffUser).where(StaffUser.email == world.clinician_a)).one()
    assert saved.acknowledged_by == user.id
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge")).all()
    assert [(e.patient_id, e.actor_type) for e in events] == [(world.patient_a.id, "staff")]
    db.rollback()  # SQLite: end this read before the app writes its audit event
    assert "PHQ-9 item 9 above 0" not in client.get("/").text


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_acknowledge_without_a_valid_csrf_token_is_refused(
    client: TestClient, world: World, db: Session, now: datetime, token: str | None
) -> None:
    alert = make_alert(db, patient=world.patient_a, now=now)
    db.commit()
    login(client, world.clinician_a)
    csrf_of(client, "/")
    data = {"note": "x"} if token is None else {"note": "x", "csrf_token": token}
    response = client.post(f"/alerts/{alert.id}/acknowledge", data=data)
    assert response.status_code == 403
    db.expire_all()
    assert db.get(Alert, alert.id).acknowledged_at is None  # type: ignore[union-attr]


def test_another_centers_alert_is_not_found(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    alert = make_alert(db, patient=world.patient_b, now=now)
    db.commit()
    login(client, world.clinician_a)
    assert _acknowledge(client, alert, note="x") == 404
    token = csrf_of(client, "/")
    missing = client.post(f"/alerts/{new_id()}/acknowledge", data={"csrf_token": token})
    assert missing.status_code == 404
    db.expire_all()
    assert db.get(Alert, alert.id).acknowledged_at is None  # type: ignore[union-attr]


def test_an_organiser_sees_no_clinical_data_and_cannot_acknowledge(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    staff.create_user(
        db,
        email="org@test.org",
        name="Organiser",
        password=PASSWORD,
        role=Role.ORGANISER,
        center_ids=[world.center_a.id],
        now=now,
    )
    alert = make_alert(db, patient=world.patient_a, now=now)
    make_submission(db, patient=world.patient_a, now=now, scores={"total": 21})
    db.commit()
    login(client, "org@test.org")

    page = client.get("/")

    assert page.status_code == 200
    assert "FamilyA1" not in page.text and "PHQ-9" not in page.text
    assert f"/qi/{world.center_a.id}" in page.text
    assert _acknowledge(client, alert, note="x") == 403


def test_alerts_follow_the_flow_and_band_filters(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    gad7 = make_submission(db, patient=world.patient_a, now=now, flow_id="gad7")
    gad7.bands = {"total": "severe"}
    make_alert(db, patient=world.patient_a, now=now, submission=gad7, title="GAD-7 alert")
    make_alert(db, patient=world.patient_a, now=now, title="No submission yet")
    db.commit()
    login(client, world.clinician_a)

    def titles(query: str) -> list[str]:
        section = client.get(f"/?{query}").text.split('id="submissions-heading"')[0]
        return re.findall(r"<td>((?:GAD-7 alert)|(?:No submission yet))</td>", section)

    assert sorted(titles("")) == ["GAD-7 alert", "No submission yet"]
    assert titles("flow=gad7") == ["GAD-7 alert"]
    assert titles("band=severe") == ["GAD-7 alert"]
    assert titles("flow=phq9") == []


def test_a_cursor_keeps_whole_microseconds_and_refuses_garbage() -> None:
    cursor = inbox.Cursor(datetime(2026, 3, 2, 15, 0, 0, 123457, tzinfo=UTC), uuid.uuid4())
    assert inbox.Cursor.decode(cursor.encode()) == cursor
    for token in ("", "x.y", "1.nothex", "9" * 30 + "." + "a" * 32):
        assert inbox.Cursor.decode(token) is None


def test_an_alert_row_carries_its_acknowledge_form_with_the_session_token_and_filters(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    alert = make_alert(db, patient=world.patient_a, now=now, title='Call <back> & "check"')
    db.commit()
    login(client, world.clinician_a)

    page = client.get("/?since=2000-01-01").text

    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    assert (
        f'<form method="post" action="/alerts/{alert.id}/acknowledge" class="inline">\n'
        f'          <input type="hidden" name="csrf_token" value="{token.group(1)}">'
        '<input type="hidden" name="back" value="since=2000-01-01">\n'
        f'          <label for="note-{alert.id}" class="visually-hidden">Note</label>\n'
        f'          <input id="note-{alert.id}" name="note" maxlength="2000" '
        'placeholder="Note: what was done">\n'
        '          <button type="submit">Acknowledge</button>\n'
        "        </form>\n      </td>\n    </tr>"
    ) in page
    assert "<td>Call &lt;back&gt; &amp; &#34;check&#34;</td>" in page
