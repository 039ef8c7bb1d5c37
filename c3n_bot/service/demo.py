"""The demo network: two centers, four staff logins, twenty fictional families and their past."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from c3n_bot.service import audit, demo_activity, demo_history, schedules
from c3n_bot.service.context import Services
from c3n_bot.service.patients import ContactIn, PatientIn, add_contact, create_patient
from c3n_bot.service.staff import create_user
from c3n_bot.store.base import Channel, Condition, Purpose, Relationship, Role
from c3n_bot.store.models import (
    Center,
    ChannelIdentity,
    Consent,
    Contact,
    ContactPatient,
    Network,
    Patient,
    StaffCenter,
    StaffUser,
)

DEMO_SLUG = "demo"
# Published in the README: the demo is for trying the product, never for real patients.
DEMO_PASSWORD = "demo-password-1"

IBD, CF, T1D = Condition.IBD, Condition.CF, Condition.T1D
CODESIGN, BROADCASTS = Purpose.CODESIGN_INVITATIONS, Purpose.COMMUNITY_BROADCASTS

# Kept within GSM-7 so one crisis reply is never split into UCS-2 SMS segments.
CRISIS_RESOURCES = {
    "en": (
        "If you are thinking about hurting yourself or need help now, call or text 988 "
        "(Suicide & Crisis Lifeline), 24/7. In an emergency, call 911."
    ),
    "es": (
        "Si tienes pensamientos de hacerte daño o necesitas ayuda ahora, llama al 988 y "
        "marca 2 para español, o manda un mensaje de texto con la palabra AYUDA al 988, "
        "las 24 horas. En una emergencia, llama al 911."
    ),
}


@dataclass(frozen=True)
class StaffLogin:
    """A demo account to sign in with."""

    email: str
    password: str
    role: Role
    centers: tuple[str, ...]


@dataclass(frozen=True)
class DemoSeed:
    """What the demo network holds, and whether this call created it."""

    network_id: uuid.UUID
    created: bool
    centers: int
    staff: int
    patients: int
    contacts: int
    logins: tuple[StaffLogin, ...]


@dataclass(frozen=True)
class _CenterSpec:
    slug: str
    name: str
    timezone: str
    on_call_phone: str  # paged by SMS when an urgent alert is not acknowledged in time


@dataclass(frozen=True)
class _StaffSpec:
    email: str
    name: str
    role: Role
    centers: tuple[str, ...]


@dataclass(frozen=True)
class _Person:
    name: str
    phone: str | None = None
    telegram: str | None = None
    language: str | None = None
    declines: tuple[Purpose, ...] = ()


@dataclass(frozen=True)
class _Child:
    given: str
    age: int
    condition: Condition
    self_contact: _Person | None = None
    language: str | None = None


@dataclass(frozen=True)
class _Family:
    center: str
    family_name: str
    language: str
    children: tuple[_Child, ...]
    parent: _Person | None = None
    relation: Relationship = Relationship.PARENT


CENTERS = (
    _CenterSpec("riverside", "Riverside Children's", "America/New_York", "+12125550190"),
    _CenterSpec("pacific", "Pacific Pediatrics", "America/Los_Angeles", "+12135550191"),
)
BOTH = ("riverside", "pacific")
ORGANISER = "organiser@demo.c3n"  # plans the demo's co-design session
STAFF = (
    _StaffSpec("admin@demo.c3n", "Avery Admin", Role.ADMIN, BOTH),
    _StaffSpec("clinician@demo.c3n", "Dr. Riley Park", Role.CLINICIAN, ("riverside",)),
    _StaffSpec("clinician2@demo.c3n", "Dr. Sam Ortega", Role.CLINICIAN, ("pacific",)),
    _StaffSpec(ORGANISER, "Jordan Lee", Role.ORGANISER, BOTH),
)

# Fictional people; phone numbers are in the 555-01xx range reserved for fiction.
# fmt: off
FAMILIES = (
    _Family("riverside", "Okafor", "en", (
        _Child("Daniel", 15, IBD, _Person("Daniel Okafor", "+12125550102")),
        _Child("Ruth", 11, IBD),
    ), _Person("Grace Okafor", "+12125550101", "700000101")),
    _Family("riverside", "Morales", "es", (
        _Child("Sofia", 9, T1D),
        _Child("Mateo", 13, T1D, _Person("Mateo Morales", telegram="700000104")),
    ), _Person("Carmen Morales", "+17185550103", declines=(CODESIGN,))),
    _Family("riverside", "Chen", "en", (
        _Child("Lily", 17, CF, _Person("Lily Chen", "+16465550105", "700000105")),
    ), _Person("Wei Chen", "+16465550106", declines=(BROADCASTS,))),
    _Family("riverside", "Brooks", "en", (
        _Child("Jayden", 19, IBD, _Person("Jayden Brooks", telegram="700000107",
                                          declines=(CODESIGN, BROADCASTS))),
    )),
    _Family("riverside", "Rivera", "es", (
        _Child("Valentina", 12, IBD),
    ), _Person("Luis Rivera", "+13475550108")),
    _Family("riverside", "Kowalski", "en", (
        _Child("Emma", 10, CF),
    ), _Person("Anna Kowalski", "+19175550109", "700000109"), Relationship.GUARDIAN),
    _Family("riverside", "Torres", "es", (
        _Child("Diego", 18, CF, _Person("Diego Torres", "+13475550114"), language="en"),
        _Child("Camila", 9, CF),
    ), _Person("Rosa Torres", "+13475550113")),
    _Family("pacific", "Nguyen", "en", (
        _Child("Minh", 12, T1D),
        _Child("An", 16, T1D, _Person("An Nguyen", telegram="700000116")),
    ), _Person("Linh Nguyen", "+12135550115", "700000115")),
    _Family("pacific", "García", "es", (
        _Child("Lucía", 10, IBD),
        _Child("Javier", 14, IBD),
    ), _Person("María García", "+13235550117")),
    _Family("pacific", "Patel", "en", (
        _Child("Priya", 17, IBD, _Person("Priya Patel", "+14155550118")),
    ), _Person("Raj Patel", "+14155550119")),
    _Family("pacific", "Williams", "en", (
        _Child("Noah", 9, CF),
    ), _Person("Sarah Williams", "+18185550120", declines=(Purpose.VISIT_REMINDERS,))),
    _Family("pacific", "Hernández", "es", (
        _Child("Isabella", 15, T1D, _Person("Isabella Hernández", "+16195550121")),
    ), _Person("José Hernández", "+16195550122")),
    _Family("pacific", "Kim", "en", (
        _Child("Ethan", 18, CF, _Person("Ethan Kim", "+13105550123", "700000123")),
    )),
    _Family("pacific", "Jackson", "en", (
        _Child("Maya", 11, T1D),
    ), _Person("Tanya Jackson", telegram="700000124", declines=(BROADCASTS,))),
    _Family("pacific", "Lopez", "en", (
        _Child("Gabriel", 13, IBD),
    ), _Person("Elena Lopez", "+12135550125", language="es")),
)
# fmt: on


def find_demo(db: Session) -> DemoSeed | None:
    """The demo network's counts and logins, or None when it was never seeded."""
    network_id = db.scalar(select(Network.id).where(Network.slug == DEMO_SLUG))
    if network_id is None:
        return None
    centers = select(Center.id).where(Center.network_id == network_id).scalar_subquery()
    patients = select(Patient.id).where(Patient.center_id.in_(centers)).scalar_subquery()
    emails = set(db.scalars(select(StaffUser.email).where(StaffUser.email.in_(_emails()))))
    staff = select(func.count(distinct(StaffCenter.staff_user_id))).where(
        StaffCenter.center_id.in_(centers)
    )
    contacts = select(func.count(distinct(ContactPatient.contact_id))).where(
        ContactPatient.patient_id.in_(patients)
    )
    return DemoSeed(
        network_id=network_id,
        created=False,
        centers=db.scalar(select(func.count()).where(Center.network_id == network_id)) or 0,
        staff=db.scalar(staff) or 0,
        patients=db.scalar(select(func.count()).where(Patient.center_id.in_(centers))) or 0,
        contacts=db.scalar(contacts) or 0,
        logins=tuple(
            StaffLogin(s.email, DEMO_PASSWORD, s.role, s.centers)
            for s in STAFF
            if s.email in emails
        ),
    )


