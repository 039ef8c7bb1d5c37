"""The demo network through the real app: the clinician's inbox is not empty, urgent first."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from c3n_bot.config import Settings
from c3n_bot.service.demo import DEMO_PASSWORD, seed_demo
from c3n_bot.service.workers import build_services
from tests.web.conftest import login

URGENT = "PHQ-9 item 9 above 0: thoughts of death or self-harm"
REVIEW = "PUCAI 35 or more (moderate or severe activity)"
OTHER_CENTER = "GAD-7 total 15 or more (severe)"


def test_demo_clinician_sees_the_urgent_alert_first(
    client: TestClient, db: Session, settings: Settings, now: datetime
) -> None:
    seed_demo(db, services=build_services(settings), now=now)
    db.commit()
    login(client, "clinician@demo.c3n", DEMO_PASSWORD)

    page = client.get("/")

    assert page.status_code == 200
    rows = re.findall(r'<tr class="alert-row [^>]*>.*?</tr>', page.text, re.DOTALL)
    assert len(rows) == 2
    assert "sev-urgent" in rows[0] and URGENT in rows[0] and "Daniel" in rows[0]
    assert "sev-review" in rows[1] and REVIEW in rows[1]
    assert OTHER_CENTER not in page.text  # Pacific's alert is not this clinician's
    assert re.search(r"total \d+ \((minimal|mild|moderate|remission)\)", page.text)  # reports
