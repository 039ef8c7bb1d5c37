"""The loopback server helper: serves, stops cleanly, reports handler failures, stays local."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from tests.fakes.limits import SlidingWindow, retry_after_seconds
from tests.fakes.server import LoopbackServer, Request, Response, json_response


def echo(request: Request) -> Response:
    return json_response(200, {"method": request.method, "params": request.params()})


def test_serves_form_json_and_query_on_loopback() -> None:
    with LoopbackServer(echo) as server, httpx.Client(base_url=server.url) as client:
        assert server.url.startswith("http://127.0.0.1:")
        form = client.post("/x?a=1", data={"b": "2"}).json()
        body = client.post("/x", json={"c": [3]}).json()
    assert form == {"method": "POST", "params": {"a": "1", "b": "2"}}
    assert body == {"method": "POST", "params": {"c": [3]}}


def test_stop_closes_kept_alive_connections_and_joins_threads() -> None:
    before = set(threading.enumerate())
    server = LoopbackServer(echo).start()
    with httpx.Client(base_url=server.url) as client:
        client.get("/")
        client.get("/")  # same kept-alive connection: its thread waits for a third request
        server.stop()
        assert set(threading.enumerate()) - before == set()


def test_a_handler_failure_answers_500_and_fails_the_test() -> None:
    def broken(request: Request) -> Response:
        raise KeyError("bug in the fake")

    with pytest.raises(RuntimeError) as failed, LoopbackServer(broken) as server:
        assert httpx.get(server.url).status_code == 500
    assert isinstance(failed.value.__cause__, KeyError)


def test_connections_beyond_loopback_are_refused() -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="loopback only"):
        sock.connect(("192.0.2.1", 80))


def test_sliding_window_counts_any_one_second_span() -> None:
    window = SlidingWindow(2)
    for now in (0.0, 0.5):
        assert window.wait(now) == 0
        window.record(now)
    assert window.wait(0.9) == pytest.approx(0.1)
    assert window.wait(1.0) == 0
    assert retry_after_seconds(0.1) == 1
