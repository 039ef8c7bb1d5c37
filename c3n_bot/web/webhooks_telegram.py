"""POST /webhooks/telegram: verify the secret header, parse the update, hand it over, answer."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy.exc import OperationalError
from starlette.responses import Response

from c3n_bot.channels.telegram import WEBHOOK_PATH, parse_update
from c3n_bot.service.conversations import Inbound, Outcome
from c3n_bot.web.deps import AppState, app_state
from c3n_bot.web.routes import add_lean_post

log = logging.getLogger(__name__)
router = APIRouter()
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def verify_secret(request: Request) -> None:
    """403 unless Telegram is on and the header equals C3N_TELEGRAM_WEBHOOK_SECRET."""
    settings = app_state(request).settings
    secret = settings.telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER, "").encode()
    if not (
        settings.telegram_enabled
        and secret is not None
        and hmac.compare_digest(given, secret.get_secret_value().encode())
    ):
        log.warning("telegram.webhook_forbidden")
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="forbidden")


async def update_json(request: Request) -> dict[str, Any]:
    """The Update object of the body; 400 when it is not a JSON object."""
    try:
        update = json.loads(await request.body())
    except ValueError:
        update = None
    if not isinstance(update, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="invalid JSON")
    return update


async def telegram_webhook(request: Request) -> Response:
    """Act on an update once; a replay is a duplicate and still 200 (Telegram stops resending)."""
    verify_secret(request)
    inbound = parse_update(await update_json(request))
    if inbound is not None:
        await hand_over(app_state(request), inbound)
    return Response(b'{"ok":true}', media_type="application/json")


add_lean_post(router, WEBHOOK_PATH, telegram_webhook)


async def hand_over(state: AppState, inbound: Inbound) -> Outcome:
    """Stored and answered before the 200; 503 while the database is unreachable, so the
    provider delivers the message again."""
    try:
        return await state.inbound.handle(inbound, state.clock())
    except OperationalError:
        log.warning("webhook.database_unavailable", extra={"channel": inbound.channel.value})
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="database unavailable"
        ) from None
