"""Deferred writes: one statement for all their rows, before anything else the session runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, bindparam, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.store import deferred
from c3n_bot.store.db import make_session_factory
from c3n_bot.store.models import Contact
from tests.builders import make_contact

_contacts = cast(Table, Contact.__table__)
SET_LANGUAGE = (
    update(_contacts)
    .where(_contacts.c.id == bindparam("contact_id"))
    .values(language=bindparam("language"))
)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def contacts(sessions: sessionmaker[Session], now: datetime) -> list[Contact]:
    with sessions() as db:
        made = [make_contact(db, now=now) for _ in range(3)]
        db.commit()
    return made


@pytest.fixture
def executed(engine: Engine) -> Iterator[list[str]]:
    """The statements sent to the database, as their first two words."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()[:2]
        if words[0] not in ("BEGIN", "SAVEPOINT"):
            statements.append(" ".join(words))

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def languages(sessions: sessionmaker[Session], contacts: list[Contact]) -> list[str]:
    """Each contact's language as stored, in the order of `contacts`."""
    with sessions() as db:
        stored = {
            id_: language for id_, language in db.execute(select(Contact.id, Contact.language))
        }
    return [stored[contact.id] for contact in contacts]


def test_deferred_writes_go_as_one_statement_at_the_commit(
    sessions: sessionmaker[Session], contacts: list[Contact], executed: list[str]
) -> None:
    with sessions() as db:
        deferred.defer_writes(db)
        for contact in contacts:
            deferred.execute(db, SET_LANGUAGE, {"contact_id": contact.id, "language": "es"})
        assert executed == []
        db.commit()
    assert executed == ["UPDATE contacts"]
    assert languages(sessions, contacts) == ["es", "es", "es"]


def test_without_deferral_a_write_goes_at_once(
    sessions: sessionmaker[Session], contacts: list[Contact], executed: list[str]
) -> None:
    with sessions() as db:
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contacts[0].id, "language": "es"})
        assert executed == ["UPDATE contacts"]
        db.commit()
    assert languages(sessions, contacts) == ["es", "en", "en"]


def test_a_read_sees_the_writes_deferred_before_it(
    sessions: sessionmaker[Session], contacts: list[Contact], executed: list[str]
) -> None:
    with sessions() as db:
        deferred.defer_writes(db)
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contacts[0].id, "language": "es"})
        language = db.scalar(select(Contact.language).where(Contact.id == contacts[0].id))
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contacts[1].id, "language": "es"})
        db.commit()
    assert language == "es"
    assert executed == ["UPDATE contacts", "SELECT contacts.language", "UPDATE contacts"]
    assert languages(sessions, contacts) == ["es", "es", "en"]


def test_a_flush_of_the_unit_of_work_comes_after_them(
    sessions: sessionmaker[Session], contacts: list[Contact], executed: list[str]
) -> None:
    with sessions() as db:
        contact = db.get(Contact, contacts[0].id)
        assert contact is not None
        executed.clear()
        deferred.defer_writes(db)
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contact.id, "language": "es"})
        contact.language = "fr"  # a later write by the unit of work: it must win
        db.flush()
        assert executed == ["UPDATE contacts", "UPDATE contacts"]
        db.commit()
    assert languages(sessions, contacts) == ["fr", "en", "en"]


def test_a_rollback_forgets_them_and_ends_the_deferral(
    sessions: sessionmaker[Session], contacts: list[Contact], executed: list[str]
) -> None:
    with sessions() as db:
        deferred.defer_writes(db)
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contacts[0].id, "language": "es"})
        db.rollback()
        assert executed == []
        # The session's next transaction writes at once again.
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contacts[1].id, "language": "es"})
        assert executed == ["UPDATE contacts"]
        db.commit()
    assert languages(sessions, contacts) == ["en", "es", "en"]


def test_a_savepoint_with_writes_deferred_is_refused(
    sessions: sessionmaker[Session], contacts: list[Contact]
) -> None:
    with sessions() as db:
        deferred.defer_writes(db)
        deferred.execute(db, SET_LANGUAGE, {"contact_id": contacts[0].id, "language": "es"})
        with pytest.raises(RuntimeError, match="savepoint"):
            db.begin_nested()