def seed_demo(db: Session, *, services: Services, now: datetime) -> DemoSeed:
    """Create the demo network in the caller's transaction, unless it is already there: its
    people, eight weeks of their reports and alerts, and a co-design session coming up."""
    existing = find_demo(db)
    if existing is not None:
        return existing
    network = Network(
        name="ImproveCareNow Demo Network",
        slug=DEMO_SLUG,
        identifier_system="https://demo.c3n.example/patient-id",
        created_at=now,
    )
    db.add(network)
    centers = {spec.slug: _add_center(db, network, spec, now) for spec in CENTERS}
    db.flush()
    users: dict[str, StaffUser] = {}
    for staff in STAFF:
        users[staff.email] = create_user(
            db,
            email=staff.email,
            name=staff.name,
            password=DEMO_PASSWORD,
            role=staff.role,
            center_ids=[centers[slug].id for slug in staff.centers],
            now=now,
        )
    declines: dict[uuid.UUID, tuple[Purpose, ...]] = {}
    contacts: dict[uuid.UUID, Contact] = {}
    for index, family in enumerate(FAMILIES):
        for contact, person in _add_family(db, family, centers[family.center], index, now):
            contacts[contact.id] = contact
            declines[contact.id] = person.declines
    for contact in contacts.values():
        _add_web_identity_and_consents(db, contact, declines[contact.id], now)
    db.flush()
    # Each center starts with the default schedules by condition, and every patient gets them.
    for center in centers.values():
        schedules.ensure_center_defaults(db, center_id=center.id, now=now)
    for patient in db.scalars(
        select(Patient).where(Patient.center_id.in_([center.id for center in centers.values()]))
    ):
        schedules.apply_templates(db, patient=patient, now=now)
    _add_history(db, centers, users, services, now)
    seed = find_demo(db)
    assert seed is not None
    audit.record(
        db,
        actor=audit.SYSTEM,
        action="demo.seed",
        subject=DEMO_SLUG,
        now=now,
        detail={"patients": seed.patients, "contacts": seed.contacts},
    )
    return dataclasses.replace(seed, created=True)


