"""The appointments CSV upload page: a result per row in a table, never a failed upload."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.models import Appointment, AuditEvent
from tests.web.chart_data import read
from tests.web.conftest import World, csrf_of, login

CSV = (
    "patient_external_id,center,starts_at_local,location,external_id\n"
    "A1,a,2026-03-20 09:00,Clinic B,EHR-1\n"
    "B1,b,2026-03-20 09:00,,EHR-2\n"
    "A1,a,yesterday,,EHR-3\n"
    "ZZ,a,2026-03-21 09:00,,EHR-4\n"
)


def _upload(client: TestClient, data: bytes, token: str | None = None) -> tuple[int, str]:
    response = client.post(
        "/appointments/import",
        data={"csrf_token": csrf_of(client, "/appointments/import") if token is None else token},
        files={"file": ("visits.csv", data, "text/csv")},
    )
    return response.status_code, html.unescape(response.text)


def _rows(page: str) -> list[tuple[str, str, str]]:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    cells = re.findall(r'<th scope="row">(\d+)</th>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>', body)
    return [(row, status, problem) for row, status, problem in cells]


def test_each_row_is_reported_and_good_rows_are_kept(
    client: TestClient, world: World, db: Session
) -> None:
    login(client, world.clinician_a)
    status, page = _upload(client, CSV.encode())
    assert status == 200
    assert _rows(page) == [
        ("2", "created", ""),
        ("3", "error", "center not allowed: b"),
        ("4", "error", "bad date 'yesterday': starts_at_local must look like 2026-03-09 09:00"),
        ("5", "error", "unknown patient: 'ZZ' in center a"),
    ]
    assert "created: 1 · error: 3" in page
    booked = read(db, select(Appointment))
    assert [(a.external_id, a.location) for a in booked] == [("EHR-1", "Clinic B")]
    events = read(db, select(AuditEvent.action).where(AuditEvent.action.like("appointment.%")))
    assert events == ["appointment.import.created"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe not text", "file: is not UTF-8 text"),
        (b"name,when\nx,y\n", "file: is missing the column(s) patient_external_id, center"),
    ],
)
def test_a_file_that_is_not_our_csv_is_explained_on_the_page(
    client: TestClient, world: World, data: bytes, problem: str
) -> None:
    login(client, world.clinician_a)
    status, page = _upload(client, data)
    assert status == 422
    assert "The file was not imported:" in page and problem in page
    assert '<form method="post" action="/appointments/import"' in page


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_an_upload_without_the_sessions_token_is_refused(
    client: TestClient, world: World, db: Session, token: str
) -> None:
    login(client, world.clinician_a)
    csrf_of(client, "/appointments/import")
    status, _ = _upload(client, CSV.encode(), token=token)
    assert status == 403
    assert read(db, select(Appointment)) == []


def test_the_page_shows_the_columns(client: TestClient, world: World) -> None:
    login(client, world.admin)
    page = client.get("/appointments/import").text
    for column in ("patient_external_id", "center", "starts_at_local"):
        assert f"<code>{column}</code>" in page
    assert 'enctype="multipart/form-data"' in page
