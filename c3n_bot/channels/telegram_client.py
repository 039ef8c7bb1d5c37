"""The python-telegram-bot `Bot` as this app builds it, driven synchronously from one thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot

from c3n_bot.config import Settings

# PTB 22 warns whenever it builds a RetryAfter unless callers opt in to timedelta periods
# (it reads the variable then, not at import); `seconds` handles both kinds of value.
os.environ.setdefault("PTB_TIMEDELTA", "true")

T = TypeVar("T")


def new_bot(settings: Settings) -> Bot:
    """A Bot on the configured API root (C3N_TELEGRAM_API_URL); the token must be set."""
    if settings.telegram_token is None:
        raise ValueError("C3N_TELEGRAM_TOKEN is not set")
    return Bot(
        settings.telegram_token.get_secret_value(), base_url=f"{settings.telegram_api_url}/bot"
    )


def seconds(period: timedelta | float | int | None) -> float | None:
    """A Bot API time period (seconds, or a timedelta under PTB_TIMEDELTA) in seconds."""
    if period is None:
        return None
    if isinstance(period, timedelta):
        return period.total_seconds()
    return float(period)


def scrub(text: str, settings: Settings) -> str:
    """Text safe to log or store: PTB quotes the token in some errors."""
    if settings.telegram_token is None:
        return text
    return text.replace(settings.telegram_token.get_secret_value(), "<token>")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram-sync") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class BotLoop:
    """One Bot on a private event loop, created lazily in the first calling thread.

    Calls are serialised; `cancel()` (from any thread) ends the call in flight and refuses
    later ones, which is how a long poll is stopped promptly.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bot: Bot | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def call(self, request: Callable[[Bot], Awaitable[T]]) -> T:
        """Initialize the Bot once (getMe), then run one request on it and return its result."""
        with self._run_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            loop = self._loop
            with self._state_lock:
                if self._cancelled:
                    raise asyncio.CancelledError("the bot loop was cancelled")
                task = loop.create_task(self._with_bot(request))
                self._task = task
            try:
                return loop.run_until_complete(task)
            finally:
                with self._state_lock:
                    self._task = None

    async def _with_bot(self, request: Callable[[Bot], Awaitable[T]]) -> T:
        if self._bot is None:
            self._bot = new_bot(self._settings)
        await self._bot.initialize()  # returns at once when done before
        return await request(self._bot)

    def cancel(self) -> None:
        """End the call in flight (it raises CancelledError) and refuse any later call."""
        with self._state_lock:
            self._cancelled = True
            if self._task is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._task.cancel)

    def close(self) -> None:
        """Shut the Bot down and close the loop; a later call starts afresh (unless cancelled)."""
        with self._run_lock:
            loop, bot = self._loop, self._bot
            self._loop, self._bot = None, None
            if loop is None:
                return
            try:
                if bot is not None:
                    loop.run_until_complete(bot.shutdown())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
