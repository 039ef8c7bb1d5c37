"""Invitations over the API and the CLI: a Telegram deep link and an SMS join code."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from c3n_bot.cli import app as cli_app
from c3n_bot.config import Settings
from c3n_bot.service.enrollment import CODE_ALPHABET, Redemption, redeem
from c3n_bot.store.base import Channel
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import AuditEvent, ContactPatient, Enrollment
from tests.builders import link, make_contact, make_patient
from tests.conftest import migrate, sqlalchemy_url
from tests.web.conftest import World, new_id

TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE = re.compile(f"^[{CODE_ALPHABET}]{{8}}$")


def _auth(world: World) -> dict[str, str]:
    return {"authorization": f"Bearer {world.api_token_a}"}


def _contact_of(db: Session, patient_id: uuid.UUID) -> uuid.UUID:
    contact_id = db.scalar(
        select(ContactPatient.contact_id).where(ContactPatient.patient_id == patient_id)
    )
    # End the read at once (SQLite locks on begin); a commit, unlike a rollback, keeps the
    # seed objects loaded, so touching them later does not open a transaction again.
    db.commit()
    assert contact_id is not None
    return contact_id


def test_create_returns_the_token_the_code_and_the_join_text(
    client: TestClient, world: World, db: Session, now: datetime
) -> None:
    contact_id = _contact_of(db, world.patient_a.id)

    response = client.post(
        f"/api/v1/patients/{world.patient_a.id}/enrollments",
        json={"contact_id": str(contact_id)},
        headers=_auth(world),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert TOKEN.fullmatch(body["telegram_token"])
    assert CODE.fullmatch(body["sms_code"])
    assert body["sms_text"] == f"JOIN {body['sms_code']}"
    assert datetime.fromisoformat(body["expires_at"]) == now + timedelta(days=14)
    assert body["telegram_link"] is None  # Telegram is off in these settings
    assert body["contact_id"] == str(contact_id)
    row = db.get(Enrollment, uuid.UUID(body["id"]))
    assert row is not None and (row.token, row.sms_code) == (
        body["telegram_token"],
        body["sms_code"],
    )
    assert row.created_by is not None  # the key's owner
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "enrollment.create"))
    assert audit is not None and audit.patient_id == world.patient_a.id
    # What the family types works.
    result, identity = redeem(
        db, channel=Channel.SMS, address="+16175550177", code=body["sms_code"], now=now
    )
    assert result == Redemption.ENROLLED and identity is not None
    assert identity.contact_id == contact_id
    db.rollback()


def test_each_invitation_is_new(client: TestClient, world: World, db: Session) -> None:
    contact_id = _contact_of(db, world.patient_a.id)
    url = f"/api/v1/patients/{world.patient_a.id}/enrollments"

    bodies = [
        client.post(url, json={"contact_id": str(contact_id)}, headers=_auth(world)).json()
        for _ in range(3)
    ]

    assert len({b["telegram_token"] for b in bodies}) == 3
    assert len({b["sms_code"] for b in bodies}) == 3


def test_the_deep_link_names_the_bot_when_telegram_is_on(
    client: TestClient, world: World, db: Session
) -> None:
    contact_id = _contact_of(db, world.patient_a.id)
    asked: list[Settings] = []

    def bot_username(settings: Settings) -> str:
        asked.append(settings)
        return "c3n_demo_bot"

    cast(FastAPI, client.app).state.bot_username = bot_username

    response = client.post(
        f"/api/v1/patients/{world.patient_a.id}/enrollments",
        json={"contact_id": str(contact_id)},
        headers=_auth(world),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["telegram_link"] == f"https://t.me/c3n_demo_bot?start={body['telegram_token']}"
    assert len(asked) == 1


@pytest.mark.parametrize("whose", ["other patient's", "unknown"])
def test_a_contact_not_linked_to_the_patient_is_named(
    client: TestClient, world: World, db: Session, whose: str
) -> None:
    contact_id = _contact_of(db, world.patient_b.id) if whose != "unknown" else new_id()

    response = client.post(
        f"/api/v1/patients/{world.patient_a.id}/enrollments",
        json={"contact_id": str(contact_id)},
        headers=_auth(world),
    )

    assert response.status_code == 422
    fields = [str(part) for error in response.json()["detail"] for part in error["loc"]]
    assert "contact_id" in fields
    assert db.scalars(select(Enrollment)).all() == []
    db.rollback()


@pytest.mark.parametrize("body", [{}, {"contact_id": "not-a-uuid"}])
def test_a_malformed_body_names_contact_id(
    client: TestClient, world: World, body: dict[str, str]
) -> None:
    response = client.post(
        f"/api/v1/patients/{world.patient_a.id}/enrollments", json=body, headers=_auth(world)
    )

    assert response.status_code == 422
    fields = [str(part) for error in response.json()["detail"] for part in error["loc"]]
    assert "contact_id" in fields


def test_another_centers_patient_is_not_found(
    client: TestClient, world: World, db: Session
) -> None:
    contact_id = _contact_of(db, world.patient_b.id)

    response = client.post(
        f"/api/v1/patients/{world.patient_b.id}/enrollments",
        json={"contact_id": str(contact_id)},
        headers=_auth(world),
    )
    unknown = client.post(
        f"/api/v1/patients/{new_id()}/enrollments",
        json={"contact_id": str(contact_id)},
        headers=_auth(world),
    )

    assert response.status_code == 404
    assert unknown.status_code == 404
    assert response.json() == unknown.json()  # nothing tells the two apart
    assert db.scalars(select(Enrollment)).all() == []
    db.rollback()


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dXNlcjpwdw=="])
def test_no_key_gets_401(client: TestClient, world: World, db: Session, header: str | None) -> None:
    contact_id = _contact_of(db, world.patient_a.id)

    response = client.post(
        f"/api/v1/patients/{world.patient_a.id}/enrollments",
        json={"contact_id": str(contact_id)},
        headers={"authorization": header} if header else {},
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert db.scalars(select(Enrollment)).all() == []
    db.rollback()


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    # The command configures logging onto the runner's stderr, which closes after the run.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    alembic = logging.getLogger("alembic")
    alembic_level = alembic.level
    yield
    root.handlers[:], root.level = handlers, level
    alembic.setLevel(alembic_level)


@pytest.mark.usefixtures("_restore_logging")
def test_cli_enroll_prints_a_join_line(clean_env: Path) -> None:
    url = f"sqlite:///{clean_env / 'enroll.db'}"
    migrate(url)
    engine = make_engine(sqlalchemy_url(url))
    try:
        with make_session_factory(engine).begin() as db:
            now = datetime.now(UTC)
            patient = make_patient(db, now=now)
            contact = make_contact(db, now=now)
            link(db, contact=contact, patient=patient)
            patient_id, contact_id = patient.id, contact.id

        result = CliRunner().invoke(
            cli_app,
            ["enroll", "--patient", str(patient_id), "--contact", str(contact_id)],
            env={"C3N_DATABASE_URL": url, "C3N_DEMO": "1"},
        )

        assert result.exit_code == 0, result.output
        join = re.search(r"^SMS:\s+JOIN ([A-Z0-9]+)$", result.stdout, re.MULTILINE)
        assert join is not None, result.stdout
        assert CODE.fullmatch(join.group(1))
        start = re.search(r"^Telegram:\s+/start (\S+)$", result.stdout, re.MULTILINE)
        assert start is not None and TOKEN.fullmatch(start.group(1))
        assert "single use" in result.stdout
        with make_session_factory(engine)() as db:
            row = db.scalar(select(Enrollment))
            assert row is not None
            assert (row.sms_code, row.token) == (join.group(1), start.group(1))
            assert (row.patient_id, row.contact_id) == (patient_id, contact_id)
    finally:
        engine.dispose()


@pytest.mark.usefixtures("_restore_logging")
def test_cli_enroll_refuses_a_contact_of_someone_else(clean_env: Path) -> None:
    url = f"sqlite:///{clean_env / 'enroll.db'}"
    migrate(url)
    engine = make_engine(sqlalchemy_url(url))
    try:
        with make_session_factory(engine).begin() as db:
            now = datetime.now(UTC)
            patient = make_patient(db, now=now)
            stranger = make_contact(db, now=now)
            patient_id, contact_id = patient.id, stranger.id

        result = CliRunner().invoke(
            cli_app,
            ["enroll", "--patient", str(patient_id), "--contact", str(contact_id)],
            env={"C3N_DATABASE_URL": url, "C3N_DEMO": "1"},
        )

        assert result.exit_code == 1
        assert "JOIN" not in result.stdout
        assert "patient or contact" in result.stderr
        with make_session_factory(engine)() as db:
            assert db.scalars(select(Enrollment)).all() == []
    finally:
        engine.dispose()
