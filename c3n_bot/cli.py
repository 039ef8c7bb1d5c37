"""The c3n-bot command line: run the processes, migrate, seed the demo, manage staff access."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic_settings import BaseSettings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from c3n_bot.channels.console import run_console
from c3n_bot.config import SUPPORTED_LANGUAGES, Settings, SettingsError, load_settings
from c3n_bot.engine.definitions import Flow, FlowKind
from c3n_bot.engine.events import Context, Subject
from c3n_bot.i18n import shipped_catalogs
from c3n_bot.logs import configure_logging
from c3n_bot.registry import export
from c3n_bot.registry.export import ExportFormat
from c3n_bot.registry.questionnaire import (
    QuestionnaireExportError,
    QuestionnaireImportError,
    questionnaire_json,
)
from c3n_bot.registry.questionnaire_export import questionnaire_from_flow
from c3n_bot.registry.questionnaire_import import flow_from_questionnaire
from c3n_bot.service import demo, enrollment, staff
from c3n_bot.service.errors import ServiceError
from c3n_bot.service.flows import load_dir
from c3n_bot.store import migrate as migrations
from c3n_bot.store.base import Role
from c3n_bot.store.db import make_engine, make_session_factory, snapshot_session

if TYPE_CHECKING:
    from fastapi import FastAPI

# Locals in a traceback may hold passwords, tokens or patient data: never print them.
app = typer.Typer(
    help="c3n-bot: the messaging assistant of a collaborative chronic care network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
user_app = typer.Typer(help="Manage staff users (clinicians, organisers, admins).")
api_key_app = typer.Typer(help="Manage bearer API keys for /api/v1.")
app.add_typer(user_app, name="user", no_args_is_help=True)
flows_app = typer.Typer(help="Check flow files; convert them to and from FHIR R4 Questionnaires.")
app.add_typer(api_key_app, name="api-key", no_args_is_help=True)
app.add_typer(flows_app, name="flows", no_args_is_help=True)
appointments_app = typer.Typer(help="Import clinic visits; their reminders follow them.")
app.add_typer(appointments_app, name="appointments", no_args_is_help=True)
schedule_app = typer.Typer(help="Preview what families will be sent; apply default schedules.")
app.add_typer(schedule_app, name="schedule", no_args_is_help=True)

SETTINGS_ERROR_EXIT = 2
Host = Annotated[
    str, typer.Option(help="Interface to listen on; 0.0.0.0 accepts connections from outside.")
]
Port = Annotated[int, typer.Option(envvar="PORT", help="Port to listen on ($PORT, else 8000).")]
DEFAULT_FHIR_DIR = Path("fhir")
# --since: a UTC date, or a UTC date and time.
SINCE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run web, clock and dispatcher in one process (the embedded default for small sites)."""
    import uvicorn

    from c3n_bot.web.app import create_app, prepare_to_serve

    settings = _settings()
    application = create_app(settings, embedded_workers=True)
    prepare_to_serve()
    _announce(settings, host, port)
    uvicorn.run(application, host=host, port=port, log_config=None)


@app.command()
def web(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Web processes to run.")] = 1,
) -> None:
    """Run the web process only: dashboard, API and webhooks (run worker and clock apart)."""
    import uvicorn

    from c3n_bot.web.app import create_app, prepare_to_serve

    settings = _settings()
    if workers == 1:
        application = create_app(settings)
        prepare_to_serve()
        uvicorn.run(application, host=host, port=port, log_config=None)
    else:
        # Each process builds its own app (and settings) from the factory.
        target = f"{__name__}:{web_app.__name__}"
        uvicorn.run(target, factory=True, workers=workers, host=host, port=port, log_config=None)


def web_app() -> FastAPI:
    """The web app for one of several uvicorn processes; reads settings from the environment."""
    from c3n_bot.web.app import create_app, prepare_to_serve

    settings = load_settings()
    configure_logging(settings.log_level)
    application = create_app(settings)
    prepare_to_serve()
    return application


