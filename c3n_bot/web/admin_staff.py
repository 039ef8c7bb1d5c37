"""Admin pages for staff: create users, change their role and centers, deactivate them; create
API keys (the token is shown once, on the page that answers the form) and revoke them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from c3n_bot.engine.messages import N_
from c3n_bot.service import staff_admin
from c3n_bot.service.errors import Conflict, InvalidInput, ServiceError
from c3n_bot.service.staff import MIN_PASSWORD_LENGTH
from c3n_bot.store.base import Role
from c3n_bot.web.access import AdminDep, AdminFormDep
from c3n_bot.web.deps import DbDep, NowDep, Principal
from c3n_bot.web.templating import flash, render

router = APIRouter(prefix="/admin")
Centers = Annotated[list[uuid.UUID], Form()]
NOT_SAVED = N_("Not saved:")


@router.get("/users")
def users_page(request: Request, db: DbDep, principal: AdminDep) -> Response:
    """The users of the admin's centers, each with a form, and a form for a new one."""
    context = {
        "staff": principal.user,
        "users": staff_admin.users(db, centers=principal.centers),
        "centers": sorted(principal.user.centers, key=lambda center: center.name),
        "roles": list(Role),
        "min_password": MIN_PASSWORD_LENGTH,
    }
    return render(request, "admin_users.html", context)


@router.post("/users")
def create_user(
    request: Request,
    db: DbDep,
    now: NowDep,
    principal: AdminFormDep,
    email: Annotated[str, Form(max_length=254)],
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    role: Annotated[Role, Form()],
    centers: Centers = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    """Create a user for some of the admin's centers."""
    try:
        staff_admin.create_user(
            db,
            email=email,
            name=name,
            password=password,
            role=role,
            center_ids=set(centers),
            centers=principal.centers,
            actor=principal.actor(request),
            now=now,
        )
    except (InvalidInput, Conflict) as exc:
        return _refused(request, db, exc, "/admin/users#new")
    db.commit()
    flash(request, "ok", N_("User created."))
    return RedirectResponse("/admin/users", status.HTTP_303_SEE_OTHER)


@router.post("/users/{user_id}")
def update_user(
    request: Request,
    user_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    principal: AdminFormDep,
    role: Annotated[Role, Form()],
    centers: Centers = [],  # noqa: B006
    active: Annotated[str, Form()] = "",
) -> Response:
    """Change a user's role, centers (among the admin's) and whether they may sign in."""
    try:
        staff_admin.update_user(
            db,
            user_id=user_id,
            role=role,
            center_ids=set(centers),
            active=active == "on",
            admin=principal.user,
            centers=principal.centers,
            actor=principal.actor(request),
            now=now,
        )
    except InvalidInput as exc:
        return _refused(request, db, exc, f"/admin/users#u-{user_id}")
    db.commit()
    flash(request, "ok", N_("User saved."))
    return RedirectResponse(f"/admin/users#u-{user_id}", status.HTTP_303_SEE_OTHER)


@router.get("/keys")
def keys_page(request: Request, db: DbDep, principal: AdminDep) -> Response:
    """API keys of the admin's users, and a form for a new one."""
    return _keys(request, db, principal)


@router.post("/keys")
def create_key(
    request: Request,
    db: DbDep,
    now: NowDep,
    principal: AdminFormDep,
    owner: Annotated[uuid.UUID, Form()],
    name: Annotated[str, Form(max_length=200)],
    expires_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Create a key and show its token on this page only; it is never shown again."""
    try:
        expires = (
            datetime.combine(date.fromisoformat(expires_on), time(), UTC) if expires_on else None
        )
        new = staff_admin.create_api_key(
            db,
            owner_id=owner,
            name=name,
            centers=principal.centers,
            actor=principal.actor(request),
            now=now,
            expires_at=expires,
        )
    except ValueError:
        return _refused(request, db, InvalidInput("expires_on", "is not a date"), "/admin/keys#new")
    except InvalidInput as exc:
        return _refused(request, db, exc, "/admin/keys#new")
    db.commit()
    response = _keys(request, db, principal, token=new.token)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    request: Request, key_id: uuid.UUID, db: DbDep, now: NowDep, principal: AdminFormDep
) -> Response:
    """Revoke a key: it stops working at once."""
    staff_admin.revoke_api_key(
        db, key_id=key_id, centers=principal.centers, actor=principal.actor(request), now=now
    )
    db.commit()
    flash(request, "ok", N_("Key revoked."))
    return RedirectResponse("/admin/keys", status.HTTP_303_SEE_OTHER)


def _keys(
    request: Request, db: Session, principal: Principal, token: str | None = None
) -> Response:
    context = {
        "staff": principal.user,
        "keys": staff_admin.api_keys(db, centers=principal.centers),
        "owners": [u for u in staff_admin.users(db, centers=principal.centers) if u.active],
        "token": token,
    }
    return render(request, "admin_keys.html", context)


def _refused(request: Request, db: Session, exc: ServiceError, target: str) -> Response:
    db.rollback()
    flash(request, "error", NOT_SAVED, str(exc))
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
