"""Throwaway real PostgreSQL server for the test run, started from local binaries (no Docker)."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import NoReturn
from urllib.parse import quote

import psycopg
from psycopg import sql

__all__ = [
    "HOW_TO_PROVIDE",
    "PostgresServer",
    "PostgresUnavailable",
    "find_pg_bindir",
]

HOW_TO_PROVIDE = (
    "To run the database tests, set C3N_TEST_DATABASE_URL=postgresql://user:pw@host:port/db, "
    "or install PostgreSQL server binaries (Debian: apt-get install postgresql) "
    "or set C3N_PG_BINDIR to the directory holding initdb, pg_ctl and postgres."
)

_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_LOG_TAIL_LINES = 40
_COMMAND_TIMEOUT = 120.0
_START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why and how to provide one."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _SERVER_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> numeric version tuple; non-numeric sorts last.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_pg_bindir() -> Path | None:
    """Locate the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Order: ``$C3N_PG_BINDIR`` (authoritative when set, even if it turns out to be wrong,
    so that a misconfiguration is reported rather than silently bypassed), then
    ``pg_config --bindir``, then ``/usr/lib/postgresql/*/bin`` (highest version first),
    then the directory of ``initdb`` on ``PATH``. Returns None when nothing is found.
    """
    explicit = os.environ.get("C3N_PG_BINDIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()

    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server_binaries(Path(out)):
            return Path(out)

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if _has_server_binaries(candidate):
            return candidate

    initdb = shutil.which("initdb")
    if initdb is not None and _has_server_binaries(Path(initdb).parent):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary directory, listening on 127.0.0.1.

    Use as a context manager, or call :meth:`start` / :meth:`stop` (``stop`` is idempotent,
    and an ``atexit`` hook stops any server the caller forgot). Every failure to start is
    raised as :class:`PostgresUnavailable`, whose message is suitable for ``pytest.fail``.
    """

    def __init__(self, bindir: Path | None = None, *, os_user: str = "postgres") -> None:
        """Prepare (but do not start) a server; ``bindir`` defaults to :func:`find_pg_bindir`.

        ``os_user`` is the account that runs initdb/pg_ctl when the current process is root
        (PostgreSQL refuses to run as root); it is ignored for non-root users.
        """
        self._bindir = bindir
        self._os_user = os_user
        self._tmpdir: Path | None = None
        self._port: int | None = None
        self._running = False
        self._lock = threading.Lock()

    # -- public API -------------------------------------------------------------------

    @classmethod
    def start_or_explain(
        cls, bindir: Path | None = None, *, os_user: str = "postgres"
    ) -> PostgresServer:
        """Create and start a server; raise :class:`PostgresUnavailable` with guidance if not."""
        server = cls(bindir, os_user=os_user)
        server.start()
        return server

    @property
    def port(self) -> int:
        """TCP port the running server listens on."""
        if self._port is None or not self._running:
            raise RuntimeError("PostgresServer is not running")
        return self._port

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (inside the temporary directory)."""
        if self._tmpdir is None:
            raise RuntimeError("PostgresServer has not been started")
        return self._tmpdir / "data"

    @property
    def url(self) -> str:
        """URL of the ``postgres`` maintenance database.

        For example ``postgresql://postgres@127.0.0.1:54321/postgres``.
        """
        return self.database_url("postgres")

    def postmaster_pid(self) -> int:
        """The running server's process id (its backends are its children)."""
        return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])

    def database_url(self, name: str) -> str:
        """URL of database ``name`` on this server (the database is not created)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(name, safe='')}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def start(self) -> None:
        """Initialise and start the server; raise :class:`PostgresUnavailable` on failure."""
        with self._lock:
            if self._running:
                return
            try:
                self._start()
            except BaseException:
                self._stop()
                raise

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory; safe to call repeatedly."""
        with self._lock:
            self._stop()

    def halt(self, mode: str = "fast") -> None:
        """Stop the server but keep its data and port (drills: the database goes away).

        ``mode`` is pg_ctl's: "fast" disconnects clients and shuts down cleanly, "immediate"
        is a crash (recovery runs at the next start).
        """
        with self._lock:
            if self._bindir is None or self._tmpdir is None:
                raise RuntimeError("PostgresServer has not been started")
            proc = self._run(
                [str(self._bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            )
            if proc.returncode != 0:
                self._fail("pg_ctl stop failed.", proc)

    def resume(self) -> None:
        """Start a halted server again on the same port with the same data."""
        with self._lock:
            if self._port is None:
                raise RuntimeError("PostgresServer has not been started")
            proc = self._pg_ctl_start(self._port)
            if proc.returncode != 0:
                self._fail("pg_ctl start (resume) failed.", proc)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _wrap(self, cmd: list[str]) -> list[str]:
        """Run ``cmd`` as ``os_user`` when we are root (initdb/postgres refuse to run as root)."""
        if not self._as_root:
            return cmd
        runuser = shutil.which("runuser")
        if runuser is not None:
            return [runuser, "-u", self._os_user, "--", *cmd]
        su = shutil.which("su") or "su"
        return [su, self._os_user, "-s", "/bin/sh", "-c", shlex.join(cmd)]

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        # stdin/out/err never leak into the daemon: pg_ctl -l redirects the postmaster itself.
        return subprocess.run(
            self._wrap(cmd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            cwd=self._tmpdir,
            check=False,
        )

    def _log_tail(self) -> str:
        if self._tmpdir is None:
            return "(no server log)"
        try:
            lines = (self._tmpdir / "log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(server log is empty)"

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str] | None = None) -> NoReturn:
        parts = [f"Could not start a throwaway PostgreSQL server: {what}"]
        if proc is not None:
            output = (proc.stdout + proc.stderr).strip()
            parts.append(f"command: {shlex.join(proc.args)} (exit {proc.returncode})")
            if output:
                parts.append("output:\n" + "\n".join(output.splitlines()[-_LOG_TAIL_LINES:]))
        if self._tmpdir is not None and (self._tmpdir / "log").exists():
            parts.append("server log tail:\n" + self._log_tail())
        parts.append(HOW_TO_PROVIDE)
        raise PostgresUnavailable("\n".join(parts))

    def _start(self) -> None:
        bindir = self._bindir if self._bindir is not None else find_pg_bindir()
        if bindir is None:
            self._fail("no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found.")
        missing = [name for name in _SERVER_BINARIES if not os.access(bindir / name, os.X_OK)]
        if missing:
            self._fail(f"{bindir} lacks executable {', '.join(missing)}.")
        self._bindir = bindir

        self._tmpdir = Path(tempfile.mkdtemp(prefix="c3n-pg-"))
        _register(self)
        if self._as_root:
            try:
                shutil.chown(self._tmpdir, user=self._os_user, group=None)
            except (LookupError, OSError) as exc:
                self._fail(
                    f"running as root and cannot hand {self._tmpdir} to OS user "
                    f"{self._os_user!r}: {exc}"
                )
            self._tmpdir.chmod(0o700)

        initdb = self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if initdb.returncode != 0:
            self._fail("initdb failed.", initdb)

        last: subprocess.CompletedProcess[str] | None = None
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            last = self._pg_ctl_start(port)
            if last.returncode == 0:
                self._port = port
                self._running = True
                return
            # Someone grabbed the port between probing and binding: try another one.
            if "could not bind" not in self._log_tail() and "in use" not in self._log_tail():
                break
            self._kill_postmaster()
        self._fail("pg_ctl start failed.", last)

    def _pg_ctl_start(self, port: int) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None and self._tmpdir is not None
        options = " ".join(
            [
                f"-p {port}",
                f"-k {shlex.quote(str(self._tmpdir))}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        return self._run(
            [
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self._tmpdir / "log"),
                "-o",
                options,
                "start",
            ]
        )

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl cannot stop the server: SIGKILL the postmaster by pid file."""
        if self._tmpdir is None:
            return
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)

    def _stop(self) -> None:
        if self._tmpdir is not None:
            if self._bindir is not None and (self.data_dir / "postmaster.pid").exists():
                try:
                    proc = self._run(
                        [
                            str(self._bindir / "pg_ctl"),
                            "-D",
                            str(self.data_dir),
                            "-m",
                            "fast",
                            "-w",
                            "-t",
                            "60",
                            "stop",
                        ]
                    )
                    stopped = proc.returncode == 0
                except (OSError, subprocess.SubprocessError):
                    stopped = False
                if not stopped:
                    self._kill_postmaster()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = None
        self._port = None
        self._running = False
        _unregister(self)


# -- atexit safety net ------------------------------------------------------------------

_live: set[PostgresServer] = set()
_live_lock = threading.Lock()


def _register(server: PostgresServer) -> None:
    with _live_lock:
        _live.add(server)


def _unregister(server: PostgresServer) -> None:
    with _live_lock:
        _live.discard(server)


@atexit.register
def _stop_forgotten_servers() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()
