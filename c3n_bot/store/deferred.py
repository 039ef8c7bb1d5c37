"""Writes a transaction sends together: each deferred statement runs once for all its rows,
just before anything else the session executes, flushes or commits.

The webhooks' writer (service.inbound_queue) handles many messages in one transaction, and
every answer writes its session's step and queues its reply: two statements a message. On
PostgreSQL each was a round trip the writer waited for (on a busy host, about a third of its
time, bench.load), and on either database SQLAlchemy did its per-statement work for each.
Deferred, a batch's steps are one UPDATE executed for all of them, its replies one INSERT.

Only for statements whose results nobody reads and that commute with each other (each writes
rows that no other deferred statement touches). Whatever else the session executes, a flush
of its unit of work and the commit run what is deferred first, so every read sees every
earlier write, in order; a rollback forgets it. Statements run on `Session.connection()`
directly are not seen: do not mix them with deferral. Beginning a savepoint while writes are
deferred is refused, since rolling the savepoint back would undo them.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import Executable

_KEY: Final = "c3n.deferred_writes"


def defer_writes(db: Session) -> None:
    """From now until the session's transaction ends, `execute` defers its statements."""
    if not db.in_transaction():
        db.begin()  # the transaction whose end (commit or rollback) ends the deferral
    db.info[_KEY] = {}


def execute(db: Session, statement: Executable, params: dict[str, Any]) -> None:
    """Execute now, or with the next statement of another kind when writes are deferred."""
    pending: dict[Executable, list[dict[str, Any]]] | None = db.info.get(_KEY)
    if pending is None:
        db.execute(statement, params)
    else:
        pending.setdefault(statement, []).append(params)


def run_deferred(db: Session) -> None:
    """Execute what is deferred, each statement once for all its rows (in the order each was
    first deferred); later writes are deferred again."""
    pending: dict[Executable, list[dict[str, Any]]] | None = db.info.get(_KEY)
    if not pending:
        return
    db.info[_KEY] = {}
    for statement, rows in pending.items():
        db.execute(statement, rows)


@event.listens_for(Session, "do_orm_execute")
def _before_execute(state: ORMExecuteState) -> None:
    run_deferred(state.session)


@event.listens_for(Session, "before_flush")
def _before_flush(db: Session, _context: Any, _instances: Any) -> None:
    run_deferred(db)


@event.listens_for(Session, "before_commit")
def _before_commit(db: Session) -> None:
    run_deferred(db)


@event.listens_for(Session, "after_transaction_create")
def _on_begin(db: Session, transaction: SessionTransaction) -> None:
    if transaction.nested and db.info.get(_KEY):
        raise RuntimeError("a savepoint begun with writes deferred would undo them")


@event.listens_for(Session, "after_transaction_end")
def _on_end(db: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction, committed or rolled back
        db.info.pop(_KEY, None)