@app.command()
def worker() -> None:
    """Run the dispatcher: send queued outbox messages and push submissions to FHIR sinks."""
    from c3n_bot.channels.registry import build_senders
    from c3n_bot.registry.sink_pusher import build_pushers
    from c3n_bot.service.workers import run_worker

    settings = _settings()
    run_worker(settings, build_senders(settings), extra=build_pushers)


@app.command()
def clock() -> None:
    """Run the clock: due prompts, reminders, expiries, and Telegram polling when on."""
    from c3n_bot.channels.registry import build_receivers, register_webhooks
    from c3n_bot.service.workers import run_clock

    settings = _settings()
    register_webhooks(settings)
    run_clock(settings, build_receivers)


@app.command()
def migrate() -> None:
    """Migrate the database schema to the newest revision; running it again changes nothing."""
    settings = _settings()
    with _engine(settings) as engine:
        before = migrations.current_revision(engine)
        migrations.upgrade(engine)
        after = migrations.current_revision(engine)
    where = _redacted_url(settings)
    if before == after:
        typer.echo(f"{where}: already at {after}")
    else:
        typer.echo(f"{where}: migrated {before or 'empty'} -> {after}")


@app.command("demo")
def seed_demo() -> None:
    """Seed the demo network (two centers, staff logins, 20 fictional patients); idempotent."""
    settings = _settings()
    if not settings.demo:
        # The demo logins have published passwords: never add them to a real deployment.
        typer.echo("refusing to seed demo accounts outside demo mode (set C3N_DEMO=1)", err=True)
        raise typer.Exit(1)
    from c3n_bot.service.workers import build_services

    services = build_services(settings)
    with _session(settings) as db, _quiet("c3n_bot.service"):
        seed = demo.seed_demo(db, services=services, now=_now())
    state = "seeded" if seed.created else "already seeded"
    typer.echo(
        f"Demo network {state}: {seed.centers} centers, {seed.staff} staff, "
        f"{seed.patients} patients, {seed.contacts} contacts."
    )
    _print_logins(f"{settings.public_url}/login", seed)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    name: Annotated[str, typer.Option(help="Name shown in the dashboard.")],
    role: Annotated[Role, typer.Option(help="What the user may do.")],
    center: Annotated[
        list[str] | None,
        typer.Option(help="Center slug, or NETWORK/CENTER; repeat for several centers."),
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Password; prompted for (hidden) when omitted.")
    ] = None,
) -> None:
    """Create a staff user scoped to centers; the password is asked for unless given."""
    settings = _settings()
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session(settings) as db:
        center_ids = [staff.find_center_id(db, ref) for ref in center or []]
        user = staff.create_user(
            db,
            email=email,
            name=name,
            password=password,
            role=role,
            center_ids=center_ids,
            now=_now(),
        )
    typer.echo(f"Created {user.role.value} {user.email} (centers: {len(center_ids)}).")


@api_key_app.command("create")
def api_key_create(
    owner: Annotated[str, typer.Option(help="Email of the staff user the key acts as.")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the integration's name.")],
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Days until the key expires; never when omitted.")
    ] = None,
) -> None:
    """Create an API key acting as OWNER; the token is printed once, to stdout."""
    settings = _settings()
    now = _now()
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    with _session(settings) as db:
        new = staff.create_api_key(db, owner_email=owner, name=name, now=now, expires_at=expires_at)
    # The warning goes to stderr so `TOKEN=$(c3n-bot api-key create ...)` captures the token only.
    typer.echo("Store this token now: it is not shown again.", err=True)
    typer.echo(new.token)


