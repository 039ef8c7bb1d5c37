"""Registry submissions over the JSON API: filtered pages, one submission, its FHIR Bundle.

Every route is scoped to the API key owner's centers: a submission, patient or center
outside them is a 404. Pages run oldest first by (authored_at, id); `next_cursor` is opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from c3n_bot.registry import submission_query
from c3n_bot.registry.fhir_bundle import transaction_bundle
from c3n_bot.registry.submission_query import Key, SubmissionFilter
from c3n_bot.registry.submission_record import SubmissionRecord
from c3n_bot.service.errors import Conflict, NotFound
from c3n_bot.store.base import Relationship
from c3n_bot.store.models import Patient, RegistryDelivery
from c3n_bot.store.models.conversations import SubmissionStatus
from c3n_bot.store.models.registry import DeliveryStatus
from c3n_bot.web.deps import ApiDep, DbDep, NowDep, Principal, ServicesDep

router = APIRouter(prefix="/submissions", tags=["submissions"])


class FhirJSONResponse(JSONResponse):
    """JSON with the FHIR media type."""

    media_type = "application/fhir+json"


class ReporterOut(BaseModel):
    """Who answered: the patient (self) or a parent or guardian."""

    contact_id: uuid.UUID
    relationship: Relationship | None


class SubmissionOut(BaseModel):
    """A submission: answers (code, value, display per item), scores and bands."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_external_id: str
    center_id: uuid.UUID
    flow_id: str
    flow_version: str
    status: str
    channel: str
    version: int
    replaces_id: uuid.UUID | None
    reporter: ReporterOut | None
    answers: dict[str, Any]
    scores: dict[str, Any]
    bands: dict[str, Any]
    started_at: datetime
    authored_at: datetime

    @classmethod
    def of(cls, record: SubmissionRecord) -> SubmissionOut:
        """Build from a registry record."""
        reporter = record.reporter
        return cls(
            id=record.id,
            patient_id=record.patient.id,
            patient_external_id=record.patient.external_id,
            center_id=record.center_id,
            flow_id=record.flow_id,
            flow_version=record.flow_version,
            status=record.status,
            channel=record.channel,
            version=record.version,
            replaces_id=record.replaces_id,
            reporter=ReporterOut(contact_id=reporter.contact_id, relationship=reporter.relationship)
            if reporter
            else None,
            answers=record.answers,
            scores=record.scores,
            bands=record.bands,
            started_at=record.started_at,
            authored_at=record.authored_at,
        )


class DeliveryOut(BaseModel):
    """Where the submission stands at one FHIR sink."""

    sink: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    operation_outcome: dict[str, Any] | None
    next_attempt_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: RegistryDelivery) -> DeliveryOut:
        """Build from a delivery row."""
        return cls(
            sink=row.sink,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            operation_outcome=row.operation_outcome,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
        )


class SubmissionDetailOut(SubmissionOut):
    """A submission with its deliveries to the registry sinks."""

    deliveries: list[DeliveryOut]


class SubmissionPage(BaseModel):
    """A page of submissions; pass `next_cursor` as `cursor` for the next (null: no more)."""

    items: list[SubmissionOut]
    next_cursor: str | None


