"""A fake Telegram Bot API on loopback, driven by the real python-telegram-bot `Bot`.

Point the real library at it with ``telegram.Bot(fake.token, base_url=fake.base_url)``
(``base_url`` is ``http://127.0.0.1:<port>/bot``; PTB appends the token, then ``/<method>``).
An app whose setting is the API root (``C3N_TELEGRAM_API_URL``) uses ``fake.url``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from tests.fakes import telegram_wire as wire
from tests.fakes.limits import SlidingWindow
from tests.fakes.server import JsonPoster, LoopbackServer, Request, Response
from tests.fakes.telegram_methods import TEST_BOT_TOKEN, BotApi
from tests.fakes.telegram_wire import ChatId, Failure

__all__ = ["TEST_BOT_TOKEN", "FakeTelegramApi"]

R = TypeVar("R")


class FakeTelegramApi(BotApi):
    """The Bot API methods c3n-bot uses, with recording, failure injection and flood limits.

    Recording (thread-safe, in arrival order): ``calls`` holds every ``(method, params)``;
    ``sent`` the params of each accepted sendMessage plus its ``message_id``; ``edits`` and
    ``answers`` those of editMessage* and answerCallbackQuery; ``webhook`` the last
    setWebhook params (None when none is set); ``violations`` the 429s caused by the client
    exceeding ``enforce_limits`` (never those injected with ``fail_next``).
    """

    def __init__(
        self,
        token: str = TEST_BOT_TOKEN,
        *,
        username: str = "c3n_test_bot",
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(token, username=username, clock=clock, now=now)
        self._server = LoopbackServer(self._handle)
        self.url = self._server.url
        self.base_url = f"{self.url}/bot"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """End long polls, stop serving and join every thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None and self._server.errors:
            raise RuntimeError("the fake Bot API failed") from self._server.errors[0]

    # -- test controls -----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        *,
        error_code: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with this error (429 gets retry_after)."""
        if status == 429 and description is None:
            failure = wire.too_many_requests(retry_after or 1)
        else:
            failure = Failure(
                status,
                status if error_code is None else error_code,
                description or wire.DEFAULT_DESCRIPTIONS.get(status, "Error"),
                retry_after,
            )
        with self._changed:
            self._failures.setdefault(method.lower(), deque()).extend([failure] * times)

    def block_chat(self, chat_id: ChatId) -> None:
        """The user blocked the bot: sending to this chat answers 403 from now on."""
        with self._changed:
            self._blocked.add(chat_id)

    def enforce_limits(self, global_per_second: int = 30, per_chat_per_second: int = 1) -> None:
        """Refuse sendMessage beyond these rates (sliding 1 s windows) with 429, counting it."""
        with self._changed:
            self._global = SlidingWindow(global_per_second)
            self._per_chat_limit = per_chat_per_second
            self._chats = {}

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Make `update` available to getUpdates (assigning an update_id when it has none)."""
        with self._changed:
            update["update_id"] = self._new_update_id(update.get("update_id"))
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def text_update(
        self,
        chat_id: int,
        text: str,
        *,
        update_id: int | None = None,
        first_name: str = "Ana",
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """An Update carrying a private text message from user `chat_id` (not queued)."""
        with self._changed:
            message: dict[str, Any] = {
                "message_id": self._new_message_id(),
                "from": wire.user(chat_id, first_name, language_code=language_code),
                "chat": wire.private_chat(chat_id, first_name),
                "date": self._unix_now(),
                "text": text,
            }
            if entities := wire.command_entities(text):
                message["entities"] = entities
            return {"update_id": self._new_update_id(update_id), "message": message}

    def callback_update(
        self,
        chat_id: int,
        data: str,
        message_id: int,
        *,
        update_id: int | None = None,
        first_name: str = "Ana",
    ) -> dict[str, Any]:
        """An Update carrying a button press on the bot's message `message_id` (not queued)."""
        with self._changed:
            message = self._messages.get((chat_id, message_id)) or self._bare_message(
                chat_id, message_id
            )
            self._next_query_id += 1
            query_id = f"{chat_id}{self._next_query_id:08d}"
            self._callback_ids.add(query_id)
            query = {
                "id": query_id,
                "from": wire.user(chat_id, first_name, language_code="en"),
                "message": message,
                "chat_instance": f"-{chat_id}",
                "data": data,
            }
            return {"update_id": self._new_update_id(update_id), "callback_query": query}

    def deliver_update(self, update: dict[str, Any], *, post: JsonPoster[R]) -> R:
        """POST `update` to the registered webhook as Telegram does, with its secret header."""
        webhook = self.webhook
        if webhook is None:
            raise RuntimeError("no webhook is set")
        headers = {}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(webhook["secret_token"])
        return post(str(webhook["url"]), json=update, headers=headers)

    def wait_sent(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least `count` messages were sent; returns `sent`."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.sent) >= count, timeout):
                raise TimeoutError(f"{len(self.sent)} of {count} messages sent in {timeout} s")
            return list(self.sent)

    # -- HTTP --------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        prefix, _, rest = request.path.partition("/bot")
        token, _, method = rest.partition("/")
        if prefix or not method:
            return wire.error(404, "Not Found")
        if token != self.token:
            return wire.error(401, "Unauthorized")
        return self.call(method, wire.decode(request.params()))
