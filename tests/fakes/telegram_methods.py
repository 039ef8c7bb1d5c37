"""The Bot API's behaviour over in-memory state, without HTTP: the fake's engine."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.fakes import telegram_wire as wire
from tests.fakes.limits import SlidingWindow, retry_after_seconds
from tests.fakes.server import Response
from tests.fakes.telegram_wire import ChatId, Failure

TEST_BOT_TOKEN = "123456789:AAFakeTokenForTests_0123456789abcdef"

Method = Callable[[dict[str, Any]], Response]


class BotApi:
    """Bot API methods answering as Telegram does; every shared field is guarded by `_changed`."""

    def __init__(
        self,
        token: str = TEST_BOT_TOKEN,
        *,
        username: str = "c3n_test_bot",
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "C3N Test",
            "username": username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self.violations = 0
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._changed = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._messages: dict[tuple[ChatId, int], dict[str, Any]] = {}
        self._callback_ids: set[str] = set()
        self._failures: dict[str, deque[Failure]] = {}
        self._blocked: set[ChatId] = set()
        self._global: SlidingWindow | None = None
        self._per_chat_limit: int | None = None
        self._chats: dict[ChatId, SlidingWindow] = {}
        self._next_update_id = 1
        self._next_message_id = 1
        self._next_query_id = 0
        self._closing = False
        self._methods: dict[str, Method] = {
            "getme": lambda _params: wire.ok(self.bot_user),
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message,
            "editmessagereplymarkup": self._edit_message,
            "answercallbackquery": self._answer_callback_query,
            # Recorded in `calls` only: what an Application may call around the real work.
            "setmycommands": lambda _params: wire.ok(True),
            "deletemycommands": lambda _params: wire.ok(True),
            "sendchataction": lambda _params: wire.ok(True),
        }

    def call(self, method: str, params: dict[str, Any]) -> Response:
        """Record the call, then answer it with an injected failure or the method's result."""
        with self._changed:
            self.calls.append((method, params))
            failures = self._failures.get(method.lower())
            failure = failures.popleft() if failures else None
        if failure is not None:
            return failure.response()
        handler = self._methods.get(method.lower())
        if handler is None:
            return wire.error(404, "Not Found: method not found")
        return handler(params)

    def _set_webhook(self, params: dict[str, Any]) -> Response:
        secret = params.get("secret_token")
        if secret is not None and not wire.SECRET_TOKEN.fullmatch(str(secret)):
            return wire.error(400, "Bad Request: secret token contains unallowed characters")
        with self._changed:
            self.webhook = dict(params) if params.get("url") else None
        return wire.ok(True)

    def _delete_webhook(self, params: dict[str, Any]) -> Response:
        with self._changed:
            self.webhook = None
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return wire.ok(True)

    def _get_webhook_info(self, params: dict[str, Any]) -> Response:
        with self._changed:
            webhook = self.webhook or {}
            info: dict[str, Any] = {
                "url": webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if "allowed_updates" in webhook:
                info["allowed_updates"] = webhook["allowed_updates"]
        return wire.ok(info)

    def _get_updates(self, params: dict[str, Any]) -> Response:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        allowed = params.get("allowed_updates") or []
        with self._changed:
            if self.webhook is not None:
                return wire.error(409, wire.WEBHOOK_ACTIVE)
            self._confirm(offset, allowed)
            while not self._updates and not self._closing:
                if not self._changed.wait(deadline - time.monotonic()):
                    break
                self._confirm(offset, allowed)
            return wire.ok(self._updates[:limit])

    def _send_message(self, params: dict[str, Any]) -> Response:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            return wire.error(400, "Bad Request: chat_id is empty")
        problem = wire.text_problem(params.get("text")) or wire.markup_problem(
            params.get("reply_markup")
        )
        if problem is not None:
            return wire.error(400, problem)
        with self._changed:
            if chat_id in self._blocked:
                return wire.error(403, wire.BLOCKED)
            if (wait := self._flood_wait(chat_id)) > 0:
                self.violations += 1
                return wire.too_many_requests(retry_after_seconds(wait)).response()
            message = self._bare_message(chat_id, self._new_message_id())
            message["text"] = params["text"]
            if isinstance(params.get("reply_markup"), dict):
                message["reply_markup"] = params["reply_markup"]
            self._messages[(chat_id, message["message_id"])] = message
            self.sent.append({**params, "message_id": message["message_id"]})
            self._changed.notify_all()
        return wire.ok(message)

    def _edit_message(self, params: dict[str, Any]) -> Response:
        if "text" in params and (problem := wire.text_problem(params["text"])):
            return wire.error(400, problem)
        if problem := wire.markup_problem(params.get("reply_markup")):
            return wire.error(400, problem)
        if params.get("inline_message_id"):
            with self._changed:
                self.edits.append(dict(params))
            return wire.ok(True)
        chat_id, message_id = params.get("chat_id"), int(params.get("message_id") or 0)
        if chat_id is None or not message_id:
            return wire.error(400, "Bad Request: message identifier is not specified")
        with self._changed:
            if chat_id in self._blocked:
                return wire.error(403, wire.BLOCKED)
            # A message the fake never sent (say, one a test made up) is taken as it comes.
            old = self._messages.get((chat_id, message_id)) or self._bare_message(
                chat_id, message_id
            )
            new = {**old, "edit_date": self._unix_now()}
            new.pop("reply_markup", None)
            new["text"] = params.get("text", old.get("text", ""))
            if isinstance(params.get("reply_markup"), dict):
                new["reply_markup"] = params["reply_markup"]
            if (new["text"], new.get("reply_markup")) == (old.get("text"), old.get("reply_markup")):
                return wire.error(400, wire.NOT_MODIFIED)
            self._messages[(chat_id, message_id)] = new
            self.edits.append(dict(params))
        return wire.ok(new)

    def _answer_callback_query(self, params: dict[str, Any]) -> Response:
        with self._changed:
            query_id = str(params.get("callback_query_id", ""))
            if query_id not in self._callback_ids:
                return wire.error(400, wire.QUERY_INVALID)
            self._callback_ids.discard(query_id)  # a query is answered once
            self.answers.append(dict(params))
        return wire.ok(True)

    # -- helpers (called with the lock held) -------------------------------------------------

    def _confirm(self, offset: int, allowed: list[str]) -> None:
        """Forget confirmed updates (update_id < offset) and those of types not allowed."""
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if allowed:
            self._updates = [u for u in self._updates if allowed_type(u, allowed)]

    def _flood_wait(self, chat_id: ChatId) -> float:
        """Seconds to wait before this chat may be sent to; records the send when 0."""
        if self._global is None or self._per_chat_limit is None:
            return 0.0
        now = self._clock()
        chat = self._chats.setdefault(chat_id, SlidingWindow(self._per_chat_limit))
        wait = max(self._global.wait(now), chat.wait(now))
        if wait == 0:
            self._global.record(now)
            chat.record(now)
        return wait

    def _bare_message(self, chat_id: ChatId, message_id: int) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": wire.private_chat(chat_id),
            "date": self._unix_now(),
        }

    def _new_update_id(self, given: int | None = None) -> int:
        update_id = self._next_update_id if given is None else given
        self._next_update_id = max(self._next_update_id, update_id + 1)
        return update_id

    def _new_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1

    def _unix_now(self) -> int:
        return int(self._now().timestamp())


def allowed_type(update: dict[str, Any], allowed: list[str]) -> bool:
    """Whether the update's kind (message, callback_query, ...) is among `allowed`."""
    return any(kind in update for kind in allowed)
