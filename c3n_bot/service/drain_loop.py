"""A background thread that drains due work, then waits for a wake-up or the idle interval."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class DrainLoop:
    """Base of the dispatcher and the sink pushers: subclasses implement `drain_once`."""

    # Log events are "<event>.started", "<event>.error" and "<event>.stopped".
    event = "worker"

    def __init__(self, *, idle_wait: float) -> None:
        self._idle_wait = idle_wait
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def drain_once(self) -> int:
        """Handle one batch of due work; returns how much was handled."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections once the thread has ended."""

    def log_extra(self) -> dict[str, Any]:
        """Ids that tell this loop's log lines apart (never PHI)."""
        return {}

    def wake(self) -> None:
        """Ask the loop to look for due work now."""
        self._wakeup.set()

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name=self.event, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the work in hand, stop, and release connections."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.close()

    def run(self) -> None:
        """Loop until stopped: drain due work, then wait for a wake-up or the idle interval."""
        log.info(f"{self.event}.started", extra=self.log_extra())
        while not self._stopping.is_set():
            try:
                handled = self.drain_once()
            except Exception:
                log.exception(f"{self.event}.error", extra=self.log_extra())
                handled = 0
            if handled == 0:
                self._wakeup.wait(self._idle_wait)
                self._wakeup.clear()
        log.info(f"{self.event}.stopped", extra=self.log_extra())
