"""PostgreSQL LISTEN: wake a worker the moment another process commits outbox rows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


class Listener:
    """A thread LISTENing on one channel; reconnects after errors until stopped. `on_notify`
    gets each notification's payload, and "" once LISTEN is on (anything may have been
    committed while it was not)."""

    def __init__(self, sqlalchemy_url: str, channel: str, on_notify: Callable[[str], None]) -> None:
        url = make_url(sqlalchemy_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._channel = channel
        self._on_notify = on_notify
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (within about a second)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as connection:
                    connection.execute(f'LISTEN "{self._channel}"')
                    # Anything may have been committed while we were not listening.
                    self._on_notify("")
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=1.0, stop_after=1):
                            self._on_notify(notify.payload)
            except psycopg.Error:
                log.warning("listen.reconnecting")
                self._stopping.wait(2.0)
