"""Invitations: tokens and join codes, redeeming them, and enrollment by the first message."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3n_bot.i18n import shipped_catalogs
from c3n_bot.service import enrollment, texts
from c3n_bot.service.context import Services
from c3n_bot.service.conversations import Inbound, Outcome, handle_inbound
from c3n_bot.service.enrollment import (
    CODE_ALPHABET,
    CODE_LENGTH,
    INVITATION_TTL,
    Redemption,
    create_invitation,
    redeem,
    requested_code,
)
from c3n_bot.service.errors import InvalidInput, NotFound
from c3n_bot.store.base import Channel
from c3n_bot.store.models import (
    AuditEvent,
    ChannelIdentity,
    Contact,
    ConversationSession,
    Enrollment,
    InboundMessage,
    OutboxMessage,
    Patient,
)
from tests.builders import link, make_center, make_contact, make_identity, make_patient
from tests.service.conftest import CENTER_NAME, NETWORK_NAME, Family, new_message_id, outbox

TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UNKNOWN_PHONE = "+16175550999"
UNKNOWN_CHAT = "880001"


def _invite(db: Session, patient: Patient, contact: Contact, now: datetime) -> Enrollment:
    invitation = create_invitation(
        db,
        patient_id=patient.id,
        contact_id=contact.id,
        allowed_centers={patient.center_id},
        now=now,
    )
    return invitation.enrollment


def _invited(db: Session, now: datetime) -> tuple[Patient, Contact, Enrollment]:
    patient = make_patient(db, now=now)
    contact = make_contact(db, now=now)
    link(db, contact=contact, patient=patient)
    return patient, contact, _invite(db, patient, contact, now)


# -- creating invitations ---------------------------------------------------------------------


def test_tokens_fit_a_telegram_deep_link_and_are_unique(db: Session, now: datetime) -> None:
    patient = make_patient(db, now=now)
    contact = make_contact(db, now=now)
    link(db, contact=contact, patient=patient)

    rows = [_invite(db, patient, contact, now) for _ in range(60)]

    assert all(TOKEN.fullmatch(row.token) for row in rows)
    assert len({row.token for row in rows}) == len(rows)
    assert len({row.sms_code for row in rows}) == len(rows)
    assert all(len(row.token) >= 22 for row in rows)  # not guessable
    db.commit()


def test_sms_codes_use_the_unambiguous_alphabet(db: Session, now: datetime) -> None:
    patient = make_patient(db, now=now)
    contact = make_contact(db, now=now)
    link(db, contact=contact, patient=patient)

    codes = [_invite(db, patient, contact, now).sms_code for _ in range(60)]

    assert not set(CODE_ALPHABET) & set("01ILO")
    assert all(len(code) == CODE_LENGTH for code in codes)
    assert set("".join(codes)) <= set(CODE_ALPHABET)
    db.rollback()


def test_an_invitation_expires_after_its_ttl_and_carries_a_link(db: Session, now: datetime) -> None:
    patient, contact, _ = _invited(db, now)
    invitation = create_invitation(
        db,
        patient_id=patient.id,
        contact_id=contact.id,
        allowed_centers={patient.center_id},
        now=now,
        bot_username="c3n_demo_bot",
    )
    row = invitation.enrollment

    assert INVITATION_TTL == timedelta(days=14)
    assert (row.created_at, row.expires_at, row.used_at) == (now, now + INVITATION_TTL, None)
    assert invitation.telegram_link == f"https://t.me/c3n_demo_bot?start={row.token}"
    without = create_invitation(
        db,
        patient_id=patient.id,
        contact_id=contact.id,
        allowed_centers={patient.center_id},
        now=now,
    )
    assert without.telegram_link is None
    db.rollback()


def test_an_invitation_needs_a_linked_contact_in_an_allowed_center(
    db: Session, now: datetime
) -> None:
    patient, contact, _ = _invited(db, now)
    stranger = make_contact(db, now=now)
    elsewhere = make_center(db, now=now)

    with pytest.raises(NotFound):
        _invite(db, patient, stranger, now)
    with pytest.raises(NotFound):
        create_invitation(
            db,
            patient_id=patient.id,
            contact_id=contact.id,
            allowed_centers={elsewhere.id},
            now=now,
        )
    db.rollback()


# -- reading a code from a message --------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "text", "code"),
    [
        (Channel.TELEGRAM, "/start AbC_12-xyz", "AbC_12-xyz"),
        (Channel.TELEGRAM, "/start@c3n_demo_bot AbC_12-xyz", "AbC_12-xyz"),
        (Channel.TELEGRAM, "  /start   tok3n  ", "tok3n"),
        (Channel.TELEGRAM, "/start " + "a" * 64, "a" * 64),
        (Channel.SMS, "JOIN abcd-2345", "ABCD2345"),
        (Channel.SMS, "join ABCD2345", "ABCD2345"),
        (Channel.SMS, "Join Abcd-2345 ", "ABCD2345"),
        (Channel.SMS, "unirse HJKM2345", "HJKM2345"),
        (Channel.SMS, "UNIRSE hjkm-2345", "HJKM2345"),
    ],
)
def test_requested_code_reads_start_and_join(channel: Channel, text: str, code: str) -> None:
    assert requested_code(channel, text) == code


@pytest.mark.parametrize(
    ("channel", "text"),
    [
        (Channel.TELEGRAM, "/start"),
        (Channel.TELEGRAM, "/start a b"),
        (Channel.TELEGRAM, "/start " + "a" * 65),
        (Channel.TELEGRAM, "/start tok3n!"),
        (Channel.TELEGRAM, "start tok3n"),
        (Channel.TELEGRAM, "/stop"),
        (Channel.TELEGRAM, "JOIN ABCD2345"),
        (Channel.SMS, "/start tok3n"),
        (Channel.SMS, "JOIN"),
        (Channel.SMS, "JOIN ABC"),
        (Channel.SMS, "JOIN ABCD 2345"),
        (Channel.SMS, "please JOIN ABCD2345"),
        (Channel.SMS, "JOINABCD2345"),
        (Channel.SMS, "STOP"),
        (Channel.SMS, "3"),
        (Channel.SMS, ""),
    ],
)
def test_requested_code_rejects_other_texts(channel: Channel, text: str) -> None:
    assert requested_code(channel, text) is None


def test_validate_code_normalises_what_people_type() -> None:
    assert enrollment.validate_code("abcd-2345") == "ABCD2345"
    with pytest.raises(InvalidInput):
        enrollment.validate_code("ABCD-0OIL")


# -- redeeming ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "address"), [(Channel.TELEGRAM, UNKNOWN_CHAT), (Channel.SMS, UNKNOWN_PHONE)]
)
def test_redeem_links_the_address_and_uses_the_invitation(
    db: Session, now: datetime, channel: Channel, address: str
) -> None:
    patient, contact, invitation = _invited(db, now)
    code = invitation.token if channel == Channel.TELEGRAM else invitation.sms_code
    later = now + timedelta(days=3)

    result, identity = redeem(db, channel=channel, address=address, code=code, now=later)

    assert result == Redemption.ENROLLED
    assert identity is not None
    assert (identity.contact_id, identity.channel, identity.address) == (
        contact.id,
        channel,
        address,
    )
    assert (invitation.used_at, invitation.used_by_identity_id) == (later, identity.id)
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "enrollment.redeem"))
    assert audit is not None and audit.patient_id == patient.id
    db.commit()


def test_a_second_use_of_an_invitation_is_refused(db: Session, now: datetime) -> None:
    _, _, invitation = _invited(db, now)
    redeem(db, channel=Channel.SMS, address=UNKNOWN_PHONE, code=invitation.sms_code, now=now)

    again = redeem(
        db, channel=Channel.SMS, address="+16175550998", code=invitation.sms_code, now=now
    )
    telegram = redeem(db, channel=Channel.TELEGRAM, address="1", code=invitation.token, now=now)

    assert again == (Redemption.USED, None)
    assert telegram == (Redemption.USED, None)
    count = db.scalar(select(func.count()).select_from(ChannelIdentity))
    assert count == 1
    db.rollback()


def test_an_expired_invitation_is_refused(db: Session, now: datetime) -> None:
    _, _, invitation = _invited(db, now)

    result = redeem(
        db,
        channel=Channel.SMS,
        address=UNKNOWN_PHONE,
        code=invitation.sms_code,
        now=now + INVITATION_TTL,
    )

    assert result == (Redemption.EXPIRED, None)
    assert invitation.used_at is None
    db.rollback()


def test_an_unknown_code_is_refused(db: Session, now: datetime) -> None:
    _invited(db, now)

    assert redeem(db, channel=Channel.SMS, address=UNKNOWN_PHONE, code="ZZZZ2222", now=now) == (
        Redemption.UNKNOWN,
        None,
    )
    assert redeem(db, channel=Channel.TELEGRAM, address="1", code="no-such-token", now=now) == (
        Redemption.UNKNOWN,
        None,
    )
    db.rollback()


def test_an_address_linked_to_another_contact_is_refused(db: Session, now: datetime) -> None:
    _, _, invitation = _invited(db, now)
    someone_else = make_contact(db, now=now)
    theirs = make_identity(
        db, contact=someone_else, now=now, channel=Channel.SMS, address=UNKNOWN_PHONE
    )

    result = redeem(
        db, channel=Channel.SMS, address=UNKNOWN_PHONE, code=invitation.sms_code, now=now
    )

    assert result == (Redemption.TAKEN, theirs)
    assert invitation.used_at is None  # still usable from the right phone
    db.rollback()


def test_the_same_contact_again_is_already_enrolled(db: Session, now: datetime) -> None:
    patient, contact, first = _invited(db, now)
    _, identity = redeem(
        db, channel=Channel.SMS, address=UNKNOWN_PHONE, code=first.sms_code, now=now
    )
    second = _invite(db, patient, contact, now)

    # The used invitation and a fresh one alike: no error, no second identity.
    assert redeem(db, channel=Channel.SMS, address=UNKNOWN_PHONE, code=first.sms_code, now=now) == (
        Redemption.ALREADY,
        identity,
    )
    assert redeem(
        db, channel=Channel.SMS, address=UNKNOWN_PHONE, code=second.sms_code, now=now
    ) == (Redemption.ALREADY, identity)
    assert second.used_at is None
    db.rollback()


# -- enrollment by the first message ------------------------------------------------------------


def _inbound(
    db: Session,
    services: Services,
    now: datetime,
    text: str,
    *,
    channel: Channel = Channel.SMS,
    address: str = UNKNOWN_PHONE,
) -> Outcome:
    inbound = Inbound(
        channel=channel, address=address, provider_message_id=new_message_id(), text=text
    )
    outcome = handle_inbound(db, inbound=inbound, services=services, now=now)
    db.commit()
    return outcome


def _to(db: Session, address: str) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.address == address)
    return list(db.scalars(query.order_by(OutboxMessage.id)))


def _invite_family_parent(db: Session, family: Family, now: datetime) -> Enrollment:
    row = _invite(db, family.older_child, family.parent, now)
    db.commit()
    return row


@pytest.mark.parametrize(
    "typed",
    [lambda code: f"JOIN {code}", lambda code: f"join {code[:4]}-{code[4:]}".lower()],
    ids=["upper", "lower-dashed"],
)
def test_join_from_an_unknown_number_enrolls_and_starts_consent(
    db: Session,
    services: Services,
    family: Family,
    now: datetime,
    typed: Callable[[str], str],
) -> None:
    invitation = _invite_family_parent(db, family, now)
    text = typed(invitation.sms_code)

    outcome = _inbound(db, services, now, text)

    assert outcome == Outcome.ENROLLED
    identity = db.scalar(select(ChannelIdentity).where(ChannelIdentity.address == UNKNOWN_PHONE))
    assert identity is not None
    assert (identity.contact_id, identity.channel) == (family.parent.id, Channel.SMS)
    rows = _to(db, UNKNOWN_PHONE)
    assert all(row.identity_id == identity.id for row in rows)
    assert {row.kind for row in rows} <= {"reply", "prompt"}
    bodies = "\n".join(row.body for row in rows)
    welcome = f"Welcome to {NETWORK_NAME}! You are now connected with {CENTER_NAME}."
    assert rows[0].body == welcome
    assert "May we send you short health questionnaires for your care team?" in bodies
    session = db.scalar(
        select(ConversationSession).where(ConversationSession.contact_id == family.parent.id)
    )
    assert session is not None and session.flow_id == "consent"
    assert session.identity_id == identity.id
    handled = db.scalar(select(InboundMessage.handled_at).where(InboundMessage.body == text))
    assert handled == now


def test_start_token_from_an_unknown_chat_enrolls(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    invitation = _invite_family_parent(db, family, now)

    outcome = _inbound(
        db,
        services,
        now,
        f"/start {invitation.token}",
        channel=Channel.TELEGRAM,
        address=UNKNOWN_CHAT,
    )

    assert outcome == Outcome.ENROLLED
    rows = _to(db, UNKNOWN_CHAT)
    assert rows and rows[0].identity_id is not None
    assert rows[0].body.startswith(f"Welcome to {NETWORK_NAME}!")


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("unknown", texts.CODE_UNKNOWN),
        ("used", texts.CODE_USED),
        ("expired", texts.CODE_EXPIRED),
    ],
    ids=["unknown", "used", "expired"],
)
def test_a_bad_code_gets_one_refusal_in_every_language(
    db: Session,
    services: Services,
    family: Family,
    now: datetime,
    state: str,
    message: str,
) -> None:
    invitation = _invite_family_parent(db, family, now)
    code = "ZZZZ2345" if state == "unknown" else invitation.sms_code
    if state == "used":
        invitation.used_at = now
    if state == "expired":
        invitation.expires_at = now - timedelta(minutes=1)
    db.commit()

    outcome = _inbound(db, services, now, f"JOIN {code}")

    assert outcome == Outcome.ENROLLMENT_REFUSED
    (row,) = _to(db, UNKNOWN_PHONE)
    assert (row.kind, row.identity_id, row.channel) == ("not_enrolled", None, Channel.SMS)
    assert row.body.splitlines() == [services.translate(lang, message) for lang in ("en", "es")]
    assert (
        db.scalar(select(ChannelIdentity).where(ChannelIdentity.address == UNKNOWN_PHONE)) is None
    )


@pytest.mark.parametrize(
    "message",
    [
        texts.ENROLLED,
        texts.ALREADY_ENROLLED,
        texts.CODE_UNKNOWN,
        texts.CODE_USED,
        texts.CODE_EXPIRED,
        texts.ADDRESS_TAKEN,
    ],
    ids=["enrolled", "already", "unknown", "used", "expired", "taken"],
)
def test_enrollment_replies_are_translated_to_spanish(message: str) -> None:
    assert shipped_catalogs().translate("es", message) != message


def test_a_code_for_a_number_of_someone_else_is_refused_without_error(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    invitation = _invite_family_parent(db, family, now)
    teen_phone = family.teen_sms.address

    outcome = _inbound(db, services, now, f"JOIN {invitation.sms_code}", address=teen_phone)

    assert outcome == Outcome.ENROLLMENT_REFUSED
    (row,) = _to(db, teen_phone)
    assert services.translate("en", texts.ADDRESS_TAKEN) in row.body
    assert db.get(Enrollment, invitation.id) is not None
    assert invitation.used_at is None


def test_an_unknown_sender_gets_one_not_enrolled_reply_a_day(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    first = _inbound(db, services, now, "hello?")
    second = _inbound(db, services, now + timedelta(hours=3), "hello??")

    assert (first, second) == (Outcome.UNKNOWN_SENDER, Outcome.UNKNOWN_SENDER)
    (row,) = _to(db, UNKNOWN_PHONE)
    assert (row.kind, row.identity_id) == ("not_enrolled", None)
    english, spanish = (services.translate(lang, texts.NOT_ENROLLED) for lang in ("en", "es"))
    assert english != spanish
    assert row.body.splitlines() == [english, spanish]
    recorded = db.scalar(select(func.count()).select_from(InboundMessage))
    assert recorded == 2  # both kept, neither answered twice

    _inbound(db, services, now + timedelta(days=1, minutes=1), "hello again")
    assert len(_to(db, UNKNOWN_PHONE)) == 2


@pytest.mark.parametrize("word", ["STOP", "stop", "Unsubscribe", "QUIT"])
def test_stop_from_an_unknown_number_sends_nothing(
    db: Session, services: Services, family: Family, now: datetime, word: str
) -> None:
    outcome = _inbound(db, services, now, word)

    assert outcome == Outcome.UNKNOWN_SENDER
    assert _to(db, UNKNOWN_PHONE) == []
    assert outbox(db) == []


def test_join_from_an_enrolled_number_says_already_connected(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    invitation = _invite(db, family.teen, family.teen_contact, now)
    db.commit()

    outcome = _inbound(
        db, services, now, f"JOIN {invitation.sms_code}", address=family.teen_sms.address
    )

    assert outcome == Outcome.KEYWORD
    (row,) = _to(db, family.teen_sms.address)
    assert row.body == services.translate("en", texts.ALREADY_ENROLLED)
    assert db.scalar(select(func.count()).select_from(ConversationSession)) == 0


def test_a_replayed_join_enrolls_once(
    db: Session, services: Services, family: Family, now: datetime
) -> None:
    invitation = _invite_family_parent(db, family, now)
    inbound = Inbound(
        channel=Channel.SMS,
        address=UNKNOWN_PHONE,
        provider_message_id="SM" + uuid.uuid4().hex,
        text=f"JOIN {invitation.sms_code}",
    )
    first = handle_inbound(db, inbound=inbound, services=services, now=now)
    db.commit()
    rows = len(_to(db, UNKNOWN_PHONE))

    replayed = [handle_inbound(db, inbound=inbound, services=services, now=now) for _ in range(3)]
    db.commit()

    assert first == Outcome.ENROLLED
    assert replayed == [Outcome.DUPLICATE] * 3
    assert len(_to(db, UNKNOWN_PHONE)) == rows
