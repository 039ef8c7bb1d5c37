"""POST /api/v1/submissions/{id}/corrections: a rescored new version, in the caller's centers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.service import staff
from c3n_bot.store.base import Role
from c3n_bot.store.models import AuditEvent, Submission
from c3n_bot.web.api import submission_corrections
from c3n_bot.web.app import create_app
from tests.builders import make_submission
from tests.web.conftest import PASSWORD, World, new_id

PATH = "/api/v1/submissions/{submission_id}/corrections"
# PHQ-9 items 1-9 all "several days" (total 9, mild).
ANSWERS = {
    f"q{n}": {"code": "LA6569-3", "value": 1, "display": "Several days"} for n in range(1, 10)
}


@pytest.fixture
def api(settings: Settings, now: datetime) -> Iterator[TestClient]:
    """The real app with the corrections router (included here until app.py registers it)."""
    app = create_app(settings, clock=lambda: now)
    if not any(getattr(route, "path", "") == PATH for route in app.routes):
        app.include_router(submission_corrections.router, prefix="/api/v1")
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def submitted(db: Session, world: World, now: datetime) -> dict[str, uuid.UUID]:
    """A PHQ-9 submission of each center's patient (committed); ids by center letter."""
    ids = {}
    for letter, patient in (("a", world.patient_a), ("b", world.patient_b)):
        row = make_submission(
            db, patient=patient, now=now, answers=ANSWERS, scores={"total": 9}, bands={}
        )
        ids[letter] = row.id
    db.commit()
    return ids


def post(api: TestClient, token: str, submission_id: object, answers: dict[str, Any]) -> Any:
    """POST a correction with an API key."""
    return api.post(
        PATH.format(submission_id=submission_id),
        json={"answers": answers},
        headers={"authorization": f"Bearer {token}"},
    )


def test_a_clinician_corrects_a_submission_of_her_center(
    api: TestClient, db: Session, world: World, submitted: dict[str, uuid.UUID]
) -> None:
    response = post(api, world.api_token_a, submitted["a"], {"q1": "LA6571-9", "q2": None})

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["replaces_id"]) == (2, str(submitted["a"]))
    # 3 + seven 1s over 8 answered items, prorated to 9: 11.25, rounded half up to 11.
    assert body["scores"] == {"total": 11} and body["bands"] == {"total": "moderate"}
    db.expire_all()
    new = db.get(Submission, uuid.UUID(body["id"]))
    assert new is not None and "q2" not in new.answers
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "submission.corrected")).one()
    assert (event.actor_type, event.subject) == ("api_key", body["id"])


def test_another_centers_or_an_unknown_submission_is_not_found(
    api: TestClient, world: World, submitted: dict[str, uuid.UUID]
) -> None:
    for target in (submitted["b"], new_id()):
        assert post(api, world.api_token_a, target, {"q1": "LA6568-5"}).status_code == 404


def test_correcting_an_older_version_is_a_conflict(
    api: TestClient, world: World, submitted: dict[str, uuid.UUID]
) -> None:
    assert post(api, world.api_token_a, submitted["a"], {"q1": "LA6568-5"}).status_code == 201
    assert post(api, world.api_token_a, submitted["a"], {"q1": "LA6570-1"}).status_code == 409


def test_an_invalid_answer_is_a_422_naming_the_item(
    api: TestClient, world: World, submitted: dict[str, uuid.UUID]
) -> None:
    response = post(api, world.api_token_a, submitted["a"], {"q3": "often"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "q3"]
    assert post(api, world.api_token_a, submitted["a"], {}).status_code == 422


def test_an_organiser_may_not_correct(
    api: TestClient, db: Session, world: World, submitted: dict[str, uuid.UUID], now: datetime
) -> None:
    staff.create_user(
        db,
        email="org@test.org",
        name="org",
        password=PASSWORD,
        role=Role.ORGANISER,
        center_ids=[world.center_a.id],
        now=now,
    )
    key = staff.create_api_key(db, owner_email="org@test.org", name="org", now=now)
    db.commit()

    assert post(api, key.token, submitted["a"], {"q1": "LA6568-5"}).status_code == 403
