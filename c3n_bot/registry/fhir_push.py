"""One POST of a transaction Bundle to a FHIR server, and what its answer means for a retry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from c3n_bot.config import FhirSink
from c3n_bot.service.delivery import parse_retry_after

FHIR_JSON = "application/fhir+json"
TIMEOUT_SECONDS = 30.0
# Kept when a server's error body is not an OperationOutcome (an HTML error page, say).
MAX_DIAGNOSTICS = 1000


@dataclass(frozen=True)
class PushResult:
    """Delivered, retry later (network, 5xx, 429), or failed for good (any other answer)."""

    outcome: str  # "delivered" | "retry" | "failed"
    status_code: int | None = None
    retry_after: float | None = None
    operation_outcome: dict[str, Any] | None = None


def new_client() -> httpx.Client:
    """A pooled client with a timeout: one stuck server must not stall the pusher forever."""
    return httpx.Client(timeout=TIMEOUT_SECONDS)


def push(client: httpx.Client, sink: FhirSink, bundle: dict[str, Any]) -> PushResult:
    """POST the Bundle to the sink's base URL; never raises for network or server errors."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if sink.token:
        headers["Authorization"] = f"Bearer {sink.token}"
    try:
        response = client.post(sink.url, content=json.dumps(bundle).encode(), headers=headers)
    except httpx.TransportError:
        return PushResult("retry")
    return classify(response)


def classify(response: httpx.Response) -> PushResult:
    """2xx delivered; 429 and 5xx retried (honouring Retry-After); the rest failed."""
    status = response.status_code
    if 200 <= status < 300:
        return PushResult("delivered", status)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return PushResult("retry", status, retry_after=retry_after)
    return PushResult("failed", status, operation_outcome=operation_outcome(response))


def operation_outcome(response: httpx.Response) -> dict[str, Any]:
    """The server's OperationOutcome, or one that carries the start of whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return local_outcome(
        "exception", response.text[:MAX_DIAGNOSTICS] or f"HTTP {response.status_code}"
    )


def local_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome written by us, for a failure the server did not describe."""
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}
