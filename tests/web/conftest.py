"""An app on the test database, a client, and a small two-center world with staff users."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.service import staff
from c3n_bot.store.base import Channel, Condition, Relationship, Role
from c3n_bot.store.models import (
    Center,
    ChannelIdentity,
    Contact,
    ContactPatient,
    Network,
    Patient,
)
from c3n_bot.web.app import create_app

PASSWORD = "correct horse battery"


@dataclass
class World:
    """Two centers, a clinician in each, an admin in both, a patient in each."""

    center_a: Center
    center_b: Center
    patient_a: Patient
    patient_b: Patient
    clinician_a: str
    clinician_b: str
    admin: str
    api_token_a: str


def _center(db: Session, network: Network, slug: str, tz: str, now: datetime) -> Center:
    center = Center(network=network, name=f"Center {slug}", slug=slug, timezone=tz, created_at=now)
    db.add(center)
    return center


def _patient(db: Session, center: Center, external_id: str, now: datetime) -> Patient:
    patient = Patient(
        center=center,
        external_id=external_id,
        given_name=f"Given{external_id}",
        family_name=f"Family{external_id}",
        birth_date=date(2012, 5, 1),
        condition=Condition.IBD,
        language="en",
        timezone=center.timezone,
        created_at=now,
    )
    contact = Contact(
        display_name=f"Parent of {external_id}",
        language="en",
        timezone=center.timezone,
        created_at=now,
    )
    contact.identities.append(
        ChannelIdentity(channel=Channel.SMS, address="+16175550100", created_at=now)
        if external_id == "A1"
        else ChannelIdentity(channel=Channel.TELEGRAM, address="4242", created_at=now)
    )
    db.add_all([patient, contact])
    db.add(ContactPatient(contact=contact, patient=patient, relation=Relationship.PARENT))
    return patient


@pytest.fixture
def world(db: Session, now: datetime) -> World:
    """Seed the small world every web test uses."""
    network = Network(
        name="Test Network", slug="test", identifier_system="urn:test", created_at=now
    )
    center_a = _center(db, network, "a", "America/New_York", now)
    center_b = _center(db, network, "b", "America/Los_Angeles", now)
    patient_a = _patient(db, center_a, "A1", now)
    patient_b = _patient(db, center_b, "B1", now)
    db.flush()
    users = {
        "clin-a@test.org": (Role.CLINICIAN, [center_a.id]),
        "clin-b@test.org": (Role.CLINICIAN, [center_b.id]),
        "admin@test.org": (Role.ADMIN, [center_a.id, center_b.id]),
    }
    for email, (role, centers) in users.items():
        staff.create_user(
            db,
            email=email,
            name=email.split("@")[0],
            password=PASSWORD,
            role=role,
            center_ids=centers,
            now=now,
        )
    key = staff.create_api_key(db, owner_email="clin-a@test.org", name="ehr", now=now)
    db.commit()
    return World(
        center_a=center_a,
        center_b=center_b,
        patient_a=patient_a,
        patient_b=patient_b,
        clinician_a="clin-a@test.org",
        clinician_b="clin-b@test.org",
        admin="admin@test.org",
        api_token_a=key.token,
    )


@pytest.fixture
def client(settings: Settings, now: datetime) -> Iterator[TestClient]:
    """The real app over the test database, at a fixed time, with SMS configured.

    The app never sends here (no embedded workers), so the credentials reach no provider;
    they make SMS a channel this deployment can start flows on.
    """
    sms = settings.model_copy(
        update={
            "twilio_account_sid": "AC" + "0" * 32,
            "twilio_auth_token": SecretStr("test-auth-token"),
            "twilio_from": "+15005550006",
        }
    )
    app = create_app(sms, clock=lambda: now)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The CSRF token embedded in a page's form."""
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real form."""
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def new_id() -> str:
    """A random UUID string for ids that do not exist."""
    return str(uuid.uuid4())
