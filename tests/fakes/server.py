"""A tiny threaded HTTP server on 127.0.0.1 that hands each request to a plain function."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest

R_co = TypeVar("R_co", covariant=True)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Request:
    """One HTTP request as the fake sees it; header names are lower case."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    def params(self) -> dict[str, Any]:
        """Query and body parameters: form-encoded or JSON (JSON values keep their types)."""
        params: dict[str, Any] = dict(parse_qsl(self.query, keep_blank_values=True))
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("application/json") and self.body:
            payload = json.loads(self.body)
            if isinstance(payload, dict):
                params.update(payload)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(self.body.decode(), keep_blank_values=True))
        return params


@dataclass(frozen=True)
class Response:
    """What the handler answers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, payload: object) -> Response:
    """A JSON response with the given status."""
    return Response(status, json.dumps(payload).encode())


Handler = Callable[[Request], Response]


class Poster(Protocol[R_co]):
    """POSTs a form to the app under test: `httpx.post`, a TestClient's or a Client's `post`."""

    def __call__(self, url: str, *, data: dict[str, str], headers: dict[str, str]) -> R_co: ...


class JsonPoster(Protocol[R_co]):
    """POSTs JSON to the app under test: `httpx.post`, a TestClient's or a Client's `post`."""

    def __call__(self, url: str, *, json: Any, headers: dict[str, str]) -> R_co: ...


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, so clients' pools reuse them as they do in production.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    # A backstop: an idle kept-alive connection never holds a thread forever.
    timeout = 30
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=url.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        try:
            response = self.server.handler(request)
        except Exception as exc:  # the test sees it again when the server stops
            self.server.errors.append(exc)
            response = json_response(500, {"error": f"fake failed: {exc!r}"})
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet: test output is for failures."""


class _Server(ThreadingHTTPServer):
    """Tracks open connections so that stopping can close kept-alive ones."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.handler = handler
        self.errors: list[Exception] = []
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Daemon threads, so a forgotten server never blocks exit; tracked here because
        # socketserver only joins non-daemon ones.
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._connections.add(request)
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()] + [thread]
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (a killed process) is not the fake's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join()

    def close_connections(self) -> None:
        """Wake every handler thread blocked reading a kept-alive connection."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class LoopbackServer:
    """Serves `handler` on http://127.0.0.1:<ephemeral port> from a background thread."""

    def __init__(self, handler: Handler) -> None:
        self._server = _Server(handler)
        self._thread: threading.Thread | None = None
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def errors(self) -> list[Exception]:
        """Exceptions raised by the handler (each answered with a 500)."""
        return self._server.errors

    def start(self) -> Self:
        """Start serving; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread."""
        if self._thread is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._thread.join()
            self._thread = None
        self._server.server_close()  # closes the listening socket, joins request threads

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None and self.errors:
            raise RuntimeError("a fake's handler failed") from self.errors[0]


def guard_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any socket connection to a host other than loopback fail at once."""
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK_HOSTS:
            raise ConnectionRefusedError(f"test tried to reach {address[0]!r}: loopback only")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
