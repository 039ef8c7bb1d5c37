"""Declarative base, naming conventions and the small enums the models share."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from c3n_bot.store.types import UTCDateTime

# Stable constraint names let Alembic alter tables on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; all timestamps are aware UTC."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def uuid_pk() -> Mapped[uuid.UUID]:
    """A UUID primary key; callers may pass their own id, else one is generated."""
    return mapped_column(primary_key=True, default=uuid.uuid4)


def str_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint, storing the values."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


class Role(enum.StrEnum):
    """What a staff user may do."""

    CLINICIAN = "clinician"
    ORGANISER = "organiser"
    ADMIN = "admin"


class Condition(enum.StrEnum):
    """The chronic condition a patient is followed for."""

    IBD = "ibd"
    CF = "cf"
    T1D = "t1d"
    OTHER = "other"


class Relationship(enum.StrEnum):
    """How a contact relates to a patient they report for."""

    SELF = "self"
    PARENT = "parent"
    GUARDIAN = "guardian"


class Channel(enum.StrEnum):
    """Where a contact's messages travel."""

    TELEGRAM = "telegram"
    SMS = "sms"
    WEB = "web"
    CONSOLE = "console"


class Purpose(enum.StrEnum):
    """What a contact consented to be messaged for."""

    PRO_REPORTS = "pro_reports"
    VISIT_REMINDERS = "visit_reminders"
    CODESIGN_INVITATIONS = "codesign_invitations"
    COMMUNITY_BROADCASTS = "community_broadcasts"