@router.get("")
def list_submissions(
    request: Request,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ApiDep,
    patient_id: uuid.UUID | None = None,
    center_id: uuid.UUID | None = None,
    flow_id: str | None = None,
    status: SubmissionStatus | None = None,
    since: Annotated[datetime | None, Query(description="authored at or after (UTC)")] = None,
    until: Annotated[datetime | None, Query(description="authored before (UTC)")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SubmissionPage:
    """Submissions of the caller's centers, oldest first, a page at a time."""
    if flow_id is not None and not services.flows.has(flow_id):
        raise _invalid("flow_id", "unknown flow", flow_id)
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and until <= since:
        raise _invalid("until", "must be after since", until)
    where = SubmissionFilter(
        centers=frozenset(_centers(db, principal, center_id, patient_id)),
        since=since,
        until=until,
        flow_ids=frozenset([flow_id] if flow_id else []),
        patient_id=patient_id,
        status=status,
    )
    records = submission_query.page(db, where, after=_decode(cursor), limit=limit + 1)
    more, records = len(records) > limit, records[:limit]
    _audit_page(db, request, principal, records, now)
    db.commit()
    next_cursor = _encode(submission_query.key_of(records[-1])) if more else None
    return SubmissionPage(items=[SubmissionOut.of(r) for r in records], next_cursor=next_cursor)


@router.get("/{submission_id}")
def get_submission(
    request: Request, submission_id: uuid.UUID, db: DbDep, now: NowDep, principal: ApiDep
) -> SubmissionDetailOut:
    """One submission with its registry deliveries (sink, status, attempts, last outcome)."""
    record = _viewed(db, request, principal, submission_id, "submission.view", now)
    rows = submission_query.deliveries(db, record.id)
    db.commit()
    out = SubmissionOut.of(record).model_dump()
    return SubmissionDetailOut(**out, deliveries=[DeliveryOut.of(row) for row in rows])


@router.get(
    "/{submission_id}/fhir",
    response_class=FhirJSONResponse,
    responses={200: {"description": "A FHIR R4 transaction Bundle"}},
)
def get_submission_fhir(
    request: Request,
    submission_id: uuid.UUID,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ApiDep,
) -> FhirJSONResponse:
    """The submission as the FHIR R4 transaction Bundle pushed to each sink."""
    record = _viewed(db, request, principal, submission_id, "submission.fhir", now)
    if not services.flows.has(record.flow_id):
        raise Conflict("the flow of this submission is not deployed here")
    bundle = transaction_bundle(record, services.flows.get(record.flow_id))
    db.commit()
    return FhirJSONResponse(bundle)


def _viewed(
    db: Session,
    request: Request,
    principal: Principal,
    submission_id: uuid.UUID,
    action: str,
    now: datetime,
) -> SubmissionRecord:
    record = submission_query.visible(db, submission_id, principal.centers)
    patient = db.get(Patient, record.patient.id)
    assert patient is not None  # the foreign key guarantees it
    principal.audit(db, request, action=action, patient=patient, now=now, subject=str(record.id))
    return record


def _audit_page(
    db: Session,
    request: Request,
    principal: Principal,
    records: list[SubmissionRecord],
    now: datetime,
) -> None:
    # One event per patient whose submissions the page shows, as a view of each would be.
    shown = Counter(record.patient.id for record in records)
    for patient in submission_query.patients(db, records):
        detail = {"submissions": shown[patient.id]}
        principal.audit(
            db, request, action="submission.list", patient=patient, now=now, detail=detail
        )


def _centers(
    db: Session,
    principal: Principal,
    center_id: uuid.UUID | None,
    patient_id: uuid.UUID | None,
) -> set[uuid.UUID]:
    centers = principal.centers
    if center_id is not None:
        if center_id not in centers:
            raise NotFound("center")
        centers = {center_id}
    if patient_id is not None:
        patient = db.get(Patient, patient_id)
        if patient is None or patient.center_id not in centers:
            raise NotFound("patient")
    return centers


def _utc(moment: datetime | None) -> datetime | None:
    # A time without an offset is read as UTC, as the README says.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _encode(key: Key) -> str:
    authored, submission_id = key
    raw = json.dumps([authored.isoformat(), str(submission_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str | None) -> Key | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        authored, submission_id = json.loads(raw)
        key = (datetime.fromisoformat(authored), uuid.UUID(submission_id))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise _invalid("cursor", "not a cursor this API returned", cursor) from None
    if key[0].tzinfo is None:
        raise _invalid("cursor", "not a cursor this API returned", cursor)
    return key


def _invalid(field: str, message: str, value: object) -> RequestValidationError:
    error = {"type": "value_error", "loc": ["query", field], "msg": message, "input": str(value)}
    return RequestValidationError([error])
