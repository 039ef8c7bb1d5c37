"""Real OS processes for the topology benchmarks: start, wait until ready, kill, measure.

Each child runs through `python -m bench.procs exec -- COMMAND...`, which asks the kernel to
SIGKILL it when the benchmark that started it dies (PR_SET_PDEATHSIG survives exec), then
execs the command: a crashed benchmark never leaves a web, worker or clock process behind.
The children must be started from the main thread (the signal follows the starting thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.common import PR_SET_PDEATHSIG, REPO_ROOT, cpu_seconds, peak_rss_mib

C3N_BOT = str(Path(sys.executable).with_name("c3n-bot"))


class Deadline(TimeoutError):
    """A condition did not hold in time."""


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll `condition` until it holds; Deadline after `timeout` seconds (never waits forever)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise Deadline(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


@dataclass
class Child:
    """One named OS process of the topology, its output appended to `log_path`."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    ready: Callable[[Child], bool] = field(default=lambda child: True)
    peak_mib: float = 0.0  # the highest VmHWM seen across this child's lives
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        """The running process's id."""
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self._process is not None and self._process.poll() is None

    def launch(self) -> Child:
        """Start the process without waiting for it (from the main thread only)."""
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "bench.procs", "exec", "--", *self.argv]
        self._process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=dict(self.env), stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def is_ready(self) -> bool:
        """Ready as `ready` says; RuntimeError if the process has exited."""
        if self.ready(self):
            return True
        if not self.alive:
            raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
        return False

    def start(self, *, timeout: float = 60.0) -> Child:
        """Start it and wait until it is ready."""
        self.launch()
        wait_until(self.is_ready, timeout=timeout, what=f"{self.name} ready", interval=0.05)
        return self

    async def start_async(self, *, timeout: float = 60.0) -> Child:
        """The same inside an event loop, which goes on serving meanwhile."""
        self.launch()
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() >= deadline:
                raise Deadline(f"{self.name} ready: not within {timeout:g} s")
            await asyncio.sleep(0.1)
        return self

    def send_kill(self) -> None:
        """SIGKILL now, from any thread; `stop` or `start` reaps it later."""
        if self._process is not None and self.alive:
            self.sample_memory()
            self._process.kill()

    def sample_memory(self) -> float:
        """Record the current peak resident memory (VmHWM) of the process; returns it."""
        if self.alive:
            peak = peak_rss_mib(self.pid)
            if peak == peak:  # not NaN
                self.peak_mib = max(self.peak_mib, peak)
        return self.peak_mib

    def kill(self) -> None:
        """SIGKILL: no clean-up runs, as when a machine or container dies."""
        self.send_kill()
        self._reap(10.0)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        process = self._process
        if process is not None and process.poll() is None:
            self.sample_memory()
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return self._reap(10.0)

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_size(self) -> int:
        """Bytes logged so far (an offset for `events`)."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def events(self, event: str, *, since: int = 0) -> list[dict[str, Any]]:
        """The JSON log lines of one event, from byte offset `since` on."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as log:
            log.seek(since)
            lines = log.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == event:
                    found.append(entry)
        return found

    def _reap(self, timeout: float) -> int | None:
        process, self._process = self._process, None
        status = process.wait(timeout) if process is not None else None
        if self._log is not None:
            self._log.close()
            self._log = None
        return status


def family_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (a postmaster and its backends)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(stat.parent.name) == pid or int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (all processes)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def stolen_seconds() -> float:
    """CPU seconds the hypervisor took from this machine since boot (counted in busy above)."""
    fields = Path("/proc/stat").read_text().split("\n")[0].split()[1:]
    return int(fields[7]) / os.sysconf("SC_CLK_TCK") if len(fields) > 7 else 0.0


def logged(event: str) -> Callable[[Child], bool]:
    """Ready once the child's log holds a line with this JSON event."""
    needle = f'"event": "{event}"'
    return lambda child: needle in child.log_text()


def run_once(argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 120.0) -> str:
    """Run a command to completion (e.g. `c3n-bot migrate`); its output, or RuntimeError."""
    done = subprocess.run(
        list(argv), cwd=REPO_ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without C3N_* variables, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("C3N_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _exec(argv: Sequence[str]) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the signal was armed
        sys.exit(1)
    os.execvp(argv[0], list(argv))


if __name__ == "__main__":
    if sys.argv[1:3] != ["exec", "--"] or len(sys.argv) < 4:
        sys.exit("usage: python -m bench.procs exec -- COMMAND [ARG...]")
    _exec(sys.argv[3:])


@dataclass
class CpuUsage:
    """CPU time of some children, of PostgreSQL, of this process and of the whole machine,
    counted from `start`."""

    children: list[Child]
    postmaster: int
    began: float
    before: dict[str, float]

    @classmethod
    def start(cls, children: Iterable[Child], postmaster: int) -> CpuUsage:
        """Take the starting sample."""
        chosen = list(children)
        return cls(chosen, postmaster, time.monotonic(), _cpu_sample(chosen, postmaster))

    def shares(self) -> dict[str, float]:
        """The share of one core each used since the start."""
        elapsed = time.monotonic() - self.began
        after = _cpu_sample(self.children, self.postmaster)
        return {name: (after[name] - self.before[name]) / elapsed for name in self.before}


def _cpu_sample(children: list[Child], postmaster: int) -> dict[str, float]:
    seconds = {child.name: cpu_seconds(child.pid) for child in children}
    seconds["postgresql"] = family_cpu_seconds(postmaster)
    seconds["this process"] = cpu_seconds()
    seconds["machine"] = machine_busy_seconds()
    seconds["stolen by the hypervisor"] = stolen_seconds()
    return seconds
