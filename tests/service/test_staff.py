"""Staff users: argon2 passwords, throttled sign-in, and API keys stored only as hashes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from c3n_bot.service.errors import Conflict, InvalidInput
from c3n_bot.service.staff import (
    LoginThrottled,
    authenticate,
    create_api_key,
    create_user,
    resolve_api_key,
)
from c3n_bot.store.base import Role
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import ApiKey, AuditEvent, StaffUser
from tests.builders import make_center

EMAIL = "dana.clinician@example.org"
PASSWORD = "correct horse battery"


@pytest.fixture
def user(db: Session, now: datetime) -> StaffUser:
    """A clinician of one center, committed."""
    center = make_center(db, now=now)
    user = create_user(
        db,
        email=EMAIL,
        name="Dana",
        password=PASSWORD,
        role=Role.CLINICIAN,
        center_ids=[center.id],
        now=now,
    )
    db.commit()
    return user


def sign_in(db: Session, now: datetime, password: str = PASSWORD) -> StaffUser | None:
    """Authenticate the test user from one address."""
    return authenticate(db, email=EMAIL, password=password, ip="203.0.113.7", now=now)


def test_password_is_stored_as_argon2id(user: StaffUser, engine: Engine) -> None:
    """Only an argon2id hash of the password reaches the database."""
    with make_session_factory(engine)() as other:
        stored = other.scalars(select(StaffUser.password_hash)).one()

    assert stored != PASSWORD
    assert PASSWORD not in stored
    assert stored.startswith("$argon2id$")
    assert [center.slug for center in user.centers]


def test_duplicate_email_is_a_conflict(user: StaffUser, db: Session, now: datetime) -> None:
    """Emails are unique, whatever their case or surrounding spaces."""
    with pytest.raises(Conflict):
        create_user(
            db,
            email=f"  {EMAIL.upper()} ",
            name="Other Dana",
            password="another long password",
            role=Role.ADMIN,
            center_ids=[],
            now=now,
        )


def test_short_password_is_refused(db: Session, now: datetime) -> None:
    """A password under ten characters names the password field."""
    with pytest.raises(InvalidInput) as caught:
        create_user(
            db,
            email=EMAIL,
            name="Dana",
            password="short",
            role=Role.CLINICIAN,
            center_ids=[],
            now=now,
        )
    assert caught.value.field == "password"
    assert db.scalars(select(StaffUser)).all() == []


@pytest.mark.usefixtures("user")
def test_authenticate(db: Session, now: datetime) -> None:
    """The right password signs in (case-insensitive email); anything else does not."""
    signed_in = authenticate(db, email=f" {EMAIL.title()}", password=PASSWORD, ip=None, now=now)

    assert signed_in is not None and signed_in.email == EMAIL
    assert signed_in.last_login_at == now
    assert sign_in(db, now, password=PASSWORD.upper()) is None
    unknown = authenticate(db, email="nobody@example.org", password=PASSWORD, ip=None, now=now)
    assert unknown is None


def test_inactive_user_cannot_sign_in(user: StaffUser, db: Session, now: datetime) -> None:
    """A deactivated account is refused even with its password."""
    user.active = False
    db.flush()

    assert sign_in(db, now) is None


@pytest.mark.usefixtures("user")
def test_five_failures_throttle_sign_in_for_fifteen_minutes(db: Session, now: datetime) -> None:
    """After five failures even the right password is refused, until the window passes."""
    for minute in range(4):
        assert sign_in(db, now + timedelta(minutes=minute), password="wrong password") is None
    assert sign_in(db, now + timedelta(minutes=4)) is not None  # four failures are allowed
    assert sign_in(db, now + timedelta(minutes=4), password="wrong password") is None

    with pytest.raises(LoginThrottled):
        sign_in(db, now + timedelta(minutes=5))
    with pytest.raises(LoginThrottled):
        sign_in(db, now + timedelta(minutes=15))  # the first failure is still in the window
    assert sign_in(db, now + timedelta(minutes=16)) is not None
    failures = db.scalars(select(AuditEvent).where(AuditEvent.action == "login.failed")).all()
    assert len(failures) == 5


def test_api_key_round_trip(user: StaffUser, db: Session, engine: Engine, now: datetime) -> None:
    """The token is returned once; the database keeps its prefix and a sha256 of its secret."""
    new = create_api_key(db, owner_email=EMAIL, name="EHR bridge", now=now)
    db.commit()
    prefix, _, secret = new.token.removeprefix("c3n_").partition("_")

    with make_session_factory(engine)() as other:
        stored = [
            *other.execute(select(ApiKey.__table__)).one(),
            *(value for row in other.execute(select(AuditEvent.__table__)) for value in row),
        ]
        owner = resolve_api_key(other, token=new.token, now=now + timedelta(days=30))

    assert new.token.startswith("c3n_")
    assert prefix == new.key.prefix
    assert new.key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert not [value for value in stored if secret in str(value)]
    assert owner is not None and owner.id == user.id


@pytest.mark.usefixtures("user")
def test_api_key_refusals(db: Session, now: datetime) -> None:
    """Wrong secret, unknown prefix, missing scheme, revoked or expired keys resolve to None."""
    new = create_api_key(
        db, owner_email=EMAIL, name="bridge", now=now, expires_at=now + timedelta(hours=1)
    )
    prefix, _, secret = new.token.removeprefix("c3n_").partition("_")

    def resolve(token: str, at: datetime = now) -> StaffUser | None:
        return resolve_api_key(db, token=token, now=at)

    assert resolve(new.token) is not None
    assert resolve(f"c3n_{prefix}_{'A' * len(secret)}") is None  # wrong secret
    assert resolve(f"c3n_{'0' * len(prefix)}_{secret}") is None  # unknown prefix
    assert resolve(f"{prefix}_{secret}") is None  # not a c3n_ token
    assert resolve(new.token, now + timedelta(minutes=59)) is not None
    assert resolve(new.token, now + timedelta(hours=1)) is None
    new.key.revoked_at = now
    db.flush()
    assert resolve(new.token) is None


def test_api_key_of_inactive_owner_is_refused(user: StaffUser, db: Session, now: datetime) -> None:
    """Deactivating a user disables their keys."""
    new = create_api_key(db, owner_email=EMAIL, name="bridge", now=now)
    user.active = False
    db.flush()

    assert resolve_api_key(db, token=new.token, now=now) is None


@pytest.mark.usefixtures("user")
def test_failures_without_an_address_do_not_throttle_other_accounts(
    db: Session, now: datetime
) -> None:
    """Failed sign-ins of other emails with no known address leave this account alone."""
    for attempt in range(5):
        authenticate(db, email=f"guess{attempt}@example.org", password="x", ip=None, now=now)

    assert authenticate(db, email=EMAIL, password=PASSWORD, ip=None, now=now) is not None
