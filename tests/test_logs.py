"""JSON log lines: one object a line, and events folded into their request's line."""

from __future__ import annotations

import json
import logging

import pytest

from c3n_bot.logs import JsonFormatter, log_event, request_id, request_line

log = logging.getLogger("c3n_bot.test")


def test_an_event_outside_a_request_is_a_line_of_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    log_event(log, "inbound.handled", inbound_id=7, outcome="answered")
    [record] = caplog.records
    assert record.getMessage() == "inbound.handled"
    assert record.__dict__["inbound_id"] == 7 and record.__dict__["outcome"] == "answered"


def test_an_event_inside_a_request_goes_on_the_request_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with request_line() as events:
        log_event(log, "inbound.handled", inbound_id=7, outcome="answered")
    log_event(log, "after", n=1)  # the line is closed: a line of its own again
    assert events == {"inbound.handled": {"inbound_id": 7, "outcome": "answered"}}
    assert [r.getMessage() for r in caplog.records] == ["after"]


def test_a_line_is_one_json_object_with_its_request_id_and_events() -> None:
    token = request_id.set("abcdef123456")
    try:
        record = logging.LogRecord(
            "c3n_bot.http", logging.INFO, __file__, 1, "http.request", None, None
        )
        record.__dict__.update({"status": 200, "inbound.handled": {"inbound_id": 7}})
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert entry["event"] == "http.request" and entry["request_id"] == "abcdef123456"
    assert entry["status"] == 200 and entry["inbound.handled"] == {"inbound_id": 7}
