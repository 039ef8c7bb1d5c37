"""Appointments from a CSV export (an EHR's or a clinic's sheet): create, move or cancel.

Layout (UTF-8, a header row, comma-separated; column order is free, unknown columns are
ignored)::

    patient_external_id,center,starts_at_local,location,external_id,status
    P-1001,riverside,2026-03-09 09:00,Clinic B,EHR-555,
    P-1002,riverside,2026-03-10 14:30,,EHR-556,cancelled

- ``patient_external_id`` (required): the patient's id in the network, within ``center``.
- ``center`` (required): the center's slug (``NETWORK/CENTER`` when slugs repeat).
- ``starts_at_local`` (required): ``YYYY-MM-DD HH:MM`` in the PATIENT's timezone (a value
  with a UTC offset is taken as is).
- ``location``, ``external_id``: optional. ``external_id`` (the source system's appointment
  id) makes re-imports idempotent: same id and time → unchanged; a new time → moved.
  Without it, a booked visit of the patient at the same time counts as the same visit.
- ``status``: optional, ``booked`` (the default) or ``cancelled``.

Each row gets a result ``{row, status, appointment_id?, error?}``: ``row`` is the sheet's row
number (the header is row 1), ``status`` one of created, moved, cancelled, unchanged, error.
A bad row never fails the file: each row runs in its own savepoint. Only an unreadable file
(not UTF-8 text, not CSV, no required columns, too large) raises ``InvalidInput("file")``.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from c3n_bot.service import audit, staff, visits
from c3n_bot.service.errors import InvalidInput, ServiceError
from c3n_bot.store.models import Appointment, Patient
from c3n_bot.store.models.scheduling import AppointmentStatus

REQUIRED = ("patient_external_id", "center", "starts_at_local")
OPTIONAL = ("location", "external_id", "status")
MAX_BYTES = 5_000_000
MAX_ROWS = 20_000
CANCELLED_WORDS = ("cancelled", "canceled")
RowStatus = Literal["created", "moved", "cancelled", "unchanged", "error"]


@dataclass(frozen=True)
class RowResult:
    """What became of one row."""

    row: int
    status: RowStatus
    appointment_id: uuid.UUID | None = None
    error: str | None = None


class RowError(Exception):
    """A row that cannot be imported; the message says why."""


def read_rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(sheet row, values by column) of each non-blank row; InvalidInput("file") if not our CSV."""
    if len(data) > MAX_BYTES:
        raise InvalidInput("file", f"is larger than {MAX_BYTES // 1_000_000} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file", "is not UTF-8 text (save the sheet as CSV UTF-8)") from None
    if "\x00" in text:
        raise InvalidInput("file", "is not a CSV file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not any(header):
            raise InvalidInput("file", "is empty: expected a header row")
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise InvalidInput("file", f"is missing the column(s) {', '.join(missing)}")
        rows: list[tuple[int, dict[str, str]]] = []
        for number, values in enumerate(reader, start=2):
            if not any(value.strip() for value in values):
                continue  # a blank line
            if len(rows) >= MAX_ROWS:
                raise InvalidInput("file", f"has more than {MAX_ROWS} rows")
            cells = {name: value.strip() for name, value in zip(header, values, strict=False)}
            rows.append((number, cells))
    except csv.Error as exc:
        raise InvalidInput("file", f"is not a CSV file ({exc})") from None
    return rows


def import_csv(
    db: Session,
    *,
    data: bytes,
    allowed_centers: set[uuid.UUID],
    now: datetime,
    actor: audit.Actor,
) -> list[RowResult]:
    """Import every row (each in a savepoint, audited when it changes something)."""
    rows = read_rows(data)
    importer = _Importer(db, allowed_centers, now, actor)
    return [importer.run(number, row) for number, row in rows]


class _Importer:
    def __init__(
        self, db: Session, allowed: set[uuid.UUID], now: datetime, actor: audit.Actor
    ) -> None:
        self.db, self.allowed, self.now, self.actor = db, allowed, now, actor
        self.seen: dict[str, int] = {}
        self.centers: dict[str, uuid.UUID | str] = {}

    def run(self, number: int, row: dict[str, str]) -> RowResult:
        try:
            with self.db.begin_nested():
                return self._row(number, row)
        except (RowError, ServiceError) as exc:
            return RowResult(number, "error", error=_message(exc))
        except IntegrityError:  # another import or request took the external_id meanwhile
            return RowResult(number, "error", error="clashed with a concurrent change: retry")

    def _row(self, number: int, row: dict[str, str]) -> RowResult:
        external_id = row.get("external_id") or None
        cancel = _wants_cancel(row.get("status", ""))
        location = row.get("location") or None
        if external_id is not None:
            if len(external_id) > 64:
                raise RowError("external_id is longer than 64 characters")
            if external_id in self.seen:
                raise RowError(f"duplicate external_id (first on row {self.seen[external_id]})")
            self.seen[external_id] = number
        if location is not None and len(location) > 200:
            raise RowError("location is longer than 200 characters")
        patient = self._patient(row)
        start = _start(row.get("starts_at_local", ""), patient.timezone)
        existing = self._existing(patient, external_id, start)
        if cancel:
            if existing is None or existing.status == AppointmentStatus.CANCELLED:
                return RowResult(number, "unchanged", existing.id if existing else None)
            visits.cancel_appointment(
                self.db, appointment_id=existing.id, allowed_centers=self.allowed, now=self.now
            )
            return self._done(number, "cancelled", existing, patient)
        if existing is not None:
            if location is not None and existing.location != location:
                existing.location = location
            if existing.starts_at == start:
                return RowResult(number, "unchanged", existing.id)
            _not_past(start, self.now)
            visits.move_appointment(
                self.db,
                appointment_id=existing.id,
                starts_at=start,
                allowed_centers=self.allowed,
                now=self.now,
            )
            return self._done(number, "moved", existing, patient)
        _not_past(start, self.now)
        created = visits.create_appointment(
            self.db,
            patient_id=patient.id,
            starts_at=start,
            location=location,
            external_id=external_id,
            allowed_centers=self.allowed,
            now=self.now,
        )
        return self._done(number, "created", created, patient)

    def _patient(self, row: dict[str, str]) -> Patient:
        ref = row.get("center", "")
        if not ref:
            raise RowError("center is empty")
        if ref not in self.centers:
            try:
                self.centers[ref] = staff.find_center_id(self.db, ref)
            except ServiceError as exc:
                self.centers[ref] = _message(exc)
        center = self.centers[ref]
        if isinstance(center, str):
            raise RowError(center)
        if center not in self.allowed:
            raise RowError(f"center not allowed: {ref}")
        external_id = row.get("patient_external_id", "")
        patient = self.db.scalar(
            select(Patient).where(Patient.center_id == center, Patient.external_id == external_id)
        )
        if patient is None:
            raise RowError(f"unknown patient: {external_id!r} in center {ref}")
        return patient

    def _existing(
        self, patient: Patient, external_id: str | None, start: datetime
    ) -> Appointment | None:
        if external_id is not None:
            found = self.db.scalar(
                select(Appointment).where(Appointment.external_id == external_id)
            )
            if found is not None and found.patient_id != patient.id:
                raise RowError("external_id belongs to another patient's appointment")
            return found
        return self.db.scalar(
            select(Appointment)
            .where(
                Appointment.patient_id == patient.id,
                Appointment.starts_at == start,
                Appointment.status.not_in(visits.CLOSED),
            )
            .limit(1)
        )

    def _done(
        self, number: int, status: RowStatus, appointment: Appointment, patient: Patient
    ) -> RowResult:
        audit.record(
            self.db,
            actor=self.actor,
            action=f"appointment.import.{status}",
            patient_id=patient.id,
            center_id=patient.center_id,
            subject=str(appointment.id),
            now=self.now,
            detail={"row": number},
        )
        return RowResult(number, status, appointment.id)


def _wants_cancel(status: str) -> bool:
    word = status.strip().lower()
    if word in ("", "booked"):
        return False
    if word in CANCELLED_WORDS:
        return True
    raise RowError(f"status must be booked or cancelled, not {status!r}")


def _start(value: str, tz: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RowError(
            f"bad date {value!r}: starts_at_local must look like 2026-03-09 09:00"
        ) from None
    return visits.to_instant(parsed, tz)


def _not_past(start: datetime, now: datetime) -> None:
    if start <= now:
        raise RowError("starts_at_local is in the past")


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, InvalidInput) else str(exc)