@app.command()
def enroll(
    patient: Annotated[uuid.UUID, typer.Option(help="The patient's id.")],
    contact: Annotated[uuid.UUID, typer.Option(help="The id of the contact to invite.")],
) -> None:
    """Create a single-use invitation: a Telegram deep link and an SMS join code."""
    from c3n_bot.web.api.enrollments import bot_username_lookup

    settings = _settings()
    now = _now()
    with _session(settings) as db:
        centers = staff.all_center_ids(db)
        invitation = enrollment.create_invitation(
            db,
            patient_id=patient,
            contact_id=contact,
            allowed_centers=centers,
            now=now,
            bot_username=bot_username_lookup(settings),
        )
        row = invitation.enrollment
        typer.echo(f"Telegram: {invitation.telegram_link or f'/start {row.token}'}")
        typer.echo(f"SMS:      JOIN {row.sms_code}")
        typer.echo(f"Expires:  {row.expires_at:%Y-%m-%d %H:%M} UTC (single use)")


@appointments_app.command("import")
def appointments_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="CSV: patient_external_id,center,starts_at_local,location,external_id,status",
        ),
    ],
) -> None:
    """Create, move or cancel visits from a CSV file; one line per row, exit 1 if a row failed."""
    from c3n_bot.service import audit, visit_import

    settings = _settings()
    with _session(settings) as db:
        results = visit_import.import_csv(
            db,
            data=file.read_bytes(),
            allowed_centers=staff.all_center_ids(db),
            now=_now(),
            actor=audit.Actor(type="cli", id=None),
        )
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
        shown = result.error if result.status == "error" else result.appointment_id
        typer.echo(f"row {result.row}: {result.status}" + (f": {shown}" if shown else ""))
    typer.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no rows")
    if counts.get("error"):
        raise typer.Exit(1)


@schedule_app.command("preview")
def schedule_preview(
    patient: Annotated[uuid.UUID, typer.Option(help="The patient's id.")],
    days: Annotated[int, typer.Option(min=1, max=90, help="How many days ahead.")] = 14,
) -> None:
    """Print what would be sent to a patient's family, when (local time), and every reason."""
    from c3n_bot.service import preview
    from c3n_bot.service.errors import NotFound

    settings = _settings()
    now = _now()
    with _session(settings) as db:
        try:
            lines = preview.preview(
                db, patient_id=patient, days=days, now=now, allowed_centers=staff.all_center_ids(db)
            )
        except NotFound:
            typer.echo(f"no patient with id {patient}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"Patient {patient}: the next {days} days from {now:%Y-%m-%d %H:%M} UTC")
    for row in preview.table(lines):
        typer.echo(row)


@schedule_app.command("apply-defaults")
def schedule_apply_defaults(
    center: Annotated[
        str | None,
        typer.Option(help="Center slug, or NETWORK/CENTER; every center when omitted."),
    ] = None,
) -> None:
    """Add each center's default templates and give every patient theirs; idempotent."""
    from sqlalchemy import select

    from c3n_bot.service import schedules
    from c3n_bot.store.models import Patient

    settings = _settings()
    now = _now()
    templates = created = seen = 0
    with _session(settings) as db:
        ids = [staff.find_center_id(db, center)] if center else sorted(staff.all_center_ids(db))
        for center_id in ids:
            templates += schedules.ensure_center_defaults(db, center_id=center_id, now=now)
            query = select(Patient.id).where(Patient.center_id == center_id).order_by(Patient.id)
            patient_ids = list(db.scalars(query))
            # A few hundred patients at a time: flushed rows leave memory as the loop goes on.
            for start in range(0, len(patient_ids), 500):
                chunk = patient_ids[start : start + 500]
                for row in db.scalars(select(Patient).where(Patient.id.in_(chunk))).all():
                    created += len(schedules.apply_templates(db, patient=row, now=now))
                    seen += 1
    typer.echo(
        f"{len(ids)} center(s): {templates} default template(s) added, "
        f"{created} schedule(s) created for {seen} patient(s)."
    )


@app.command("export")
def export_submissions(
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format", help="fhir-ndjson: a FHIR R4 resource per line; csv: a row per submission."
        ),
    ],
    since: Annotated[
        datetime,
        typer.Option(formats=SINCE_FORMATS, help="Submissions authored from this UTC date/time."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="The file to write.")
    ],
    center: Annotated[
        list[str] | None,
        typer.Option(help="Center id, slug or NETWORK/CENTER; repeat for several (default all)."),
    ] = None,
    flow: Annotated[
        list[str] | None,
        typer.Option(help="Questionnaire flow id; repeat for several (default all)."),
    ] = None,
) -> None:
    """Export submissions for the registry, streamed: FHIR R4 NDJSON or CSV (see README)."""
    settings = _settings()
    catalog = _checked_flows(settings.flows_path())
    with _snapshot(settings) as db:
        job = export.plan(
            db,
            fmt=fmt,
            since=since.replace(tzinfo=UTC),
            catalog=catalog,
            centers=center or [],
            flow_ids=flow or [],
        )
        with typer.progressbar(length=job.total, label="Exporting", file=sys.stderr) as bar:
            try:
                result = export.run(db, job, output, progress=bar.update)
            except OSError as exc:
                typer.echo(f"cannot write {output}: {exc.strerror or exc}", err=True)
                raise typer.Exit(1) from None
    typer.echo(f"{result.submissions} submissions, {result.lines} lines: {output}")
    if result.skipped:
        typer.echo(f"skipped {result.skipped} submissions of flows not deployed", err=True)


