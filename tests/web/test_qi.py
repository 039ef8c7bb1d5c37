"""QI pages: per center, scoped, with run charts that signal a shift."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from c3n_bot.service import qi
from c3n_bot.service.timing import load_zone
from tests.builders import make_submission
from tests.web.conftest import World, login


def test_a_clinician_opens_their_centers_page_only(client: TestClient, world: World) -> None:
    login(client, world.clinician_a)
    index = client.get("/qi", follow_redirects=False)
    assert index.status_code == 303 and index.headers["location"] == f"/qi/{world.center_a.id}"
    page = client.get(f"/qi/{world.center_a.id}")
    assert page.status_code == 200
    assert page.text.count("<svg") == 2 and page.text.count('class="chart-data"') == 2
    assert "No data in these weeks yet." in page.text
    other = client.get(f"/qi/{world.center_b.id}", headers={"accept": "text/html"})
    assert other.status_code == 404


def test_an_admin_chooses_among_their_centers(client: TestClient, world: World) -> None:
    login(client, world.admin)
    page = client.get("/qi")
    assert page.status_code == 200
    assert f"/qi/{world.center_a.id}" in page.text and f"/qi/{world.center_b.id}" in page.text


def test_remission_run_chart_signals_a_shift(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    weeks = qi.complete_weeks(now, load_zone(world.center_a.timezone))
    # Active disease for the first 13 weeks, then remission: 13 points either side of 50%.
    make_submission(
        db, patient=world.patient_a, now=weeks[0].start_at, flow_id="pucai", scores={"total": 40}
    )
    make_submission(
        db,
        patient=world.patient_a,
        now=weeks[13].start_at + timedelta(hours=1),
        flow_id="pucai",
        scores={"total": 5},
    )
    db.commit()
    login(client, world.clinician_a)

    page = client.get(f"/qi/{world.center_a.id}")

    remission = page.text.split('id="remission-heading"')[1]
    assert "median 50" in remission
    assert remission.count('class="point flagged"') == 26
    assert "Shift: 6 or more weeks in a row" in remission
    assert "0/1" in remission and "1/1" in remission
