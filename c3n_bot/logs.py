"""JSON logging with request ids; callers log event names and ids, never message content."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# The fields of the open request's own line (`http.request`, web.middleware). What the
# request's work has to say goes on that line, not on one of its own: a webhook writes one
# line, not two (each line is about a tenth of a millisecond of a webhook's CPU). Work done
# on the request's behalf in another thread (the webhook writer) runs in a copy of its
# context, which holds the same dict.
_request_line: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "request_line", default=None
)


@contextmanager
def request_line() -> Iterator[dict[str, Any]]:
    """Open the request's line: the fields events add to it, for its writer to log."""
    fields: dict[str, Any] = {}
    token = _request_line.set(fields)
    try:
        yield fields
    finally:
        _request_line.reset(token)


def log_event(logger: logging.Logger, event: str, **fields: Any) -> None:
    """An INFO event: on the open request's line (under its name) if there is one, else a
    line of its own."""
    line = _request_line.get()
    if line is None:
        logger.info(event, extra=fields)
    else:
        line[event] = fields


# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks may quote patient data.
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Route all logs, uvicorn's included, through the JSON formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log prints full paths with query strings; ours logs route templates.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("apscheduler").setLevel(max(logging.getLevelName(level), logging.WARNING))
    # HTTP client request lines carry the Telegram bot token in the URL and Twilio's carry
    # phone numbers: never below WARNING.
    for name in ("httpx", "httpcore", "telegram", "twilio", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
