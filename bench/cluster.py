"""The Procfile topology as real processes on a throwaway PostgreSQL, against the fakes.

`release` (c3n-bot migrate) runs once, then `web` processes (each `c3n-bot web` on its own
port: a load balancer's view of two replicas), `worker`s and `clock`s, all configured by
C3N_* variables only, exactly as a deployment configures them.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench.common import LOOPBACK, free_port
from bench.procs import C3N_BOT, Child, child_env, logged, run_once, wait_until
from bench.providers import FHIR_TOKEN, Providers
from c3n_bot.store.db import make_engine, make_session_factory
from tests.fakes import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_BOT_TOKEN
from tests.fakes.twilio import SERVICE_NUMBER
from tests.pgserver import PostgresServer

# What providers are told to call (Twilio signs against it); the driver plays the load
# balancer in front of the web processes, so nothing ever connects to this name.
PUBLIC_URL = "http://c3n-bot.example"
DATABASE = "c3n"
START_TIMEOUT = 90.0  # five interpreters importing at once on a busy 2-core machine


@dataclass(frozen=True)
class Shape:
    """How many processes of each kind."""

    webs: int = 2
    workers: int = 2
    clocks: int = 1


class Cluster:
    """PostgreSQL plus the processes of `shape`, logging into `workdir`."""

    def __init__(
        self,
        workdir: Path,
        providers: Providers,
        shape: Shape,
        *,
        database_url: str | None = None,
    ) -> None:
        """A throwaway PostgreSQL server of its own, unless `database_url` names an empty
        database (tests pass theirs; drills that restart the server need their own)."""
        self.workdir = workdir
        self.providers = providers
        self.shape = shape
        self.telegram_secret = secrets.token_urlsafe(24)
        self._secret_key = secrets.token_urlsafe(32)
        self.postgres = PostgresServer()
        self._own_server = database_url is None
        self.database_url = database_url or ""
        self.children: dict[str, Child] = {}
        self.migrate_output = ""
        self._engine: Engine | None = None

    @property
    def webs(self) -> list[Child]:
        """The web processes, in name order."""
        return [child for name, child in self.children.items() if name.startswith("web")]

    def web_port(self, child: Child) -> int:
        """The port a web process listens on."""
        return int(child.argv[child.argv.index("--port") + 1])

    def sessions(self) -> sessionmaker[Session]:
        """Sessions on the cluster's database, for the benchmark's own reads and seeding."""
        if self._engine is None:
            url = make_url(self.database_url).set(drivername="postgresql+psycopg")
            self._engine = make_engine(url.render_as_string(hide_password=False))
        return make_session_factory(self._engine)

    def env(self) -> dict[str, str]:
        """The C3N_* configuration every process gets."""
        fakes = self.providers
        return {
            "C3N_DATABASE_URL": self.database_url,
            "C3N_SECRET_KEY": self._secret_key,
            "C3N_PUBLIC_URL": PUBLIC_URL,
            "C3N_LOG_LEVEL": "INFO",
            "C3N_TELEGRAM_TOKEN": TEST_BOT_TOKEN,
            "C3N_TELEGRAM_API_URL": fakes.telegram.url,
            "C3N_TELEGRAM_MODE": "webhook",
            "C3N_TELEGRAM_WEBHOOK_SECRET": self.telegram_secret,
            "C3N_TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "C3N_TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
            "C3N_TWILIO_FROM": SERVICE_NUMBER,
            "C3N_TWILIO_API_URL": fakes.twilio.url,
            "C3N_TWILIO_MPS": str(fakes.mps),
            "C3N_FHIR_SINKS": f"registry={fakes.fhir.url}",
            "C3N_FHIR_TOKEN_REGISTRY": FHIR_TOKEN,
        }

    def start(self) -> Self:
        """PostgreSQL, the release phase, then every process at once, each waited for."""
        if self._own_server:
            self.postgres.start()
            self.database_url = self.postgres.create_database(DATABASE)
        env = child_env(self.env())
        self.migrate_output = run_once([C3N_BOT, "migrate"], env).strip()
        for index in range(self.shape.webs):
            self._add_web(f"web{index + 1}", env)
        for kind, count in (("worker", self.shape.workers), ("clock", self.shape.clocks)):
            for index in range(count):
                name = f"{kind}{index + 1}"
                self.children[name] = Child(
                    name, [C3N_BOT, kind], env, self._log(name), ready=logged("process.ready")
                )
        for child in self.children.values():
            child.launch()
        for child in self.children.values():
            wait_until(child.is_ready, timeout=START_TIMEOUT, what=f"{child.name} ready")
        return self

    async def restart(self, name: str) -> Child:
        """Start a stopped or killed process again (a supervisor's job); the loop goes on."""
        child = self.children[name]
        child.stop()
        return await child.start_async(timeout=START_TIMEOUT)

    def lease_holder(self, lease: str) -> Child | None:
        """The live worker that took `lease` last (from the workers' `lease.taken` lines)."""
        latest: tuple[str, Child] | None = None
        for child in self.children.values():
            if not child.name.startswith("worker") or not child.alive:
                continue
            for entry in child.events("lease.taken"):
                if entry.get("lease") == lease and (latest is None or entry["ts"] > latest[0]):
                    latest = (str(entry["ts"]), child)
        return latest[1] if latest else None

    def sample_memory(self) -> None:
        """Record every running process's peak memory so far."""
        for child in self.children.values():
            child.sample_memory()

    def stop(self) -> None:
        """SIGTERM every process, then stop PostgreSQL."""
        for child in reversed(list(self.children.values())):
            with contextlib.suppress(Exception):
                child.stop()
        if self._engine is not None:
            self._engine.dispose()
        if self._own_server:
            self.postgres.stop()

    def _add_web(self, name: str, env: dict[str, str]) -> None:
        port = free_port()
        argv = [C3N_BOT, "web", "--host", LOOPBACK, "--port", str(port)]
        self.children[name] = Child(name, argv, env, self._log(name), ready=_answers_livez(port))

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _answers_livez(port: int) -> Callable[[Child], bool]:
    url = f"http://{LOOPBACK}:{port}/livez"

    def ready(_child: Child) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    return ready
