"""PostgreSQL advisory locks: one process at a time holds a named lease, until it dies.

A session-level advisory lock lives as long as the connection that took it: a process that
is killed, or cut off from the server, loses it at once, and another process may take it.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
import time

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
# A process without the lease asks again at most this often (wake-ups come much faster).
RETRY_SECONDS = 0.5


class Holding(enum.Enum):
    """What `AdvisoryLease.hold` found."""

    NO = "no"  # another process holds it (or the server is unreachable)
    KEPT = "kept"  # this process held it already, and still does
    TAKEN = "taken"  # this process has just taken it


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lease name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AdvisoryLease:
    """`pg_try_advisory_lock` on a connection of its own; thread-safe."""

    def __init__(
        self, sqlalchemy_url: str, name: str, *, retry_seconds: float = RETRY_SECONDS
    ) -> None:
        url = make_url(sqlalchemy_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self.name = name
        self._key = lock_key(name)
        self._retry = retry_seconds
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False
        self._last_try = -float("inf")
        self._lock = threading.Lock()

    def hold(self) -> Holding:
        """Check the lease is still ours, or try to take it (at most every `retry_seconds`)."""
        with self._lock:
            if self._held:
                if self._alive():
                    return Holding.KEPT
                log.warning("lease.lost", extra={"lease": self.name})
            if time.monotonic() - self._last_try < self._retry:
                return Holding.NO
            self._last_try = time.monotonic()
            if self._try_lock():
                log.info("lease.taken", extra={"lease": self.name})
                return Holding.TAKEN
            return Holding.NO

    def release(self) -> None:
        """Give the lease up at once (a closed connection's lock goes a moment later)."""
        with self._lock:
            if self._held and self._connection is not None:
                try:
                    self._connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
                except psycopg.Error:
                    pass  # the connection is gone, and the lock with it
            self._drop()

    def _alive(self) -> bool:
        assert self._connection is not None
        try:
            self._connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            self._drop()
            return False

    def _try_lock(self) -> bool:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            row = self._connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (self._key,)
            ).fetchone()
        except psycopg.Error:
            self._drop()
            return False
        self._held = bool(row and row[0])
        return self._held

    def _drop(self) -> None:
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass  # already broken
