"""What the benchmarks share: a migrated SQLite file, contacts mid-PHQ-9, the app served by
uvicorn in a child process, loopback-only networking, percentiles, CPU time and peak memory.

The benchmarks run from the dev venv (`make bench`), whose editable install puts the
repository on sys.path: `python -m bench.NAME` and `python bench/NAME.py` both work.

The child server is `python -m bench.common serve --port N`: what `c3n-bot web` runs (the
same settings from the environment, JSON logs, uvicorn with its defaults), except that it
skips the setWebhook call at start-up; a web process has no background workers, so no
provider is ever called. It stops by itself after --max-seconds, and when its parent dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.config import Settings, load_settings
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import start_flow
from c3n_bot.store import migrate as migrations
from c3n_bot.store.base import Channel, Relationship
from c3n_bot.store.db import make_engine
from tests.builders import link, make_center, make_contact, make_identity, make_patient
from tests.fakes.server import guard_loopback

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# Where a provider call would go if anything made one: a closed loopback port.
NOWHERE = "http://127.0.0.1:9"
FIRST_CHAT_ID = 710_000_000
SEED_CHUNK = 250
PR_SET_PDEATHSIG = 1
MAX_IDLE_SECONDS = 2.0  # a kept-alive connection idle longer is closed, not reused


# -- this process -----------------------------------------------------------------------------


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse, in this process, any connection to a host other than loopback."""
    with pytest.MonkeyPatch.context() as patch:
        guard_loopback(patch)
        yield


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """This process's cyclic garbage collector off while it times requests; run after.

    A load generator holds thousands of pending requests, and a full collection of its heap
    took 145 ms in the middle of a phase. An open loop then sent every request due meanwhile
    at once and counted, from when each was due, the generator's own pause: bench.inbound's
    half-rate p99 was that pause, not the server's.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def forget_c3n_environment() -> None:
    """Drop inherited C3N_* variables: a benchmark's configuration is its own."""
    for key in [key for key in os.environ if key.startswith("C3N_")]:
        del os.environ[key]


