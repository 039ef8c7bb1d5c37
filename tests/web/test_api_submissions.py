"""The submissions JSON API: filters, cursor pages, center scoping, audit, the FHIR Bundle."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.store.base import Channel
from c3n_bot.store.models import AuditEvent, Patient, RegistryDelivery, Submission
from c3n_bot.store.models.conversations import SubmissionStatus
from c3n_bot.store.models.registry import DeliveryStatus
from tests.builders import make_submission
from tests.engine.transcripts import load_flow
from tests.registry.export_data import PHQ9_REPLIES, answers_for
from tests.registry.fhir_checks import check_bundle
from tests.web.conftest import World, new_id

URL = "/api/v1/submissions"


def _auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.api_token_a}"}


def _phq9(db: Session, patient: Patient, at: datetime, **changes: Any) -> Submission:
    answers = answers_for(load_flow("phq9"), PHQ9_REPLIES)
    return make_submission(
        db,
        patient=patient,
        now=at,
        answers=answers,
        scores={"total": 12},
        bands={"total": "moderate"},
        **changes,
    )


def _get(client: TestClient, world: World, path: str = "", params: Any = None) -> Any:
    response = client.get(URL + path, params=params, headers=_auth(world))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def seeded(db: Session, world: World, now: datetime) -> dict[str, Submission]:
    """A PHQ-9 and an IBD check-in in center A, a PHQ-9 in center B."""
    ibd = load_flow("ibd_checkin")
    rows = {
        "a_phq9": _phq9(db, world.patient_a, now - timedelta(days=2)),
        "a_ibd": make_submission(
            db,
            patient=world.patient_a,
            now=now - timedelta(days=1),
            flow_id="ibd_checkin",
            answers=answers_for(ibd, {"wellbeing": "well", "blood": False}),
            status=SubmissionStatus.PARTIAL,
            channel=Channel.SMS,
        ),
        "b_phq9": _phq9(db, world.patient_b, now - timedelta(days=1)),
    }
    db.commit()
    return rows


def test_without_a_key_is_401(client: TestClient, world: World) -> None:
    assert client.get(URL).status_code == 401
    assert client.get(f"{URL}/{new_id()}").status_code == 401
    assert client.get(f"{URL}/{new_id()}/fhir").status_code == 401


def test_lists_the_callers_centers_only_oldest_first(
    client: TestClient, world: World, seeded: dict[str, Submission]
) -> None:
    page = _get(client, world)

    assert [item["id"] for item in page["items"]] == [
        str(seeded["a_phq9"].id),
        str(seeded["a_ibd"].id),
    ]
    assert page["next_cursor"] is None
    first = page["items"][0]
    assert first["patient_external_id"] == "A1"
    assert first["answers"]["q1"]["code"] == "LA6568-5"
    assert first["scores"] == {"total": 12} and first["bands"] == {"total": "moderate"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"flow_id": "ibd_checkin"}, ["a_ibd"]),
        ({"status": "completed"}, ["a_phq9"]),
        ({"since": "2026-03-01T00:00:00Z"}, ["a_ibd"]),
        ({"until": "2026-03-01"}, ["a_phq9"]),
        ({"center_id": "A"}, ["a_phq9", "a_ibd"]),
        ({"patient_id": "A"}, ["a_phq9", "a_ibd"]),
    ],
)
def test_filters(
    client: TestClient,
    world: World,
    seeded: dict[str, Submission],
    params: dict[str, str],
    expected: list[str],
) -> None:
    ids = {"center_id": str(world.center_a.id), "patient_id": str(world.patient_a.id)}
    query = {key: ids[key] if value == "A" else value for key, value in params.items()}

    page = _get(client, world, params=query)

    assert [item["id"] for item in page["items"]] == [str(seeded[name].id) for name in expected]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"flow_id": "nope"}, "flow_id"),
        ({"status": "finished"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),  # base64 of ["x"]
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"patient_id": "123"}, "patient_id"),
    ],
)
def test_a_bad_filter_is_422_naming_it(
    client: TestClient, world: World, params: dict[str, Any], field: str
) -> None:
    response = client.get(URL, params=params, headers=_auth(world))

    assert response.status_code == 422, response.text
    assert field in [str(part) for error in response.json()["detail"] for part in error["loc"]]


def test_another_centers_data_is_404(
    client: TestClient, world: World, seeded: dict[str, Submission]
) -> None:
    other = seeded["b_phq9"].id
    for path in (f"/{other}", f"/{other}/fhir", f"/{new_id()}", f"/{new_id()}/fhir"):
        assert client.get(URL + path, headers=_auth(world)).status_code == 404, path
    for params in (
        {"center_id": str(world.center_b.id)},
        {"patient_id": str(world.patient_b.id)},
        {"center_id": new_id()},
        {"patient_id": new_id()},
    ):
        assert client.get(URL, params=params, headers=_auth(world)).status_code == 404, params


def test_pages_walk_every_submission_once_through_equal_times(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    # Seven share one authored_at, two come later: only the id can break the tie.
    rows = [_phq9(db, world.patient_a, now) for _ in range(7)]
    rows += [_phq9(db, world.patient_a, now + timedelta(microseconds=n)) for n in (1, 2)]
    _phq9(db, world.patient_b, now)
    db.commit()
    expected = [str(r.id) for r in sorted(rows, key=lambda r: (r.authored_at, str(r.id)))]

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = _get(client, world, params=params)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == expected


def test_one_submission_with_its_deliveries_is_audited(
    client: TestClient, world: World, db: Session, now: datetime, seeded: dict[str, Submission]
) -> None:
    submission = seeded["a_phq9"]
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    db.add_all(
        [
            RegistryDelivery(
                submission_id=submission.id,
                sink="ehr",
                status=DeliveryStatus.FAILED,
                attempts=1,
                next_attempt_at=now,
                last_status_code=400,
                operation_outcome=outcome,
                created_at=now,
            ),
            RegistryDelivery(
                submission_id=submission.id,
                sink="registry",
                status=DeliveryStatus.DELIVERED,
                attempts=2,
                next_attempt_at=now,
                last_status_code=200,
                created_at=now,
                delivered_at=now,
            ),
        ]
    )
    db.commit()

    body = _get(client, world, f"/{submission.id}")

    assert body["id"] == str(submission.id) and body["flow_id"] == "phq9"
    assert [(d["sink"], d["status"], d["attempts"]) for d in body["deliveries"]] == [
        ("ehr", "failed", 1),
        ("registry", "delivered", 2),
    ]
    assert body["deliveries"][0]["last_status_code"] == 400
    assert body["deliveries"][0]["operation_outcome"] == outcome
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "submission.view")).one()
    assert (event.patient_id, event.subject) == (world.patient_a.id, str(submission.id))
    assert event.actor_type == "api_key"


def test_a_page_is_audited_once_per_patient_shown(
    client: TestClient, world: World, db: Session, seeded: dict[str, Submission]
) -> None:
    _get(client, world)

    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "submission.list")).all()
    assert [(e.patient_id, e.detail) for e in events] == [(world.patient_a.id, {"submissions": 2})]


def test_fhir_is_a_valid_transaction_bundle(
    client: TestClient, world: World, db: Session, seeded: dict[str, Submission]
) -> None:
    submission = seeded["a_phq9"]

    response = client.get(f"{URL}/{submission.id}/fhir", headers=_auth(world))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    check_bundle(bundle, load_flow("phq9"))
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "submission.fhir")).one()
    assert event.subject == str(submission.id)
