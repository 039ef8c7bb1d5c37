"""One submission with its patient and reporter, read in a single streamed query."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, Select, and_, select
from sqlalchemy.orm import Session

from c3n_bot.store.base import Relationship
from c3n_bot.store.models import Center, Contact, ContactPatient, Network, Patient, Submission

# Rows fetched per round trip when streaming; memory stays flat whatever the row count.
BATCH_SIZE = 1000


@dataclass(frozen=True)
class RecordPatient:
    """The subject of a submission."""

    id: uuid.UUID
    external_id: str
    given_name: str
    family_name: str
    birth_date: date
    center_id: uuid.UUID
    # The network's patient identifier system (FHIR Patient.identifier.system of external_id).
    identifier_system: str


@dataclass(frozen=True)
class RecordReporter:
    """Who answered: the patient themself, or a parent or guardian (a proxy)."""

    contact_id: uuid.UUID
    # None when the contact is no longer linked to the patient.
    relationship: Relationship | None
    name: str

    @property
    def is_proxy(self) -> bool:
        """Whether someone other than the patient answered."""
        return self.relationship in (Relationship.PARENT, Relationship.GUARDIAN)


@dataclass(frozen=True)
class SubmissionRecord:
    """Everything the FHIR mapping and the exports need, without touching the database."""

    id: uuid.UUID
    flow_id: str
    flow_version: str
    status: str
    answers: dict[str, Any]
    scores: dict[str, Any]
    bands: dict[str, Any]
    channel: str
    started_at: datetime
    authored_at: datetime
    version: int
    replaces_id: uuid.UUID | None
    center_id: uuid.UUID
    patient: RecordPatient
    reporter: RecordReporter | None


def records_query() -> Select[Any]:
    """The select that `load_records` runs: add `.where`, `.order_by`, `.limit` to it.

    Filters may name any column of Submission, Patient or Contact. Submissions join their
    patient (and its center's network), and left join the reporting contact and that
    contact's link to the patient, whose key is (contact, patient): no join multiplies rows.
    """
    link = and_(
        ContactPatient.contact_id == Submission.reporter_contact_id,
        ContactPatient.patient_id == Submission.patient_id,
    )
    return (
        select(
            Submission.id,
            Submission.flow_id,
            Submission.flow_version,
            Submission.status,
            Submission.answers,
            Submission.scores,
            Submission.bands,
            Submission.channel,
            Submission.started_at,
            Submission.authored_at,
            Submission.version,
            Submission.replaces_id,
            Submission.center_id,
            Submission.patient_id,
            Patient.external_id,
            Patient.given_name,
            Patient.family_name,
            Patient.birth_date,
            Patient.center_id.label("patient_center_id"),
            Network.identifier_system,
            Submission.reporter_contact_id,
            Contact.display_name.label("reporter_name"),
            ContactPatient.relation.label("reporter_relationship"),
        )
        .join(Patient, Patient.id == Submission.patient_id)
        .join(Center, Center.id == Patient.center_id)
        .join(Network, Network.id == Center.network_id)
        .outerjoin(Contact, Contact.id == Submission.reporter_contact_id)
        .outerjoin(ContactPatient, link)
    )


def load_records(
    db: Session,
    query: Select[Any] | Iterable[uuid.UUID] | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> Iterator[SubmissionRecord]:
    """Stream records: every submission, those of a list of ids, or a `records_query()`.

    Rows arrive `batch_size` at a time through a server-side cursor on PostgreSQL, so a
    million rows need no more memory than a thousand. Ids keep no particular order; a
    query keeps its own `order_by`.
    """
    if query is None:
        statement = records_query()
    elif isinstance(query, Select):
        statement = query
    else:
        statement = records_query().where(Submission.id.in_(list(query)))
    streamed = statement.execution_options(stream_results=True, yield_per=batch_size)
    for row in db.execute(streamed):
        yield record_from_row(row)


def load_record(db: Session, submission_id: uuid.UUID) -> SubmissionRecord | None:
    """One submission's record, or None when it does not exist."""
    row = db.execute(records_query().where(Submission.id == submission_id)).first()
    return None if row is None else record_from_row(row)


def record_from_row(row: Row[Any]) -> SubmissionRecord:
    """A record from one row of `records_query()`."""
    m = row._mapping
    patient = RecordPatient(
        id=m["patient_id"],
        external_id=m["external_id"],
        given_name=m["given_name"],
        family_name=m["family_name"],
        birth_date=m["birth_date"],
        center_id=m["patient_center_id"],
        identifier_system=m["identifier_system"],
    )
    reporter = None
    if m["reporter_contact_id"] is not None:
        reporter = RecordReporter(
            contact_id=m["reporter_contact_id"],
            relationship=m["reporter_relationship"],
            name=m["reporter_name"],
        )
    return SubmissionRecord(
        id=m["id"],
        flow_id=m["flow_id"],
        flow_version=m["flow_version"],
        status=str(m["status"]),
        answers=dict(m["answers"] or {}),
        scores=dict(m["scores"] or {}),
        bands=dict(m["bands"] or {}),
        channel=str(m["channel"]),
        started_at=m["started_at"],
        authored_at=m["authored_at"],
        version=m["version"],
        replaces_id=m["replaces_id"],
        center_id=m["center_id"],
        patient=patient,
        reporter=reporter,
    )
