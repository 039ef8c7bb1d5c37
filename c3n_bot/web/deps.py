"""Dependencies shared by routes: the database session, the clock, and who is asking."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from c3n_bot.config import Settings
from c3n_bot.service import staff
from c3n_bot.service.audit import Actor, record
from c3n_bot.service.context import Services
from c3n_bot.service.inbound_queue import InboundQueue
from c3n_bot.store.base import Role
from c3n_bot.store.models import Patient, StaffUser


@dataclass
class AppState:
    """What the app factory wires once and every request reads."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    services: Services
    inbound: InboundQueue
    # Each language's template gettext, made on first use (the catalogs are fixed at start-up).
    gettexts: dict[str, Callable[..., str]] = field(default_factory=dict)


def app_state(request: Request) -> AppState:
    """The application's wiring."""
    state: AppState = request.app.state.c3n
    return state


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request; the route commits what it means to keep."""
    # Opening a session touches no database: no hop to the thread pool for it. Nor does
    # closing one outside a transaction (unused, or committed: the connection went back with
    # the commit). Closing one in a transaction returns its connection (a rollback): that runs
    # in a thread, as FastAPI closes a sync dependency, shielded from cancellation and without
    # waiting for a free worker (a request holding a pooled connection must not wait behind
    # requests waiting for one).
    db = app_state(request).sessions()
    try:
        yield db
    finally:
        if not db.in_transaction():
            db.close()
        else:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(db.close, limiter=anyio.CapacityLimiter(1))


async def get_now(request: Request) -> datetime:
    """The current time, from the injected clock."""
    return app_state(request).clock()


DbDep = Annotated[Session, Depends(get_db)]
NowDep = Annotated[datetime, Depends(get_now)]


async def get_services(request: Request) -> Services:
    """Flows and translations."""
    return app_state(request).services


ServicesDep = Annotated[Services, Depends(get_services)]
StateDep = Annotated[AppState, Depends(app_state)]


@dataclass(frozen=True)
class Principal:
    """A signed-in staff user (dashboard) or the owner of an API key (JSON API)."""

    user: StaffUser
    via: str

    @property
    def centers(self) -> set[uuid.UUID]:
        """Centers this principal may see."""
        return staff.center_ids(self.user)

    @property
    def role(self) -> Role:
        """The staff role."""
        return self.user.role

    def actor(self, request: Request) -> Actor:
        """The audit actor for this principal."""
        ip = request.client.host if request.client else None
        return Actor(type=self.via, id=str(self.user.id), ip=ip)

    def audit(
        self,
        db: Session,
        request: Request,
        *,
        action: str,
        patient: Patient,
        now: datetime,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record that this principal viewed or changed a patient's data."""
        record(
            db,
            actor=self.actor(request),
            action=action,
            patient_id=patient.id,
            center_id=patient.center_id,
            subject=subject,
            detail=detail,
            now=now,
        )


class LoginRequired(Exception):
    """No valid dashboard session: the handler redirects to /login."""


# Every dashboard request runs it: the user and their centers in one statement built once.
_SIGNED_IN = (
    select(StaffUser)
    .where(StaffUser.id == bindparam("staff_id"))
    .options(joinedload(StaffUser.centers))
)


def current_staff(request: Request, db: DbDep) -> Principal:
    """The staff user of the session cookie, or LoginRequired."""
    return signed_in(request, db)


def signed_in(request: Request, db: Session) -> Principal:
    """As :func:`current_staff`, called directly (by a page that looks its user up in the
    worker thread it runs in anyway, see :mod:`c3n_bot.web.page_thread`)."""
    raw = request.session.get("staff_id")
    user = None
    if raw:
        try:
            staff_id = uuid.UUID(raw)
        except ValueError:
            staff_id = None
        if staff_id is not None:
            user = db.scalars(_SIGNED_IN, {"staff_id": staff_id}).unique().one_or_none()
    if user is None or not user.active:
        request.session.pop("staff_id", None)
        raise LoginRequired()
    return Principal(user=user, via="staff")


def api_principal(request: Request, db: DbDep, now: NowDep) -> Principal:
    """The owner of the bearer API key, or 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = None
    if scheme.lower() == "bearer" and token:
        user = staff.resolve_api_key(db, token=token.strip(), now=now)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    db.commit()  # keeps last_used_at
    return Principal(user=user, via="api_key")


StaffDep = Annotated[Principal, Depends(current_staff)]
ApiDep = Annotated[Principal, Depends(api_principal)]
