"""Telegram long polling (getUpdates) with the offset kept in the database.

Each update is handled in ONE transaction that also saves its update_id as the cursor, so a
restart resumes after the last update handled: none is lost (Telegram keeps unconfirmed
updates for 24 hours) and none is handled twice (and a repeat would be a DUPLICATE anyway,
the update_id being the inbound message's provider id, as on the webhook).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from telegram.error import Conflict, InvalidToken, RetryAfter

from c3n_bot.channels.telegram_client import BotLoop, seconds
from c3n_bot.channels.telegram_updates import ALLOWED_UPDATES, parse_update
from c3n_bot.config import Settings
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import handle_inbound
from c3n_bot.service.receipts import read_cursor, save_cursor

log = logging.getLogger(__name__)

CURSOR = "telegram.update_id"
BACKOFF_CAP_SECONDS = 60.0


class TelegramPoller:
    """A background receiver: deleteWebhook once, then getUpdates in a loop until stopped."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        services: Services,
        clock: Callable[[], datetime],
        *,
        timeout: int = 10,
        backoff: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._services = services
        self._clock = clock
        self._timeout = timeout
        self._backoff = backoff
        self._bot = BotLoop(settings)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset: int | None = None
        self._webhook_deleted = False

    def start(self) -> None:
        """Poll in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="telegram-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the long poll in flight at once and wait for the thread."""
        self._stopping.set()
        self._bot.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._bot.close()  # the thread closes it too; for poll_once callers this does

    def run(self) -> None:
        """Poll until stopped, backing off while Telegram or the database is unreachable."""
        log.info("telegram.polling_started")
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    self.poll_once()
                    failures = 0
                except asyncio.CancelledError:
                    break
                except Exception as exc:
                    failures += 1
                    log.warning("telegram.poll_failed", extra={"error": type(exc).__name__})
                    self._stopping.wait(self._delay(exc, failures))
        finally:
            self._bot.close()
            log.info("telegram.polling_stopped")

    def poll_once(self, timeout: int | None = None) -> int:
        """One getUpdates (long poll of `timeout` seconds) and every update it brings."""
        if not self._webhook_deleted:
            # Without this, getUpdates answers 409 while a webhook from webhook mode is set.
            self._bot.call(lambda bot: bot.delete_webhook())
            self._webhook_deleted = True
        offset = self._next_offset()
        wait = self._timeout if timeout is None else timeout
        updates = self._bot.call(
            lambda bot: bot.get_updates(
                offset=offset, timeout=wait, allowed_updates=ALLOWED_UPDATES
            )
        )
        for update in updates:
            self._handle(update.to_dict())
        return len(updates)

    def _next_offset(self) -> int | None:
        if self._offset is None:
            with self._sessions() as db:
                saved = read_cursor(db, CURSOR)
            self._offset = None if saved is None else saved + 1
        return self._offset

    def _handle(self, update: Mapping[str, Any]) -> None:
        update_id = int(update["update_id"])
        try:
            inbound = parse_update(update)
            with self._sessions.begin() as db:
                now = self._clock()
                if inbound is not None:
                    handle_inbound(db, inbound=inbound, services=self._services, now=now)
                save_cursor(db, CURSOR, update_id, now)
        except OperationalError:
            raise  # the database is away: this batch is fetched again after a backoff
        except Exception:
            # A bug on one update must not stall every family behind it: skip it, loudly.
            log.exception("telegram.update_failed", extra={"update_id": update_id})
            with self._sessions.begin() as db:
                save_cursor(db, CURSOR, update_id, self._clock())
        self._offset = update_id + 1

    def _delay(self, exc: Exception, failures: int) -> float:
        if isinstance(exc, RetryAfter):
            return seconds(exc.retry_after) or self._backoff
        if isinstance(exc, Conflict | InvalidToken):  # another poller, a webhook, a bad token
            failures += 3
        return min(BACKOFF_CAP_SECONDS, self._backoff * 2.0 ** (failures - 1))


__all__ = ["CURSOR", "TelegramPoller"]
