"""CSRF protection: a per-session token in every form, checked on every unsafe request."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Form, HTTPException, Request, status


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def verify_csrf(request: Request, csrf_token: str = Form("")) -> None:
    """Refuse a form whose token is missing or does not match the session's (403)."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), csrf_token.encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid CSRF token")
