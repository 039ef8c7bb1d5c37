"""Which submissions an export or an API page holds: filters, a stable order, counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from c3n_bot.registry.submission_record import (
    SubmissionRecord,
    load_records,
    record_from_row,
    records_query,
)
from c3n_bot.service.errors import NotFound
from c3n_bot.store.models import Patient, RegistryDelivery, Submission
from c3n_bot.store.models.conversations import SubmissionStatus

# Where a page ends: the (authored_at, id) of its last submission.
Key = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class SubmissionFilter:
    """Submissions of some centers, optionally narrowed; `since` counts, `until` does not."""

    centers: frozenset[uuid.UUID]
    since: datetime | None = None
    until: datetime | None = None
    flow_ids: frozenset[str] = frozenset()
    patient_id: uuid.UUID | None = None
    status: SubmissionStatus | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses; the center scope is always one of them."""
        found: list[ColumnElement[bool]] = [Submission.center_id.in_(sorted(self.centers))]
        if self.since is not None:
            found.append(Submission.authored_at >= self.since)
        if self.until is not None:
            found.append(Submission.authored_at < self.until)
        if self.flow_ids:
            found.append(Submission.flow_id.in_(sorted(self.flow_ids)))
        if self.patient_id is not None:
            found.append(Submission.patient_id == self.patient_id)
        if self.status is not None:
            found.append(Submission.status == self.status)
        return found


def ordered(where: SubmissionFilter, *, after: Key | None = None) -> Select[Any]:
    """The records the filter holds, oldest first; ties on authored_at broken by id."""
    query = records_query().where(*where.conditions())
    if after is not None:
        authored, last_id = after
        # Spelled out rather than a row-value comparison, which not every SQLite build has.
        query = query.where(
            or_(
                Submission.authored_at > authored,
                and_(Submission.authored_at == authored, Submission.id > last_id),
            )
        )
    return query.order_by(Submission.authored_at, Submission.id)


def count(db: Session, where: SubmissionFilter) -> int:
    """How many submissions the filter holds (for a progress bar)."""
    query = select(func.count()).select_from(Submission).where(*where.conditions())
    return db.scalar(query) or 0


def stream(
    db: Session, where: SubmissionFilter, *, by_patient: bool = False
) -> Iterator[SubmissionRecord]:
    """Every record the filter holds, streamed: memory stays flat whatever the count.

    Oldest first; `by_patient` groups them by patient first (each patient's oldest first).
    """
    query = ordered(where)
    if by_patient:
        query = query.order_by(None).order_by(
            Submission.patient_id, Submission.authored_at, Submission.id
        )
    return load_records(db, query)


def page(
    db: Session, where: SubmissionFilter, *, after: Key | None, limit: int
) -> list[SubmissionRecord]:
    """Up to `limit` records following `after`, in order."""
    rows = db.execute(ordered(where, after=after).limit(limit)).all()
    return [record_from_row(row) for row in rows]


def key_of(record: SubmissionRecord) -> Key:
    """Where a page that ends with this record resumes."""
    return (record.authored_at, record.id)


def visible(db: Session, submission_id: uuid.UUID, centers: set[uuid.UUID]) -> SubmissionRecord:
    """One submission of the caller's centers; NotFound when absent or in another center."""
    row = db.execute(records_query().where(Submission.id == submission_id)).first()
    if row is None or row.center_id not in centers:
        raise NotFound("submission")
    return record_from_row(row)


def deliveries(db: Session, submission_id: uuid.UUID) -> list[RegistryDelivery]:
    """Where the submission stands at each FHIR sink, by sink name."""
    query = (
        select(RegistryDelivery)
        .where(RegistryDelivery.submission_id == submission_id)
        .order_by(RegistryDelivery.sink)
    )
    return list(db.scalars(query))


def patients(db: Session, records: list[SubmissionRecord]) -> list[Patient]:
    """The patients of some records, once each (to audit who saw whose data)."""
    ids = sorted({record.patient.id for record in records})
    return list(db.scalars(select(Patient).where(Patient.id.in_(ids)).order_by(Patient.id)))
