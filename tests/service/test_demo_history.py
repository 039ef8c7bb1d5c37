"""The demo's past: weeks of scored reports, the alerts they raised, a co-design session."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3n_bot.engine.scoring import compute_scores
from c3n_bot.service import qi, staff, timing
from c3n_bot.service.context import Services
from c3n_bot.service.demo import ORGANISER, seed_demo
from c3n_bot.store.base import Condition, Purpose
from c3n_bot.store.models import (
    Activity,
    Alert,
    Center,
    Consent,
    ConversationSession,
    DueWork,
    OutboxMessage,
    Patient,
    Rsvp,
    StaffUser,
    Submission,
)
from c3n_bot.store.models.community import RsvpResponse
from c3n_bot.store.models.conversations import (
    OutboxStatus,
    SessionStatus,
    Severity,
    SubmissionStatus,
)


@pytest.fixture
def seeded(db: Session, services: Services, now: datetime) -> None:
    """The demo network, seeded at the fixed time and committed."""
    seed_demo(db, services=services, now=now)
    db.commit()


def _completed(db: Session) -> list[Submission]:
    query = select(Submission).where(Submission.status == SubmissionStatus.COMPLETED)
    return list(db.scalars(query))


@pytest.mark.usefixtures("seeded")
def test_every_patient_with_an_instrument_reported_over_several_weeks(
    db: Session, now: datetime
) -> None:
    patients = {p.id: p for p in db.scalars(select(Patient))}
    by_patient: dict[Patient, list[Submission]] = defaultdict(list)
    for submission in _completed(db):
        by_patient[patients[submission.patient_id]].append(submission)
    # PUCAI for IBD; PHQ-9 and GAD-7 from 12, as the default schedules ask them.
    expected = {
        p: ({"pucai"} if p.condition == Condition.IBD else set())
        | ({"phq9", "gad7"} if timing.age_on(p.birth_date, now.date()) >= 12 else set())
        for p in patients.values()
    }

    assert {p for p, flows in expected.items() if flows} == set(by_patient)
    assert len(by_patient) >= 12
    for patient, reports in by_patient.items():
        times = sorted(report.authored_at for report in reports)
        weeks = {(now - at).days // 7 for at in times}
        assert {report.flow_id for report in reports} == expected[patient], patient.given_name
        assert times[-1] - times[0] >= timedelta(weeks=5), patient.given_name
        assert len(weeks) >= 4 and max(weeks) <= 8, patient.given_name
        assert times[-1] <= now


@pytest.mark.usefixtures("seeded")
def test_reports_are_scored_as_the_bot_scores_them_and_vary(
    db: Session, services: Services
) -> None:
    reports = _completed(db)
    totals: dict[str, set[int]] = defaultdict(set)
    bands: dict[str, set[str]] = defaultdict(set)

    for report in reports:
        flow = services.flows.get(report.flow_id)
        assert (report.scores, report.bands) == compute_scores(flow, report.answers, {})
        assert all({"code", "value", "display"} <= set(a) for a in report.answers.values())
        totals[report.flow_id].add(report.scores["total"])
        bands[report.flow_id].add(report.bands["total"])
    assert len(reports) >= 120
    assert {flow: len(found) >= 6 for flow, found in totals.items()} == dict.fromkeys(
        ("phq9", "gad7", "pucai"), True
    )
    assert {"remission", "mild", "moderate"} <= bands["pucai"]
    assert {"minimal", "mild"} <= bands["phq9"]


@pytest.mark.usefixtures("seeded")
def test_some_prompts_went_unanswered_or_half_answered(db: Session) -> None:
    prompts = list(db.scalars(select(DueWork).where(DueWork.kind == "prompt")))
    status = {s.id: s.status for s in db.scalars(select(ConversationSession))}
    partial = db.scalars(select(Submission).where(Submission.status == SubmissionStatus.PARTIAL))
    ended = [status.get(p.session_id) if p.session_id else None for p in prompts]

    assert None not in ended and len(prompts) >= 150
    assert 0 < ended.count(SessionStatus.EXPIRED) < len(prompts) // 5
    assert len(partial.all()) >= 1


@pytest.mark.usefixtures("seeded")
def test_one_urgent_alert_is_open_raised_by_the_phq9_item_9_rule(
    db: Session, now: datetime
) -> None:
    open_alerts = list(db.scalars(select(Alert).where(Alert.acknowledged_at.is_(None))))
    urgent = [a for a in open_alerts if a.severity == Severity.URGENT]
    review = [a for a in open_alerts if a.severity == Severity.REVIEW]
    slugs = {c.id: c.slug for c in db.scalars(select(Center))}

    assert len(urgent) == 1
    (alert,) = urgent
    submission = db.get(Submission, alert.submission_id)
    assert submission is not None and submission.answers["q9"]["value"] > 0
    assert alert.rule == "phq9_item9" and slugs[alert.center_id] == "riverside"
    assert now - timedelta(hours=1) < alert.raised_at < now < alert.due_by
    assert alert.escalated_at is None
    # The crisis resources went to the teen when he answered; nothing waits to be sent.
    safety = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "safety")).one()
    assert safety.session_id == submission.session_id and "988" in safety.body
    assert {row.status for row in db.scalars(select(OutboxMessage))} == {OutboxStatus.SENT}
    assert sorted(slugs[a.center_id] for a in review) == ["pacific", "riverside"]


@pytest.mark.usefixtures("seeded")
def test_older_alerts_were_acknowledged_by_the_centers_clinician(
    db: Session, now: datetime
) -> None:
    done = list(db.scalars(select(Alert).where(Alert.acknowledged_at.is_not(None))))

    assert len(done) >= 2
    for alert in done:
        clinician = db.get(StaffUser, alert.acknowledged_by)
        assert clinician is not None and clinician.role.value == "clinician"
        assert alert.center_id in staff.center_ids(clinician)
        assert alert.acknowledged_at is not None and alert.note
        assert alert.raised_at < alert.acknowledged_at <= now
        assert alert.submission_id is not None


@pytest.mark.usefixtures("seeded")
def test_qi_run_charts_have_weekly_points(db: Session, now: datetime) -> None:
    for center in db.scalars(select(Center)):
        weeks = qi.complete_weeks(now, timing.load_zone(center.timezone), count=8)
        rate = qi.response_rate(db, center_id=center.id, weeks=weeks)
        remission = qi.remission(db, center_id=center.id, weeks=weeks)

        assert sum(d > 0 for d in rate.denominators) >= 7, center.slug
        assert 0 < sum(rate.numerators) < sum(rate.denominators)
        assert sum(d > 0 for d in remission.denominators) >= 7, center.slug


@pytest.mark.usefixtures("seeded")
def test_a_codesign_session_is_coming_up_with_answers(db: Session, now: datetime) -> None:
    activity = db.scalars(select(Activity)).one()
    rsvps = list(db.scalars(select(Rsvp)))
    organiser = db.scalars(select(StaffUser).where(StaffUser.email == ORGANISER)).one()
    declined = set(
        db.scalars(
            select(Consent.contact_id).where(
                Consent.purpose == Purpose.CODESIGN_INVITATIONS, Consent.granted.is_(False)
            )
        )
    )

    assert activity.starts_at > now + timedelta(days=7)
    assert activity.created_by == organiser.id and activity.center_id is None
    assert len(rsvps) >= 4
    assert sum(r.response == RsvpResponse.YES and not r.waitlisted for r in rsvps) >= 3
    assert all(activity.created_at < r.responded_at < now for r in rsvps)
    assert not {r.contact_id for r in rsvps} & declined
