"""Liveness, metrics and request ids."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient

from c3n_bot.config import Settings
from c3n_bot.web.app import create_app


def test_healthz_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_healthz_503_when_database_unreachable(settings: Settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = settings.model_copy(
        update={"database_url": f"postgresql://nobody@127.0.0.1:{port}/none"}
    )
    with TestClient(create_app(unreachable)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/healthz")
    body = client.get("/metrics").text
    assert 'c3n_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"x-request-id": "abc123def456"})
    assert given.headers["x-request-id"] == "abc123def456"
    made = client.get("/healthz", headers={"x-request-id": "bad id!"})
    assert made.headers["x-request-id"] != "bad id!" and len(made.headers["x-request-id"]) == 32
