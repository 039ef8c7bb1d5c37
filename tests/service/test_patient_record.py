"""A patient's chart sections: reports in words, trends, and the message log."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from c3n_bot.service import message_log, patient_timeline
from c3n_bot.service.context import Services
from c3n_bot.store.base import Channel
from c3n_bot.store.models import InboundMessage, OutboxMessage
from c3n_bot.store.models.conversations import OutboxStatus, SubmissionStatus
from tests.builders import link, make_contact, make_identity, make_patient, make_submission


def test_reports_word_answers_and_show_only_the_newest_version(
    db: Session, services: Services, now: datetime
) -> None:
    patient = make_patient(db, now=now)
    first = make_submission(
        db,
        patient=patient,
        now=now - timedelta(days=1),
        answers={"q1": {"code": "LA6570-1", "value": 2, "display": "Más de la mitad"}},
        scores={"total": 12},
    )
    correction = make_submission(
        db,
        patient=patient,
        now=now - timedelta(days=1),
        scores={"total": 14},
        answers={"q1": {"code": "LA6571-9", "value": 3, "display": "x"}, "extra": "kept"},
    )
    correction.version, correction.replaces_id = 2, first.id
    db.flush()
    found = patient_timeline.reports(
        db, patient.id, flows=services.flows, translate=services.translator("es")
    )
    [entry] = found.timeline
    assert (entry.id, entry.version) == (correction.id, 2)
    assert [(a.question, a.answer) for a in entry.answers] == [
        ("Poco interés o placer en hacer las cosas", "Casi todos los días"),
        ("extra", "kept"),  # an item the flow no longer has keeps its stored words
    ]
    assert [(s.label, s.value, s.band) for s in entry.scores] == [
        ("PHQ-9 total score", 14, "moderado")
    ]
    assert [(t.flow.id, t.points) for t in found.trends] == [
        ("phq9", [(now - timedelta(days=1), 14.0)])
    ]


def test_trends_beyond_the_timeline_come_from_their_own_query(
    db: Session, services: Services, now: datetime
) -> None:
    patient = make_patient(db, now=now)
    for days, total in ((90, 20), (60, 10), (30, 5)):
        make_submission(
            db, patient=patient, now=now - timedelta(days=days), scores={"total": total}
        )
    make_submission(db, patient=patient, now=now, flow_id="gad7", scores={"total": 9})
    make_submission(
        db, patient=patient, now=now, status=SubmissionStatus.PARTIAL, scores={"total": 1}
    )
    translate = services.translator("en")
    whole = patient_timeline.reports(db, patient.id, flows=services.flows, translate=translate)
    cut = patient_timeline.reports(
        db, patient.id, flows=services.flows, translate=translate, limit=2
    )
    assert len(whole.timeline) == 5 and len(cut.timeline) == 2
    expected = [
        ("phq9", [20.0, 10.0, 5.0]),  # the partial report is not charted
        ("gad7", [9.0]),
    ]
    for found in (whole, cut):
        assert [(t.flow.id, [v for _, v in t.points]) for t in found.trends] == expected
    assert patient_timeline.trends(db, patient.id, flows=services.flows) == whole.trends


def test_the_message_log_reads_bodies_only_when_allowed(db: Session, now: datetime) -> None:
    contact = make_contact(db, now=now)
    link(db, contact=contact, patient=make_patient(db, now=now))
    identity = make_identity(db, contact=contact, now=now, channel=Channel.SMS, address="+1555")
    for minutes, body in ((30, "first"), (10, "third")):
        db.add(
            InboundMessage(
                channel=Channel.SMS,
                provider_message_id=body,
                identity_id=identity.id,
                body=body,
                received_at=now - timedelta(minutes=minutes),
            )
        )
    db.add(
        OutboxMessage(
            channel=Channel.SMS,
            address="+1555",
            identity_id=identity.id,
            contact_id=contact.id,
            kind="reply",
            body="second",
            status=OutboxStatus.SENT,
            next_attempt_at=now,
            created_at=now - timedelta(minutes=20),
        )
    )
    db.flush()
    shown = message_log.message_log(db, [identity.id], with_bodies=True)
    assert [(m.direction, m.body, m.status) for m in shown] == [
        ("in", "third", None),
        ("out", "second", "sent"),
        ("in", "first", None),
    ]
    assert shown[0].channel == Channel.SMS and shown[0].at == now - timedelta(minutes=10)
    hidden = message_log.message_log(db, [identity.id], with_bodies=False, limit=2)
    assert [(m.direction, m.body, m.kind) for m in hidden] == [
        ("in", None, None),
        ("out", None, "reply"),
    ]
    assert message_log.message_log(db, [], with_bodies=True) == []
