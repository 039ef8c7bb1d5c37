"""POST /api/v1/patients/{id}/sessions: start a flow now, or queue it behind the current one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from c3n_bot.store.base import Channel
from c3n_bot.store.models import (
    AuditEvent,
    ContactPatient,
    ConversationSession,
    DueWork,
    OutboxMessage,
)
from c3n_bot.store.models.conversations import OutboxStatus, SessionStatus
from c3n_bot.store.models.scheduling import DueStatus
from tests.web.conftest import World, new_id


def _auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.api_token_a}"}


def _url(patient_id: uuid.UUID | str) -> str:
    return f"/api/v1/patients/{patient_id}/sessions"


def _read(db: Session, query: Select[Any]) -> Sequence[Any]:
    # End each read at once: on SQLite a transaction holds the lock the app writes under.
    db.expire_all()
    try:
        return db.scalars(query).all()
    finally:
        db.commit()


@pytest.fixture
def ids(db: Session, world: World) -> dict[str, uuid.UUID]:
    """Ids of the seed rows (read before the app writes, so no expired object is touched)."""
    patient_a, patient_b = world.patient_a.id, world.patient_b.id
    links = _read(db, select(ContactPatient))
    contact_of = {link.patient_id: link.contact_id for link in links}
    return {
        "patient_a": patient_a,
        "patient_b": patient_b,
        "contact_a": contact_of[patient_a],
        "contact_b": contact_of[patient_b],
    }


def _errors(body: dict[str, Any]) -> list[str]:
    return [str(part) for error in body["detail"] for part in error["loc"]]


def test_start_a_flow_now(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    response = client.post(_url(ids["patient_a"]), json={"flow": "phq9"}, headers=_auth(world))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "started"
    assert body["queued_id"] is None
    assert body["contact_id"] == str(ids["contact_a"])
    (session,) = _read(
        db,
        select(ConversationSession).where(ConversationSession.id == uuid.UUID(body["session_id"])),
    )
    assert (session.flow_id, session.status, session.trigger) == (
        "phq9",
        SessionStatus.ACTIVE,
        "manual",
    )
    assert (session.patient_id, session.contact_id) == (ids["patient_a"], ids["contact_a"])
    rows = list(_read(db, select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [(row.kind, row.channel, row.status) for row in rows] == [
        ("prompt", Channel.SMS, OutboxStatus.PENDING)
    ] * 2
    assert rows[0].body.startswith("Over the last 2 weeks")
    assert rows[1].body == "(1 of 10) Little interest or pleasure in doing things"
    assert {row.session_id for row in rows} == {session.id}
    (audit,) = _read(db, select(AuditEvent).where(AuditEvent.action == "session.start"))
    assert (audit.actor_type, audit.patient_id, audit.detail) == (
        "api_key",
        ids["patient_a"],
        {"flow": "phq9"},
    )


def test_a_second_start_waits_for_the_first(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    first = client.post(_url(ids["patient_a"]), json={"flow": "phq9"}, headers=_auth(world))
    assert first.status_code == 201
    second = client.post(
        _url(ids["patient_a"]),
        json={"flow": "ibd_checkin", "contact_id": str(ids["contact_a"])},
        headers=_auth(world),
    )

    assert second.status_code == 202, second.text
    body = second.json()
    assert (body["status"], body["session_id"]) == ("queued", None)
    (waiting,) = _read(db, select(DueWork).where(DueWork.id == uuid.UUID(body["queued_id"])))
    assert (waiting.flow_id, waiting.status, waiting.patient_id) == (
        "ibd_checkin",
        DueStatus.PENDING,
        ids["patient_a"],
    )
    sessions = list(_read(db, select(ConversationSession)))
    assert [s.flow_id for s in sessions] == ["phq9"]
    assert len(_read(db, select(OutboxMessage))) == 2  # only the first start spoke


def test_an_unknown_flow_is_named(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    response = client.post(_url(ids["patient_a"]), json={"flow": "phq10"}, headers=_auth(world))
    assert response.status_code == 422
    assert "flow" in _errors(response.json())
    assert list(_read(db, select(ConversationSession))) == []


@pytest.mark.parametrize("body", [{}, {"flow": ""}, {"flow": "phq9", "extra": 1}])
def test_a_malformed_body_is_refused(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], body: dict[str, Any]
) -> None:
    response = client.post(_url(ids["patient_a"]), json=body, headers=_auth(world))
    assert response.status_code == 422


def test_a_contact_not_linked_to_the_patient_is_named(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    for contact in (ids["contact_b"], uuid.UUID(new_id())):
        response = client.post(
            _url(ids["patient_a"]),
            json={"flow": "phq9", "contact_id": str(contact)},
            headers=_auth(world),
        )
        assert response.status_code == 422
        assert "contact_id" in _errors(response.json())
    assert list(_read(db, select(ConversationSession))) == []


def test_an_unreachable_channel_is_named(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    # Patient A's parent has an SMS number only.
    response = client.post(
        _url(ids["patient_a"]), json={"flow": "phq9", "channel": "telegram"}, headers=_auth(world)
    )
    assert response.status_code == 422
    assert "channel" in _errors(response.json())
    assert list(_read(db, select(ConversationSession))) == []


def test_another_centers_patient_is_not_found(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session
) -> None:
    for patient in (ids["patient_b"], new_id()):
        response = client.post(_url(patient), json={"flow": "phq9"}, headers=_auth(world))
        assert response.status_code == 404
    assert list(_read(db, select(ConversationSession))) == []


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dXNlcjpwdw=="])
def test_no_valid_key_gets_401(
    client: TestClient, world: World, ids: dict[str, uuid.UUID], db: Session, header: str | None
) -> None:
    headers = {"authorization": header} if header else {}
    response = client.post(_url(ids["patient_a"]), json={"flow": "phq9"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert list(_read(db, select(ConversationSession))) == []
