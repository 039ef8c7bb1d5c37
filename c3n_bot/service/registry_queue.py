"""Queueing each new submission for every configured FHIR sink, in the submission's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, event, insert
from sqlalchemy.orm import Session, sessionmaker

from c3n_bot.store.models import RegistryDelivery
from c3n_bot.store.models.registry import DeliveryStatus

# Set when a transaction queued deliveries, so pushers in this process can be woken on commit.
QUEUED_INFO_KEY = "c3n_registry_queued"


def queue_deliveries(
    db: Session,
    *,
    submission_id: uuid.UUID,
    now: datetime,
    sinks: Sequence[str],
) -> int:
    """One pending delivery per sink (the deployment's, from Services.sinks), due now;
    returns how many."""
    names = tuple(sinks)
    if not names:
        return 0
    db.info[QUEUED_INFO_KEY] = True
    db.execute(
        _INSERT,
        [
            {
                "submission_id": submission_id,
                "sink": sink,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for sink in names
        ],
    )
    return len(names)


# A Core insert, in the caller's transaction: no unit-of-work flush per delivery.
_INSERT = insert(cast(Table, RegistryDelivery.__table__))


def wake_on_commit(sessions: sessionmaker[Session], wake: Callable[[], None]) -> None:
    """Call `wake` after each commit of the factory's sessions that queued deliveries."""

    def after_commit(session: Session) -> None:
        if session.info.pop(QUEUED_INFO_KEY, None):
            wake()

    def after_rollback(session: Session) -> None:
        session.info.pop(QUEUED_INFO_KEY, None)

    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)