@app.command()
def chat(
    flow_id: Annotated[str, typer.Argument(metavar="FLOW", help="Flow id, e.g. phq9.")],
    lang: Annotated[str, typer.Option(help="Language to talk in (en or es).")] = "en",
    child: Annotated[
        list[str] | None,
        typer.Option(help="Talk as a parent for this child (repeat for several children)."),
    ] = None,
) -> None:
    """Run a flow in the terminal as a text channel would (console channel; nothing is saved)."""
    flows, issues = load_dir(_flows_dir())
    by_id = {flow.id: flow for flow in flows}
    if flow_id not in by_id:
        known = ", ".join(sorted(by_id)) or "none"
        typer.echo(f"unknown flow {flow_id!r} (known: {known})", err=True)
        raise typer.Exit(2)
    if lang not in SUPPORTED_LANGUAGES:
        typer.echo(f"unsupported language {lang!r}", err=True)
        raise typer.Exit(2)
    subjects = tuple(Subject(f"child-{n}", name) for n, name in enumerate(child or [], 1))
    ctx = Context(
        lang=lang,
        translate=shipped_catalogs().translator(lang),
        subjects=subjects,
        proxy=bool(subjects),
        today=_now().date(),
        values={
            "center": "Demo Center",
            "program": "c3n-bot",
            "visit_time": "Monday 9:00",
            "activity_title": "Family advisory session",
            "activity_time": "Tuesday 18:00",
            "activity_place": "Online",
            "child": subjects[0].name if subjects else "",
        },
    )
    run_console(by_id[flow_id], ctx, read=_read_line, write=typer.echo, clock=_now)


def _read_line() -> str | None:
    try:
        return input("> ")
    except EOFError:
        return None


@flows_app.command("check")
def flows_check() -> None:
    """Validate every flow file; print each problem as file:line: field: message."""
    directory = _flows_dir()
    flows, issues = load_dir(directory)
    for issue in issues:
        typer.echo(str(issue))
    if issues:
        typer.echo(f"{len(issues)} problem(s) in the flows of {directory}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(flows)} flows ok in {directory}")


@flows_app.command("export-fhir")
def flows_export_fhir(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the <id>.json files.")
    ] = DEFAULT_FHIR_DIR,
) -> None:
    """Write an R4 Questionnaire JSON file for each questionnaire flow."""
    flows = _checked_flows(_flows_dir())
    questionnaires = [flow for flow in flows if flow.kind == FlowKind.QUESTIONNAIRE]
    try:
        resources = [questionnaire_from_flow(flow) for flow in questionnaires]
    except QuestionnaireExportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    output.mkdir(parents=True, exist_ok=True)
    for flow, resource in zip(questionnaires, resources, strict=True):
        path = output / f"{flow.id}.json"
        path.write_text(questionnaire_json(resource), encoding="utf-8")
        typer.echo(str(path))


