"""What an admin does to staff accounts and API keys, within the admin's own centers.

An admin sees the users who work for one of the admin's centers (and users with no center
yet), and grants or withdraws only those centers: a user's other centers stay as they are.
An admin cannot withdraw their own admin role nor deactivate themself, so a network always
keeps an admin who can undo a mistake.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from c3n_bot.service import audit, staff
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.store.base import Role
from c3n_bot.store.models import ApiKey, Center, StaffCenter, StaffUser


def _in_scope(centers: set[uuid.UUID]) -> ColumnElement[bool]:
    works_there = exists().where(
        StaffCenter.staff_user_id == StaffUser.id, StaffCenter.center_id.in_(centers)
    )
    no_center = ~exists().where(StaffCenter.staff_user_id == StaffUser.id)
    return or_(works_there, no_center)


def users(db: Session, *, centers: set[uuid.UUID]) -> Sequence[StaffUser]:
    """Staff users the admin of these centers manages, by email."""
    return db.scalars(select(StaffUser).where(_in_scope(centers)).order_by(StaffUser.email)).all()


def get_user(db: Session, *, user_id: uuid.UUID, centers: set[uuid.UUID]) -> StaffUser:
    """One managed user; NotFound when absent or outside the admin's centers."""
    user = db.scalar(select(StaffUser).where(StaffUser.id == user_id, _in_scope(centers)))
    if user is None:
        raise NotFound("staff user")
    return user


def create_user(
    db: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: Role,
    center_ids: set[uuid.UUID],
    centers: set[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> StaffUser:
    """Create a user working for some of the admin's centers."""
    _check_centers(center_ids, centers)
    if not name.strip():
        raise InvalidInput("name", "is empty")
    user = staff.create_user(
        db,
        email=email,
        name=name.strip(),
        password=password,
        role=role,
        center_ids=sorted(center_ids),
        now=now,
    )
    _audit(db, actor, "staff.create", user, now)
    return user


def update_user(
    db: Session,
    *,
    user_id: uuid.UUID,
    role: Role,
    center_ids: set[uuid.UUID],
    active: bool,
    admin: StaffUser,
    centers: set[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
) -> StaffUser:
    """Change a user's role, which of the admin's centers they work for, and whether active."""
    user = get_user(db, user_id=user_id, centers=centers)
    _check_centers(center_ids, centers)
    if user.id == admin.id and (role != Role.ADMIN or not active):
        raise InvalidInput("role", "you cannot remove your own admin role or deactivate yourself")
    kept = [center for center in user.centers if center.id not in centers]
    granted = list(db.scalars(select(Center).where(Center.id.in_(center_ids))))
    user.role = role
    user.active = active
    user.centers = sorted([*kept, *granted], key=lambda center: center.name)
    db.flush()
    _audit(db, actor, "staff.update", user, now)
    return user


def api_keys(db: Session, *, centers: set[uuid.UUID]) -> Sequence[ApiKey]:
    """Keys of the users the admin manages, newest first."""
    owners = select(StaffUser.id).where(_in_scope(centers))
    query = select(ApiKey).where(ApiKey.staff_user_id.in_(owners))
    return db.scalars(query.order_by(ApiKey.created_at.desc(), ApiKey.prefix)).all()


def create_api_key(
    db: Session,
    *,
    owner_id: uuid.UUID,
    name: str,
    centers: set[uuid.UUID],
    actor: audit.Actor,
    now: datetime,
    expires_at: datetime | None = None,
) -> staff.NewApiKey:
    """A key acting as a managed user; its token is in the result and nowhere else."""
    owner = get_user(db, user_id=owner_id, centers=centers)
    if not name.strip():
        raise InvalidInput("name", "is empty")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at", "is in the past")
    return staff.create_api_key(
        db, owner_email=owner.email, name=name.strip(), now=now, expires_at=expires_at, actor=actor
    )


def revoke_api_key(
    db: Session, *, key_id: uuid.UUID, centers: set[uuid.UUID], actor: audit.Actor, now: datetime
) -> bool:
    """Revoke a key at once; False when it already was."""
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound("API key")
    get_user(db, user_id=key.staff_user_id, centers=centers)
    if key.revoked_at is not None:
        return False
    key.revoked_at = now
    audit.record(db, actor=actor, action="api_key.revoke", subject=key.prefix, now=now)
    return True


def _check_centers(wanted: set[uuid.UUID], allowed: set[uuid.UUID]) -> None:
    if not wanted <= allowed:
        raise InvalidInput("centers", "you can only grant your own centers")


def _audit(db: Session, actor: audit.Actor, action: str, user: StaffUser, now: datetime) -> None:
    detail = {
        "role": user.role.value,
        "active": user.active,
        "centers": sorted(str(center.id) for center in user.centers),
    }
    audit.record(db, actor=actor, action=action, subject=user.email, now=now, detail=detail)
