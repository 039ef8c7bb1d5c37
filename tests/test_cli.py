"""The c3n-bot command line, run in-process through typer's test runner."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from c3n_bot.cli import app
from c3n_bot.service import staff
from c3n_bot.store.db import make_engine, make_session_factory
from c3n_bot.store.models import (
    ApiKey,
    Center,
    ChannelIdentity,
    Consent,
    Contact,
    ContactPatient,
    Network,
    Patient,
    StaffUser,
)
from tests.conftest import sqlalchemy_url

TABLES = (Network, Center, StaffUser, Patient, Contact, ContactPatient, ChannelIdentity, Consent)
COMMANDS = {
    (): "chronic care network",
    ("serve",): "one process",
    ("web",): "web process only",
    ("worker",): "dispatcher",
    ("clock",): "clock",
    ("migrate",): "schema",
    ("demo",): "demo network",
    ("user",): "staff users",
    ("user", "create"): "staff user",
    ("api-key",): "API keys",
    ("api-key", "create"): "API key",
    ("export",): "for the registry",
}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # Every command configures logging onto the runner's stderr, which closes after the run.
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = root.handlers[:], root.level, alembic.level
    yield
    root.handlers[:], root.level = handlers, level
    alembic.setLevel(alembic_level)
    logging.getLogger("uvicorn.access").disabled = False


def invoke(args: list[str], database_url: str, *, demo: bool = True, stdin: str = "") -> Result:
    """Run c3n-bot with a clean C3N_* environment (see the clean_env fixture)."""
    env = {"C3N_DATABASE_URL": database_url, "C3N_DEMO": "1" if demo else "0"}
    return CliRunner().invoke(app, args, env=env, input=stdin)


def row_counts(database_url: str) -> dict[str, int]:
    """Rows per demo table."""
    engine = make_engine(sqlalchemy_url(database_url))
    try:
        with make_session_factory(engine)() as db:
            return {t.__name__: db.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}
    finally:
        engine.dispose()


@pytest.mark.parametrize("args", list(COMMANDS), ids=lambda a: " ".join(a) or "c3n-bot")
def test_help_explains_each_command(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert COMMANDS[args].lower() in " ".join(result.output.lower().split())


def test_migrate_is_idempotent_and_demo_seeds_once(clean_env: Path) -> None:
    url = f"sqlite:///{clean_env / 'cli.db'}"

    first = invoke(["migrate"], url)
    again = invoke(["migrate"], url)
    seeded = invoke(["demo"], url)
    counts = row_counts(url)
    reseeded = invoke(["demo"], url)

    assert first.exit_code == 0 and "migrated empty ->" in first.stdout, first.output
    assert again.exit_code == 0 and "already at" in again.stdout, again.output
    assert seeded.exit_code == 0 and "admin@demo.c3n" in seeded.stdout, seeded.output
    assert "demo-password-1" in seeded.stdout and "/login" in seeded.stdout
    assert reseeded.exit_code == 0 and "already seeded" in reseeded.stdout
    assert row_counts(url) == counts
    assert counts["Patient"] == 20


def test_demo_refuses_outside_demo_mode(clean_env: Path, database_url: str) -> None:
    env = {"C3N_SECRET_KEY": "x" * 40}
    result = CliRunner().invoke(app, ["demo"], env={"C3N_DATABASE_URL": database_url, **env})

    assert result.exit_code == 1
    assert "C3N_DEMO" in result.stderr
    assert row_counts(database_url)["Network"] == 0


def test_commands_that_need_the_schema_refuse_an_unmigrated_database(clean_env: Path) -> None:
    result = invoke(["demo"], f"sqlite:///{clean_env / 'empty.db'}")

    assert result.exit_code == 1
    assert "c3n-bot migrate" in result.stderr


def test_user_and_api_key_create_give_a_working_token(clean_env: Path, database_url: str) -> None:
    assert invoke(["demo"], database_url).exit_code == 0

    user = invoke(
        ["user", "create", "--email", "Nurse@Example.org", "--name", "Nurse Kay"]
        + ["--role", "clinician", "--center", "riverside", "--center", "demo/pacific"],
        database_url,
        stdin="long-enough-pw\nlong-enough-pw\n",
    )
    key = invoke(
        [
            "api-key",
            "create",
            "--owner",
            "nurse@example.org",
            "--name",
            "ehr",
            "--expires-days",
            "30",
        ],
        database_url,
    )

    assert user.exit_code == 0, user.output
    assert "nurse@example.org" in user.stdout and "long-enough-pw" not in user.output
    assert key.exit_code == 0, key.output
    assert "not shown again" in key.stderr
    token = key.stdout.strip()
    engine = make_engine(sqlalchemy_url(database_url))
    try:
        with make_session_factory(engine)() as db:
            owner = staff.resolve_api_key(db, token=token, now=datetime.now(UTC))
            expires = db.scalar(select(ApiKey.expires_at))
            assert owner is not None and owner.email == "nurse@example.org"
            assert {c.slug for c in owner.centers} == {"riverside", "pacific"}
            assert expires is not None and (expires - datetime.now(UTC)).days in (29, 30)
    finally:
        engine.dispose()


def test_user_create_names_what_is_wrong(clean_env: Path, database_url: str) -> None:
    unknown = invoke(
        ["user", "create", "--email", "a@example.org", "--name", "A", "--role", "admin"]
        + ["--center", "nowhere", "--password", "long-enough-pw"],
        database_url,
    )
    short = invoke(
        ["user", "create", "--email", "b@example.org", "--name", "B", "--role", "admin"]
        + ["--password", "short"],
        database_url,
    )

    assert unknown.exit_code == 1 and "unknown center: nowhere" in unknown.stderr
    assert short.exit_code == 1 and "password" in short.stderr
    assert row_counts(database_url)["StaffUser"] == 0


def test_api_key_for_an_unknown_owner_fails(clean_env: Path, database_url: str) -> None:
    result = invoke(["api-key", "create", "--owner", "no@example.org", "--name", "x"], database_url)

    assert result.exit_code == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"C3N_DATABASE_URL": "mysql://db/c3n", "C3N_DEMO": "1"}, "C3N_DATABASE_URL"),
        ({"C3N_SECRET_KEY": "change-me"}, "C3N_SECRET_KEY"),
    ],
)
def test_bad_settings_exit_2_naming_the_variable(
    clean_env: Path, env: dict[str, str], variable: str
) -> None:
    result = CliRunner().invoke(app, ["migrate"], env=env)

    assert result.exit_code == 2
    assert variable in result.stderr
    assert not (clean_env / "c3n.db").exists()