def settings_from(env: Mapping[str, str]) -> Settings:
    """The Settings a process with these C3N_* variables (and no .env file) builds."""
    fields = {
        key.removeprefix("C3N_").lower(): value
        for key, value in env.items()
        if key.startswith("C3N_")
    }
    return load_settings(_env_file=None, **fields)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def migrated_sqlite(directory: Path, name: str = "bench.db") -> str:
    """A new SQLite file in `directory`, migrated to head; returns its URL."""
    url = f"sqlite:///{directory / name}"
    engine = make_engine(url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()
    return url


# -- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """One seeded patient reporting for themself on one channel."""

    patient_id: uuid.UUID
    contact_id: uuid.UUID
    channel: Channel
    address: str


@dataclass(frozen=True)
class Seeded:
    """Addresses of the seeded contacts, by channel, and who they are."""

    telegram_chats: tuple[int, ...]
    sms_numbers: tuple[str, ...]
    families: tuple[Family, ...] = ()
    center_ids: tuple[uuid.UUID, ...] = ()


def sms_number(index: int) -> str:
    """A distinct fictional US number (555) for each index below 10,000."""
    return f"+1202555{index:04d}"


def seed_families(
    sessions: sessionmaker[Session],
    *,
    count: int,
    now: datetime,
    first: int = 0,
    start: Callable[[Session, Family], object] | None = None,
) -> Seeded:
    """`count` patients reporting for themselves, alternately on Telegram and SMS (addresses
    numbered from `first`, so batches never share one); `start` runs for each in its chunk's
    transaction (say, to start a flow)."""
    if first + count > 20_000:
        raise ValueError("at most 20,000 contacts (10,000 SMS numbers)")
    families: list[Family] = []
    centers: list[uuid.UUID] = []
    for chunk in range(first, first + count, SEED_CHUNK):
        with sessions.begin() as db:
            center = make_center(db, now=now)
            centers.append(center.id)
            for index in range(chunk, min(first + count, chunk + SEED_CHUNK)):
                channel = Channel.TELEGRAM if index % 2 == 0 else Channel.SMS
                address = (
                    str(FIRST_CHAT_ID + index)
                    if channel == Channel.TELEGRAM
                    else sms_number(index // 2)
                )
                patient = make_patient(db, now=now, center=center)
                contact = make_contact(db, now=now)
                link(db, contact=contact, patient=patient, relation=Relationship.SELF)
                make_identity(db, contact=contact, now=now, channel=channel, address=address)
                families.append(Family(patient.id, contact.id, channel, address))
                if start is not None:
                    start(db, families[-1])
    return Seeded(
        telegram_chats=tuple(int(f.address) for f in families if f.channel == Channel.TELEGRAM),
        sms_numbers=tuple(f.address for f in families if f.channel == Channel.SMS),
        families=tuple(families),
        center_ids=tuple(centers),
    )


def seed_mid_phq9(
    sessions: sessionmaker[Session], services: Services, *, count: int, now: datetime
) -> Seeded:
    """`count` patients reporting for themselves, alternately on Telegram and SMS, each with
    a PHQ-9 started through the service (its first question is a pending outbox row)."""

    def start(db: Session, family: Family) -> None:
        start_flow(
            db,
            contact_id=family.contact_id,
            flow_id="phq9",
            patient_id=family.patient_id,
            services=services,
            now=now,
            channel=family.channel,
        )

    return seed_families(sessions, count=count, now=now, start=start)


# -- numbers ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.99 for p99); NaN when there are no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of this process (or of process `pid`, from /proc), all threads."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    # Fields after the command name, which may hold spaces: state is 3rd, utime 14th.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, in clock ticks: (all, stolen by the hypervisor)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]  # user nice system idle iowait irq softirq steal


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time the hypervisor took between two `cpu_ticks()`."""
    ticks = after[0] - before[0]
    return (after[1] - before[1]) / ticks if ticks else 0.0


def peak_rss_mib(pid: int | None = None) -> float:
    """Peak resident memory of this process (or of `pid`, from /proc) in MiB; NaN if unknown."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return math.nan


# -- load generation --------------------------------------------------------------------------


class LoadClient(Protocol):
    """Sends one request and returns its status (0 when no answer came, counted in `errors`)."""

    errors: Counter[str]

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: Mapping[str, str]
    ) -> int: ...

    async def aclose(self) -> None: ...


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0


class RawClient:
    """A minimal HTTP/1.1 keep-alive client for loopback load (Content-Length bodies only).

    httpx.AsyncClient spends 1.8-3.3 ms of CPU per request on this machine (httpcore 1.0
    without sniffio retries that import at every lock, and checks every pooled connection on
    every request): it saturates its own core at 200-450 requests a second, so against a
    bare endpoint it measures itself (`--client httpx` shows it). This one spends under 0.1 ms.
    """

    def __init__(
        self, host: str, port: int, *, max_connections: int, timeout: float = 30.0
    ) -> None:
        self._host, self._port = host, port
        self._authority = f"Host: {host}:{port}\r\n"
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self.errors: Counter[str] = Counter()

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: Mapping[str, str]
    ) -> int:
        """Send and read the whole answer; 0 on a connection error or timeout."""
        head = f"{method} {path} HTTP/1.1\r\n{self._authority}"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if body or method != "GET":
            head += f"Content-Length: {len(body)}\r\n"
        message = head.encode("latin-1") + b"\r\n" + body
        async with self._slots:
            connection = self._reusable()
            try:
                if connection is None:
                    connection = await self._connect()
                status, keep = await asyncio.wait_for(
                    self._exchange(connection, message), self._timeout
                )
            except (OSError, EOFError, ValueError, TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
                if connection is not None:
                    self._discard(connection)
                return 0
            if keep:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                self._discard(connection)
            return status

    def _reusable(self) -> _Connection | None:
        # Never reuse a connection the server may have closed (uvicorn: idle 5 s): a request
        # written into it would get no answer although the server never saw it.
        while self._idle:
            connection = self._idle.pop()
            idle = time.monotonic() - connection.idle_since
            if idle < MAX_IDLE_SECONDS and not connection.reader.at_eof():
                return connection
            self._discard(connection)
        return None

    async def aclose(self) -> None:
        """Close every connection."""
        for connection in list(self._open):
            self._discard(connection)
        self._idle.clear()

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port), self._timeout
        )
        connection = _Connection(reader, writer)
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        connection.writer.close()

    @staticmethod
    async def _exchange(connection: _Connection, message: bytes) -> tuple[int, bool]:
        connection.writer.write(message)
        await connection.writer.drain()
        head = await connection.reader.readuntil(b"\r\n\r\n")  # IncompleteReadError: EOFError
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, keep = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                keep = value.strip().lower() != "close"
            elif name == "transfer-encoding":
                raise ValueError("chunked answers are not supported")
        if length:
            await connection.reader.readexactly(length)
        return status, keep


