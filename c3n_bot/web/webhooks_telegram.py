"""POST /webhooks/telegram: verify the secret header, parse the update, hand it over, answer."""

from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from c3n_bot.channels.telegram import WEBHOOK_PATH, parse_update
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, handle_inbound
from c3n_bot.web.deps import DbDep, NowDep, ServicesDep, app_state

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


UpdateDep = Annotated[dict[str, Any], Depends(update_json)]


@router.post(WEBHOOK_PATH, dependencies=[Depends(verify_secret)], include_in_schema=False)
def telegram_webhook(
    update: UpdateDep, db: DbDep, now: NowDep, services: ServicesDep
) -> dict[str, bool]:
    """Act on an update once; a replay is a duplicate and still 200 (Telegram stops resending)."""
    inbound = parse_update(update)
    if inbound is not None:
        hand_over(db, inbound, services, now)
    return {"ok": True}


def hand_over(db: Session, inbound: Inbound, services: Services, now: datetime) -> None:
    """One transaction; 503 while the database is unreachable, so Telegram delivers it again."""
    try:
        handle_inbound(db, inbound=inbound, services=services, now=now)
        db.commit()
    except OperationalError:  # the request's session is closed (rolled back) by get_db
        log.warning("telegram.webhook_database_unavailable")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="database unavailable"
        ) from None
