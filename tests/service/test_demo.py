"""The demo network: idempotent, varied enough to exercise scoping, languages and channels."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3n_bot.service import staff
from c3n_bot.service.context import Services
from c3n_bot.service.demo import CRISIS_RESOURCES, DEMO_PASSWORD, seed_demo
from c3n_bot.store.base import Channel, Relationship, Role
from c3n_bot.store.models import (
    Activity,
    Alert,
    AuditEvent,
    Center,
    ChannelIdentity,
    Consent,
    Contact,
    ContactPatient,
    ConversationSession,
    DueWork,
    Network,
    OutboxMessage,
    Patient,
    RegistryDelivery,
    Rsvp,
    StaffUser,
    Submission,
)

TABLES = (
    Network, Center, StaffUser, Patient, Contact, ContactPatient, ChannelIdentity, Consent,
    ConversationSession, Submission, Alert, DueWork, OutboxMessage, RegistryDelivery, Activity,
    Rsvp, AuditEvent,
)  # fmt: skip


def _counts(db: Session) -> dict[str, int]:
    return {
        table.__name__: db.scalar(select(func.count()).select_from(table)) or 0 for table in TABLES
    }


def test_seeding_twice_creates_nothing_the_second_time(
    db: Session, services: Services, now: datetime
) -> None:
    # With a FHIR sink, every report is queued for it as a live one would be.
    first = seed_demo(db, services=dataclasses.replace(services, sinks=("ehr",)), now=now)
    db.commit()
    counts = _counts(db)
    second = seed_demo(db, services=services, now=now)
    db.commit()

    assert first.created and not second.created
    assert _counts(db) == counts
    assert (second.centers, second.staff, second.patients) == (2, 4, 20)
    assert second.contacts == first.contacts == counts["Contact"]
    assert second.logins == first.logins
    assert counts["RegistryDelivery"] == counts["Submission"] > 0


def test_the_network_spans_two_centers_three_conditions_and_ages_8_to_19(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)
    centers = {c.slug: c.timezone for c in db.scalars(select(Center))}
    patients = list(db.scalars(select(Patient)))
    ages = {
        now.year
        - p.birth_date.year
        - ((now.month, now.day) < (p.birth_date.month, p.birth_date.day))
        for p in patients
    }

    assert centers == {"riverside": "America/New_York", "pacific": "America/Los_Angeles"}
    assert {p.condition.value for p in patients} == {"ibd", "cf", "t1d"}
    assert min(ages) >= 8 and max(ages) <= 19
    assert Counter(p.center.slug for p in patients) == {"riverside": 10, "pacific": 10}


def test_some_parent_reports_for_two_children(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)
    children = Counter(
        db.scalars(
            select(ContactPatient.contact_id).where(ContactPatient.relation == Relationship.PARENT)
        )
    )

    assert max(children.values()) == 2
    assert sum(1 for n in children.values() if n == 2) >= 3


def test_some_teens_report_for_themselves(db: Session, services: Services, now: datetime) -> None:
    seed_demo(db, services=services, now=now)
    selves = db.scalars(
        select(Patient).join(ContactPatient).where(ContactPatient.relation == Relationship.SELF)
    ).all()

    assert len(selves) >= 5
    assert all(now.year - p.birth_date.year >= 13 for p in selves)


def test_some_contacts_and_patients_speak_spanish(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)

    assert len(db.scalars(select(Contact).where(Contact.language == "es")).all()) >= 5
    assert len(db.scalars(select(Patient).where(Patient.language == "es")).all()) >= 5


def test_every_contact_has_a_web_identity_addressed_by_its_id(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)
    web = {
        i.contact_id: i.address
        for i in db.scalars(select(ChannelIdentity).where(ChannelIdentity.channel == Channel.WEB))
    }
    contacts = db.scalars(select(Contact.id)).all()

    assert {contact_id: str(contact_id) for contact_id in contacts} == web


def test_phone_numbers_are_valid_e164_and_telegram_ids_numeric(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)
    identities = list(db.scalars(select(ChannelIdentity)))
    phones = [i.address for i in identities if i.channel == Channel.SMS]
    chats = [i.address for i in identities if i.channel == Channel.TELEGRAM]

    assert len(phones) >= 15 and len(chats) >= 5
    for phone in phones:
        number = phonenumbers.parse(phone, None)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
    assert all(chat.isdigit() for chat in chats)


def test_consents_cover_every_purpose_and_some_are_declined(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)
    consents = list(db.scalars(select(Consent)))
    contacts = db.scalar(select(func.count()).select_from(Contact)) or 0

    assert len(consents) == 4 * contacts
    assert {c.source for c in consents} == {"demo"}
    declined = [c for c in consents if not c.granted]
    assert 0 < len(declined) < len(consents) // 4


def test_staff_logins_work_and_clinicians_see_one_center_each(
    db: Session, services: Services, now: datetime
) -> None:
    seed = seed_demo(db, services=services, now=now)
    users = {login.email: login for login in seed.logins}

    for login in seed.logins:
        user = staff.authenticate(db, email=login.email, password=login.password, ip=None, now=now)
        assert user is not None and user.role == login.role
        assert {c.slug for c in user.centers} == set(login.centers)
    assert {login.password for login in seed.logins} == {DEMO_PASSWORD}
    assert users["clinician@demo.c3n"].centers == ("riverside",)
    assert users["clinician2@demo.c3n"].centers == ("pacific",)
    assert {login.role for login in seed.logins} == set(Role)


def test_crisis_resources_name_988_and_911_in_both_languages(
    db: Session, services: Services, now: datetime
) -> None:
    seed_demo(db, services=services, now=now)

    for center in db.scalars(select(Center)):
        assert center.crisis_resources == CRISIS_RESOURCES
    for text in CRISIS_RESOURCES.values():
        assert "988" in text and "911" in text
    assert CRISIS_RESOURCES["en"].isascii()
