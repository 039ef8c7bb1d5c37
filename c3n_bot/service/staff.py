"""Staff users: passwords, sign-in with a rate limit, and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3n_bot.service import audit
from c3n_bot.service.errors import Conflict, InvalidInput, NotFound
from c3n_bot.store.base import Role
from c3n_bot.store.models import ApiKey, AuditEvent, Center, Network, StaffUser

LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_MAX_FAILURES = 5
MIN_PASSWORD_LENGTH = 10
API_KEY_PREFIX = "c3n_"

_hasher = PasswordHasher()
# Verifying against this keeps an unknown email as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created key; `token` is shown once and never stored."""

    key: ApiKey
    token: str


class LoginThrottled(Exception):
    """Too many failed sign-ins for this email or address; try again later."""


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def create_user(
    db: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: Role,
    center_ids: list[uuid.UUID],
    now: datetime,
) -> StaffUser:
    """Create a staff user scoped to the given centers."""
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("email", "not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    if db.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise Conflict(f"a user with email {email} exists")
    centers = list(db.scalars(select(Center).where(Center.id.in_(center_ids))))
    if len(centers) != len(set(center_ids)):
        raise InvalidInput("centers", "unknown center")
    user = StaffUser(
        email=email,
        name=name,
        password_hash=hash_password(password),
        role=role,
        created_at=now,
    )
    user.centers = centers
    db.add(user)
    db.flush()
    return user


def authenticate(
    db: Session, *, email: str, password: str, ip: str | None, now: datetime
) -> StaffUser | None:
    """The active user with this email and password, or None; failures are counted."""
    email = email.strip().lower()
    since = now - LOGIN_WINDOW
    # Failures count per email and, when the address is known, per address.
    same_source = AuditEvent.subject == email
    if ip is not None:
        same_source = same_source | (AuditEvent.ip == ip)
    failures = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "login.failed", AuditEvent.at >= since)
        .where(same_source)
    )
    if (failures or 0) >= LOGIN_MAX_FAILURES:
        raise LoginThrottled()
    user = db.scalar(select(StaffUser).where(StaffUser.email == email))
    if user is None or not user.active or not _verify(user.password_hash, password):
        if user is None:
            _verify(_DUMMY_HASH, password)
        actor = audit.Actor(type="anonymous", id=None, ip=ip)
        audit.record(db, actor=actor, action="login.failed", subject=email, now=now)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    actor = audit.Actor(type="staff", id=str(user.id), ip=ip)
    audit.record(db, actor=actor, action="login", subject=email, now=now)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_api_key(
    db: Session,
    *,
    owner_email: str,
    name: str,
    now: datetime,
    expires_at: datetime | None = None,
    actor: audit.Actor = audit.SYSTEM,
) -> NewApiKey:
    """Create a bearer key acting as its owner; the returned token is shown only once."""
    owner = db.scalar(select(StaffUser).where(StaffUser.email == owner_email.strip().lower()))
    if owner is None:
        raise NotFound(f"no staff user {owner_email}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        prefix=prefix,
        secret_hash=_digest(secret),
        staff_user_id=owner.id,
        created_at=now,
        expires_at=expires_at,
    )
    db.add(key)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="api_key.create",
        subject=prefix,
        now=now,
        detail={"owner": str(owner.id)},
    )
    return NewApiKey(key=key, token=f"{API_KEY_PREFIX}{prefix}_{secret}")


def resolve_api_key(db: Session, *, token: str, now: datetime) -> StaffUser | None:
    """The owner of a valid, unrevoked, unexpired key, or None."""
    body = token.removeprefix(API_KEY_PREFIX)
    prefix, sep, secret = body.partition("_")
    if not token.startswith(API_KEY_PREFIX) or not sep or not secret:
        return None
    key = db.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(secret)):
        return None
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    if not key.staff_user.active:
        return None
    # Written at most once a minute so a busy integration does not write on every call.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        key.last_used_at = now
    return key.staff_user


def _digest(secret: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


def center_ids(user: StaffUser) -> set[uuid.UUID]:
    """The centers a staff user may see."""
    return {center.id for center in user.centers}


def find_center_id(db: Session, ref: str) -> uuid.UUID:
    """A center's id from its slug, or NETWORK/CENTER when slugs repeat across networks."""
    network_slug, _, center_slug = ref.rpartition("/")
    query = select(Center.id).where(Center.slug == center_slug)
    if network_slug:
        query = query.join(Network).where(Network.slug == network_slug)
    found = db.scalars(query).all()
    if len(found) != 1:
        problem = "unknown center" if not found else "ambiguous center (use NETWORK/CENTER)"
        raise NotFound(f"{problem}: {ref}")
    return found[0]


def all_center_ids(db: Session) -> set[uuid.UUID]:
    """Every center (for operators at the command line, who act for the whole network)."""
    return set(db.scalars(select(Center.id)))
