"""A real browser on the real app: sign in, acknowledge an alert in the inbox, open a chart.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, which ``make test`` installs with
apt-get when it is missing; Playwright's own browser builds are never downloaded). The app runs
under uvicorn on a free loopback port, in a thread, against the test's database. No Chromium is
a failure, not a skip: the run that needs it installs it. The screenshots go to
``tests/output/browser/`` (git-ignored); the test prints where.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import BrowserContext, expect, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.store.models import Alert
from c3n_bot.store.models.conversations import Severity
from c3n_bot.web.app import create_app
from tests.web.chart_data import Chart, read, seed_chart
from tests.web.conftest import PASSWORD, World

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parent.parent / "output" / "browser"
ALERT_TITLE = "PHQ-9 item 9 above 0: thoughts of death or self-harm"


@pytest.fixture
def base_url(settings: Settings, now: datetime) -> Iterator[str]:
    """The real app served by uvicorn on a free loopback port, at the test's fixed time."""
    app = create_app(settings, clock=lambda: now, register=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start", pytrace=False)
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a profile of its own."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            locale="en-US",
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def chart(db: Session, world: World, now: datetime) -> Chart:
    """Patient A's chart and an urgent alert on it, due in 30 minutes."""
    seeded = seed_chart(db, world, now)
    db.add(
        Alert(
            patient_id=seeded.patient_id,
            center_id=world.center_a.id,
            rule="phq9_item9",
            title=ALERT_TITLE,
            severity=Severity.URGENT,
            raised_at=now - timedelta(minutes=30),
            due_by=now + timedelta(minutes=30),
        )
    )
    db.commit()
    return seeded


def test_sign_in_acknowledge_an_alert_and_open_a_chart(
    base_url: str,
    browser: BrowserContext,
    chart: Chart,
    world: World,
    db: Session,
    backend: str,
) -> None:
    page = browser.new_page()
    page.goto(f"{base_url}/")
    expect(page).to_have_url(f"{base_url}/login?next=/")
    page.get_by_label("Email").fill(world.clinician_a)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    row = page.locator("tr.alert-row", has_text=ALERT_TITLE)
    expect(row).to_be_visible()
    row.get_by_placeholder("Note: what was done").fill("Called the family; safety plan in place.")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("No open alerts.")).to_be_visible()
    acknowledged = read(db, select(Alert))[0]
    assert acknowledged.acknowledged_at is not None
    assert acknowledged.note == "Called the family; safety plan in place."

    page.get_by_role("link", name="FamilyA1, GivenA1").first.click()
    expect(page.get_by_role("heading", name="GivenA1 FamilyA1")).to_be_visible()
    expect(page.locator("#trends svg.chart")).to_have_count(2)
    expect(page.locator("#reports").get_by_text("Several days").first).to_be_visible()
    page.get_by_role("link", name="Skip to content").focus()
    expect(page.get_by_role("link", name="Skip to content")).to_be_visible()

    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / f"patient-chart-{backend}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot of the patient chart: {shot}")
    assert shot.stat().st_size > 10_000
