"""Twilio webhooks: incoming SMS and delivery status callbacks, each signature-checked."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Annotated, NoReturn
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.responses import Response
from twilio.request_validator import RequestValidator, compare

from c3n_bot.service import receipts
from c3n_bot.service.conversations import Inbound
from c3n_bot.store.base import Channel
from c3n_bot.web.deps import DbDep, NowDep, app_state
from c3n_bot.web.routes import add_lean_post
from c3n_bot.web.webhooks_telegram import hand_over

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio", include_in_schema=False)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
E164 = re.compile(r"\+[1-9]\d{6,14}")


FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 200  # Twilio posts about twenty


class _Params(dict[str, list[str]]):
    """A posted form's values by name, which RequestValidator reads with `getall`."""

    def getall(self, name: str) -> list[str]:
        return self[name]


async def signed_form(request: Request) -> dict[str, str]:
    """The posted form when `X-Twilio-Signature` verifies against the public URL; else 403."""
    settings = app_state(request).settings
    token = settings.twilio_auth_token if settings.twilio_enabled else None
    signature = request.headers.get("X-Twilio-Signature")
    if token is None:
        _refuse(request, "not_configured")
    if not signature:
        _refuse(request, "unsigned")
    params = _Params()
    for name, value in _form_fields(request, await request.body()):
        params.setdefault(name, []).append(value)
    # Signed over the URL Twilio was given (behind a proxy, not the one this server sees).
    # The path and query as received: what request.url would give for them, without
    # building the whole URL from the Host header for every message.
    url = settings.public_url + request.scope["path"]
    query = request.scope.get("query_string", b"")
    if query:
        url += "?" + query.decode("latin-1")
    if not _verified(RequestValidator(token.get_secret_value()), url, params, signature):
        _refuse(request, "bad_signature")
    return {name: values[-1] for name, values in params.items()}


def _verified(validator: RequestValidator, url: str, params: _Params, signature: str) -> bool:
    # `validate` signs the URL twice, with and without its port, since Twilio's side is not
    # consistent; a signature over the URL exactly as configured, which `validate` accepts as
    # well, is checked first, at the cost of one HMAC instead of two.
    exact = compare(validator.compute_signature(url, params), signature)
    return bool(exact or validator.validate(url, params, signature))


def _form_fields(request: Request, body: bytes) -> list[tuple[str, str]]:
    # Twilio posts a URL-encoded form, never a file: anything else is refused. Parsed here
    # rather than by request.form(), whose streaming parser cost a fifth of an SMS webhook.
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        _refuse(request, "not_a_form")
    try:
        return parse_qsl(
            body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
        )
    except ValueError:  # not UTF-8, or too many fields
        _refuse(request, "not_a_form")


SignedForm = Annotated[dict[str, str], Depends(signed_form)]


async def inbound_sms(request: Request) -> Response:
    """An incoming SMS, recorded once and handed to the service; Twilio gets empty TwiML."""
    form = await signed_form(request)
    sid, sender = _required(form, "MessageSid"), _required(form, "From")
    twiml = Response(EMPTY_TWIML, media_type="text/xml")
    if not E164.fullmatch(sender):  # short codes and alphanumeric senders get nothing back
        log.info("twilio.sms_ignored", extra={"reason": "sender_not_e164"})
        return twiml
    inbound = Inbound(
        channel=Channel.SMS, address=sender, provider_message_id=sid, text=form.get("Body", "")
    )
    try:
        await hand_over(app_state(request), inbound)
    except HTTPException as exc:  # Twilio retries on a 503 with an empty body
        return Response(status_code=exc.status_code)
    return twiml


add_lean_post(router, f"{router.prefix}/sms", inbound_sms)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
def delivery_status(form: SignedForm, db: DbDep, now: NowDep) -> Response:
    """A delivery receipt (queued, sent, delivered, undelivered, failed) for an outbox row."""
    apply = partial(
        receipts.apply_receipt,
        db,
        channel=Channel.SMS,
        provider_message_id=_required(form, "MessageSid"),
        status=form.get("MessageStatus") or _required(form, "SmsStatus"),
        error_code=form.get("ErrorCode") or None,
        now=now,
    )
    return _in_transaction(db, apply) or Response(status_code=status.HTTP_204_NO_CONTENT)


def _in_transaction(db: Session, work: Callable[[], object]) -> Response | None:
    """Run and commit; a 503 (Twilio retries) when the database cannot be reached."""
    try:
        work()
        db.commit()
    except OperationalError:
        db.rollback()
        log.warning("twilio.database_unavailable")
        return Response(status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return None


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{name} is required")
    return value


def _refuse(request: Request, reason: str) -> NoReturn:
    log.warning("twilio.forbidden", extra={"route": request.url.path, "reason": reason})
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid signature")
