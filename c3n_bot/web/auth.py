"""Sign-in and sign-out for staff, with CSRF and a failed-login rate limit."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from c3n_bot.service import staff
from c3n_bot.web.csrf import verify_csrf
from c3n_bot.web.deps import DbDep, NowDep
from c3n_bot.web.templating import render

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/login")
def login_form(request: Request) -> Response:
    """The sign-in page."""
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next"))})


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    db: DbDep,
    now: NowDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the credentials; on success start a fresh session."""
    ip = request.client.host if request.client else None
    try:
        user = staff.authenticate(db, email=email, password=password, ip=ip, now=now)
    except staff.LoginThrottled:
        log.warning("login.throttled")
        context = {"error": "Too many failed attempts. Try again in 15 minutes.", "email": email}
        return render(request, "login.html", context, status.HTTP_429_TOO_MANY_REQUESTS)
    db.commit()
    if user is None:
        context = {"error": "Wrong email or password.", "email": email, "next": next}
        return render(request, "login.html", context, status.HTTP_401_UNAUTHORIZED)
    # A new session on sign-in, so a token planted before it cannot ride along.
    request.session.clear()
    request.session["staff_id"] = str(user.id)
    log.info("login.ok", extra={"staff_id": str(user.id)})
    return RedirectResponse(_safe_next(next), status.HTTP_303_SEE_OTHER)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    """End the session."""
    request.session.clear()
    return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would make the login page a phishing tool.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