@flows_app.command("import-fhir")
def flows_import_fhir(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="An R4 Questionnaire JSON file.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the flow here, not to stdout.")
    ] = None,
) -> None:
    """Turn an R4 Questionnaire JSON file into flow YAML (printed unless -o is given)."""
    try:
        resource = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"{file}: cannot read JSON: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        if not isinstance(resource, dict):
            raise QuestionnaireImportError("not a FHIR Questionnaire (a JSON object)")
        text = flow_from_questionnaire(resource)
    except QuestionnaireImportError as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(1) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def _checked_flows(directory: Path) -> list[Flow]:
    """Every flow of a folder; each problem printed and exit 1 when there is any."""
    flows, issues = load_dir(directory)
    for issue in issues:
        typer.echo(str(issue), err=True)
    if issues:
        raise typer.Exit(1)
    return flows


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(SETTINGS_ERROR_EXIT) from None
    configure_logging(settings.log_level)
    return settings


class _FlowsLocation(BaseSettings):
    """C3N_FLOWS_DIR alone, read as Settings reads it (environment, then .env)."""

    model_config = Settings.model_config

    flows_dir: Path | None = None


def _flows_dir() -> Path:
    # The flows commands are authoring tools: they need no secret, database or channel, so
    # they must not fail where load_settings() rightly refuses to start a server (no
    # C3N_SECRET_KEY outside demo mode). Read only the flows location, and let Settings
    # keep the one rule for where flows live (C3N_FLOWS_DIR, else the shipped ones).
    return Settings.model_construct(flows_dir=_FlowsLocation().flows_dir).flows_path()


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        yield engine
    except SQLAlchemyError as exc:
        # The driver's first line only: later lines may quote the values of a row.
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"database error at {_redacted_url(settings)}: {reason}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One committed transaction on a database that is migrated to head."""
    with _migrated_engine(settings) as engine, _service_errors():
        with make_session_factory(engine)() as db, db.begin():
            yield db


@contextmanager
def _snapshot(settings: Settings) -> Iterator[Session]:
    """A read-only snapshot of a migrated database, which never blocks the bot's writes."""
    with _migrated_engine(settings) as engine, _service_errors(), snapshot_session(engine) as db:
        yield db


@contextmanager
def _migrated_engine(settings: Settings) -> Iterator[Engine]:
    # Alembic announces its dialect at INFO on every revision check; only `migrate` needs that.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with _engine(settings) as engine:
        if migrations.current_revision(engine) != migrations.head_revision():
            typer.echo("the database is not migrated: run `c3n-bot migrate` first", err=True)
            raise typer.Exit(1)
        yield engine


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    # The demo's eight weeks of fictional reports would log one line each.
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def _service_errors() -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _announce(settings: Settings, host: str, port: int) -> None:
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    url = f"http://{shown}:{port}/login"
    seed = None
    if settings.demo:
        try:
            with _engine(settings) as engine, make_session_factory(engine)() as db:
                seed = demo.find_demo(db)
        except (typer.Exit, SQLAlchemyError):
            seed = None  # not migrated yet: the server still starts and /healthz tells
    if seed is not None:
        _print_logins(url, seed)
    else:
        typer.echo(f"Sign in at {url}")


def _print_logins(url: str, seed: demo.DemoSeed) -> None:
    typer.echo(f"Sign in at {url} with:")
    for login in seed.logins:
        centers = ", ".join(login.centers)
        typer.echo(f"  {login.email:<22} {login.password}   {login.role.value} ({centers})")


def _redacted_url(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _now() -> datetime:
    return datetime.now(UTC)