def _add_history(
    db: Session,
    centers: dict[str, Center],
    users: dict[str, StaffUser],
    services: Services,
    now: datetime,
) -> None:
    # Each center's past alerts were acknowledged by its own clinician.
    clinicians = {
        centers[slug].id: users[spec.email]
        for spec in STAFF
        if spec.role == Role.CLINICIAN
        for slug in spec.centers
    }
    center_ids = [center.id for center in centers.values()]
    db.flush()
    demo_history.seed_history(
        db, center_ids=center_ids, clinicians=clinicians, services=services, now=now
    )
    demo_activity.seed_activity(db, organiser=users[ORGANISER], center_ids=center_ids, now=now)


def _add_center(db: Session, network: Network, spec: _CenterSpec, now: datetime) -> Center:
    center = Center(
        network=network,
        name=spec.name,
        slug=spec.slug,
        timezone=spec.timezone,
        crisis_resources=dict(CRISIS_RESOURCES),
        on_call_channel=Channel.SMS,
        on_call_address=spec.on_call_phone,
        created_at=now,
    )
    db.add(center)
    return center


def _add_family(
    db: Session, family: _Family, center: Center, index: int, now: datetime
) -> list[tuple[Contact, _Person]]:
    added: list[tuple[Contact, _Person]] = []
    for number, child in enumerate(family.children, start=1):
        data = PatientIn(
            center_id=center.id,
            external_id=f"{center.slug[:3].upper()}-{index + 1:03d}-{number}",
            given_name=child.given,
            family_name=family.family_name,
            birth_date=_birth_date(now, child.age, index + number),
            condition=child.condition,
            language=child.language or family.language,
        )
        patient = create_patient(db, data=data, allowed_centers={center.id}, now=now)
        people = [
            (family.parent, family.relation, family.language),
            (child.self_contact, Relationship.SELF, data.language),
        ]
        for person, relation, language in people:
            if person is not None:
                data_in = _contact_in(person, relation, language=language)
                contact = add_contact(db, patient=patient, data=data_in, now=now)
                added.append((contact, person))
    db.flush()
    return added


def _contact_in(person: _Person, relation: Relationship, *, language: str) -> ContactIn:
    return ContactIn(
        display_name=person.name,
        relationship=relation,
        language=person.language or language,
        phone=person.phone,
        telegram_chat_id=person.telegram,
    )


def _add_web_identity_and_consents(
    db: Session, contact: Contact, declines: tuple[Purpose, ...], now: datetime
) -> None:
    # The web simulator addresses a contact by id, so it can speak as anyone in the demo.
    web = ChannelIdentity(channel=Channel.WEB, address=str(contact.id), created_at=now)
    contact.identities.append(web)
    for purpose in Purpose:
        db.add(
            Consent(
                contact_id=contact.id,
                purpose=purpose,
                granted=purpose not in declines,
                source="demo",
                updated_at=now,
            )
        )


def _birth_date(now: datetime, age: int, spread: int) -> date:
    # Whole years back, then up to ~10 months more, so the age is exactly `age` today.
    return now.date() - relativedelta(years=age) - timedelta(days=17 + 29 * (spread % 10))


def _emails() -> list[str]:
    return [staff.email for staff in STAFF]
