"""A fake FHIR R4 server on loopback: transaction Bundles at its base URL, with ifNoneExist.

It keeps every resource it creates, answers a conditional create whose identifier it already
holds with 200 (creating nothing), rewrites `urn:uuid` references to the ids it assigns or
finds, checks the bearer token, and fails on demand from a queue of scripted answers.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.server import LoopbackServer, Request, Response

BASE_PATH = "/fhir"
FHIR_JSON = "application/fhir+json"
_ESCAPED = re.compile(r"\\(.)")


def outcome(code: str, diagnostics: str) -> dict[str, Any]:
    """An OperationOutcome with one error issue."""
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON response."""
    return Response(status, json.dumps(payload).encode(), FHIR_JSON, headers or {})


class FakeFhirServer(LoopbackServer):
    """POST [base] with a transaction Bundle; everything else is 404. Start, stop or `with` it.

    Recording (thread-safe): ``transactions`` holds every Bundle processed and ``responses``
    the transaction-response of each; ``failed_transactions`` those answered by a scripted
    failure; ``resources`` maps each resource type to the resources created, with their ids.
    """

    def __init__(self, token: str | None = None) -> None:
        super().__init__(self._handle)
        self.token = token
        self.transactions: list[dict[str, Any]] = []
        self.failed_transactions: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.resources: dict[str, list[dict[str, Any]]] = {}
        # (type, system, value) -> the first resource stored with that identifier: a search
        # as a real server's index answers it, not a scan of everything stored (bench.load
        # pushes thousands of bundles; a scan made this fake its busiest process).
        self._by_identifier: dict[tuple[str, Any, Any], dict[str, Any]] = {}
        self._failures: deque[Response] = deque()
        self._next_id = 0
        self._changed = threading.Condition()
        # The base URL a client is configured with; transactions are POSTed right there.
        self.url = f"{self.url}{BASE_PATH}"

    # -- test controls -----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        retry_after: str | None = None,
        issue: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` transactions with `status` (and Retry-After, an outcome)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = issue or outcome("transient" if status >= 429 else "invalid", f"scripted {status}")
        with self._changed:
            self._failures.extend([fhir_response(status, body, headers)] * times)

    def wait_transactions(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least `count` transactions were processed; returns them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.transactions) >= count, timeout):
                raise TimeoutError(f"{len(self.transactions)} of {count} transactions")
            return list(self.transactions)

    def count(self, resource_type: str) -> int:
        """How many resources of a type exist."""
        with self._changed:
            return len(self.resources.get(resource_type, []))

    def find(self, resource_type: str, system: str, value: str) -> dict[str, Any] | None:
        """The resource of a type carrying this identifier, if any."""
        with self._changed:
            return self._find(resource_type, system, value)

    # -- HTTP --------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path.rstrip("/") != BASE_PATH:
            return fhir_response(404, outcome("not-found", f"{request.method} {request.path}"))
        if self.token is not None and request.headers.get("authorization") != (
            f"Bearer {self.token}"
        ):
            return fhir_response(401, outcome("login", "bearer token missing or wrong"))
        if not request.headers.get("content-type", "").startswith(FHIR_JSON):
            return fhir_response(415, outcome("not-supported", "send application/fhir+json"))
        bundle = json.loads(request.body)
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return fhir_response(400, outcome("invalid", "expected a transaction Bundle"))
        with self._changed:
            if self._failures:
                self.failed_transactions.append(bundle)
                return self._failures.popleft()
            answer = self._transaction(bundle)
            self.transactions.append(bundle)
            self.responses.append(answer)
            self._changed.notify_all()
        return fhir_response(200, answer)

    def _transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        # Conditional creates first, so references can point at found or new ids.
        ids: dict[str, str] = {}
        created: list[dict[str, Any]] = []
        answers = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            kind = resource["resourceType"]
            system, value = _identifier_query(entry["request"]["ifNoneExist"])
            found = self._find(kind, system, value)
            if found is None:
                self._next_id += 1
                found = {**resource, "id": str(self._next_id)}
                created.append(found)
                answers.append({"status": "201 Created", "location": f"{kind}/{found['id']}"})
            else:
                answers.append({"status": "200 OK", "location": f"{kind}/{found['id']}"})
            ids[entry["fullUrl"]] = f"{kind}/{found['id']}"
        for resource in created:
            stored = _rewrite(resource, ids)
            kind = stored["resourceType"]
            self.resources.setdefault(kind, []).append(stored)
            for identifier in _identifiers(stored):
                key = (kind, identifier.get("system"), identifier.get("value"))
                self._by_identifier.setdefault(key, stored)
        entries = [{"response": answer} for answer in answers]
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    def _find(self, resource_type: str, system: str, value: str) -> dict[str, Any] | None:
        return self._by_identifier.get((resource_type, system, value))


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    identifiers = resource.get("identifier", [])
    return [identifiers] if isinstance(identifiers, dict) else list(identifiers)


def _identifier_query(query: str) -> tuple[str, str]:
    """`identifier=system|value` (URL-encoded, FHIR-escaped) as (system, value)."""
    ((name, token),) = parse_qsl(query)
    assert name == "identifier", query
    system, _, value = token.partition("|")
    return system, _ESCAPED.sub(r"\1", value)


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    """A resource with each `urn:uuid` reference replaced by the server's `Type/id`."""
    if isinstance(value, dict):
        return {
            k: ids.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, ids)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value
