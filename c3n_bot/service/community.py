"""The community's clock task: scheduled broadcasts, then reminders the day before activities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from c3n_bot.service import attendance, broadcast_send
from c3n_bot.service.context import Services


def tick(db: Session, now: datetime, services: Services) -> int:
    """Send what is due (broadcasts, attendee reminders); how many members and reminders."""
    sent = broadcast_send.send_due(db, now, services)
    return sent + attendance.remind_due(db, now, services.catalogs)
