"""A fake Twilio REST API (Messages) on loopback, driven by the real twilio `Client`.

Point the real library at it with::

    client = twilio.rest.Client(fake.account_sid, fake.auth_token)
    client.api.base_url = fake.url  # "http://127.0.0.1:<port>", no path

twilio-python 9 builds every Api URL as ``client.api.base_url`` + ``/2010-04-01/Accounts/...``
when the request is made (``Domain.absolute_url``), so setting it after construction is
enough, and ``client.messages`` goes through that same ``client.api``. Leave ``edge`` and
``region`` (and ``TWILIO_EDGE`` / ``TWILIO_REGION``) unset: they rewrite the host.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from twilio.request_validator import RequestValidator

from tests.fakes import twilio_wire as wire
from tests.fakes.limits import SlidingWindow
from tests.fakes.server import LoopbackServer, Poster, Request, Response, json_response

TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "fedcba9876543210" * 2
SERVICE_NUMBER = "+15005550006"  # the sender a Messaging Service picks from its pool

MESSAGES_PATH = re.compile(
    r"/2010-04-01/Accounts/(?P<account>\w+)/Messages(?:/(?P<sid>\w+))?\.json"
)
R = TypeVar("R")


class FakeTwilioApi:
    """Messages.json create and fetch, with Basic auth, failure injection and an MPS limit.

    Recording (thread-safe, in arrival order): ``calls`` holds every ``("POST"|"GET", path,
    params)`` that passed auth; ``sent`` the form of each accepted create plus its ``sid``;
    ``messages`` each Message resource by sid (its status follows ``deliver_status``);
    ``violations`` the 429s caused by the client exceeding ``enforce_rate`` (never those
    injected with ``fail_next``).
    """

    def __init__(
        self,
        account_sid: str = TEST_ACCOUNT_SID,
        auth_token: str = TEST_AUTH_TOKEN,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.violations = 0
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._validator = RequestValidator(auth_token)
        self._changed = threading.Condition()
        self._callbacks: dict[str, str] = {}
        self._failures: deque[Response] = deque()
        self._opted_out: set[str] = set()
        self._window: SlidingWindow | None = None
        self._next_sid = 1
        self._server = LoopbackServer(self._handle)
        self.url = self._server.url

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and join every thread."""
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
            raise RuntimeError("the fake Twilio API failed") from self._server.errors[0]

    # -- test controls -----------------------------------------------------------------------

    def fail_next(
        self, status: int, code: int | None = None, message: str | None = None, *, times: int = 1
    ) -> None:
        """Answer the next `times` creates with this error (429 -> 20429, 5xx -> 20500...)."""
        code = code if code is not None else wire.DEFAULT_CODES.get(status)
        if code is None:
            raise ValueError(f"say which Twilio error code a {status} carries")
        response = wire.error(code, status=status, message=message)
        with self._changed:
            self._failures.extend([response] * times)

    def opt_out(self, number: str) -> None:
        """The recipient texted STOP: creates to `number` answer 400/21610 from now on."""
        with self._changed:
            self._opted_out.add(number)

    def opt_in(self, number: str) -> None:
        """The recipient texted START: `number` may be sent to again."""
        with self._changed:
            self._opted_out.discard(number)

    def enforce_rate(self, mps: int) -> None:
        """Refuse creates beyond `mps` in any 1 s window with 429/20429, counting each."""
        with self._changed:
            self._window = SlidingWindow(mps)

    def signature_for(self, url: str, params: dict[str, str]) -> str:
        """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
        signature: str = self._validator.compute_signature(url, params)
        return signature

    def deliver_status(
        self, message_sid: str, status: str, error_code: int | None = None, *, post: Poster[R]
    ) -> R:
        """POST a signed status callback for `message_sid` to its StatusCallback URL."""
        with self._changed:
            resource = self.messages[message_sid]
            url = self._callbacks.get(message_sid)
            if url is None:
                raise ValueError(f"{message_sid} was created without a StatusCallback")
            resource.update(status=status, error_code=error_code)
            sender = resource["from"] or SERVICE_NUMBER
            form = wire.status_form(resource, status, error_code, from_=sender)
        return post(url, data=form, headers=self._webhook_headers(url, form))

    def inbound_sms(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        message_sid: str | None = None,
        *,
        post: Poster[R],
    ) -> R:
        """POST a signed incoming-SMS webhook to `url` (the app's full public URL)."""
        with self._changed:
            sid = message_sid or self._new_sid()
        form = wire.inbound_form(
            account_sid=self.account_sid, sid=sid, from_=from_, to=to, body=body
        )
        return post(url, data=form, headers=self._webhook_headers(url, form))

    def wait_sent(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least `count` messages were created; returns `sent`."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.sent) >= count, timeout):
                raise TimeoutError(f"{len(self.sent)} of {count} messages created in {timeout} s")
            return list(self.sent)

    # -- HTTP --------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        if not self._authorized(request.headers.get("authorization", "")):
            return json_response(
                401,
                {
                    "code": 20003,
                    "detail": "Your AccountSid or AuthToken was incorrect.",
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
            )
        match = MESSAGES_PATH.fullmatch(request.path)
        if match is None or match["account"] != self.account_sid:
            return wire.error(20404)
        params = request.params()
        with self._changed:
            self.calls.append((request.method, request.path, params))
        if request.method == "GET" and match["sid"]:
            return self._fetch(match["sid"])
        if request.method == "POST" and not match["sid"]:
            return self._create(params)
        return wire.error(20404)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and decoded == f"{self.account_sid}:{self.auth_token}"

    def _fetch(self, sid: str) -> Response:
        with self._changed:
            resource = self.messages.get(sid)
            return json_response(200, resource) if resource else wire.error(20404)

    def _create(self, params: dict[str, Any]) -> Response:
        with self._changed:
            if self._failures:
                return self._failures.popleft()
            problem = wire.create_problem(params, opted_out=params.get("To") in self._opted_out)
            if problem is not None:
                return problem
            if self._window is not None:
                now = self._clock()
                if self._window.wait(now) > 0:
                    self.violations += 1
                    return wire.error(20429)
                self._window.record(now)
            sid = self._new_sid()
            resource = wire.message_resource(sid, self.account_sid, params, self._now())
            self.messages[sid] = resource
            if params.get("StatusCallback"):
                self._callbacks[sid] = str(params["StatusCallback"])
            self.sent.append({**params, "sid": sid})
            self._changed.notify_all()
        return json_response(201, resource)

    # -- helpers -----------------------------------------------------------------------------

    def _webhook_headers(self, url: str, form: dict[str, str]) -> dict[str, str]:
        return {
            "X-Twilio-Signature": self.signature_for(url, form),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }

    def _new_sid(self) -> str:
        """Message sids are "SM" + 32 hex digits; counted, so runs are reproducible."""
        self._next_sid += 1
        return f"SM{self._next_sid - 1:032x}"