class HttpxClient:
    """The same interface over httpx.AsyncClient (`--client httpx`, for comparison)."""

    def __init__(self, base_url: str, *, max_connections: int, timeout: float = 30.0) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.AsyncClient(
            base_url=base_url, limits=limits, timeout=httpx.Timeout(timeout)
        )
        self.errors: Counter[str] = Counter()

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: Mapping[str, str]
    ) -> int:
        """Send and read the whole answer; 0 when no answer came."""
        try:
            response = await self._client.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            return 0
        return response.status_code

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()


# -- the app in a child process ---------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """One JSON line of the server's log."""

    at: float  # Unix time
    fields: dict[str, object]


class AppServer:
    """The app under uvicorn in a child process on 127.0.0.1, configured by `env_for(port)`."""

    def __init__(
        self,
        env_for: Callable[[int], Mapping[str, str]],
        workdir: Path,
        *,
        max_seconds: float,
        start_timeout: float = 30.0,
    ) -> None:
        self._env_for = env_for
        self._workdir = workdir
        self._max_seconds = max_seconds
        self._start_timeout = start_timeout
        self.log_path = workdir / "server.log"
        self.port = 0
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def start(self) -> Self:
        """Start the child and wait until GET /livez answers (a new port if one was taken)."""
        for _ in range(3):
            self.port = free_port()
            self.url = f"http://{LOOPBACK}:{self.port}"
            if self._spawn():
                return self
        raise RuntimeError(f"the server did not start; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM (uvicorn finishes open requests), then SIGKILL after 15 s."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_entries(self) -> list[LogEntry]:
        """The JSON lines the server logged so far (other lines skipped)."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            if isinstance(fields, dict) and isinstance(fields.get("ts"), str):
                entries.append(LogEntry(datetime.fromisoformat(fields["ts"]).timestamp(), fields))
        return entries

    def _spawn(self) -> bool:
        env = {key: value for key, value in os.environ.items() if not key.startswith("C3N_")}
        env.update(self._env_for(self.port))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "bench.common", "serve", "--port", str(self.port)]
        command += ["--max-seconds", str(self._max_seconds)]
        self._process = subprocess.Popen(
            command, cwd=self._workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:  # the port was taken, or a start-up error
                self.stop()
                return False
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/livez", timeout=1.0).status_code == 200:
                    return True
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not answer within {self._start_timeout} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(port: int, max_seconds: float) -> None:
    """The child: `c3n-bot web` on 127.0.0.1:port without setWebhook, for at most max_seconds."""
    import uvicorn

    from c3n_bot.logs import configure_logging
    from c3n_bot.web.app import create_app, prepare_to_serve

    _die_with_parent()
    settings = load_settings()
    configure_logging(settings.log_level)
    app = create_app(settings, embedded_workers=False, register=False)
    prepare_to_serve()  # as `c3n-bot web` does
    watchdog = threading.Timer(max_seconds, os.kill, args=(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    uvicorn.run(app, host=LOOPBACK, port=port, log_config=None)


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to this process when the benchmark that started it ends.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m bench.common serve --port N [--max-seconds S]`."""
    parser = argparse.ArgumentParser(prog="python -m bench.common")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="serve the app for a benchmark")
    serve_command.add_argument("--port", type=int, required=True)
    serve_command.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    serve(args.port, args.max_seconds)


if __name__ == "__main__":
    main()
