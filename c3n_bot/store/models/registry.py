"""Delivery of each submission to each configured FHIR sink."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from c3n_bot.store.base import Base, str_enum
from c3n_bot.store.types import BigId, Json


class DeliveryStatus(enum.StrEnum):
    """Where one (submission, sink) push stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class RegistryDelivery(Base):
    """One row per (submission, sink): sent with retries, never twice on the server."""

    __tablename__ = "registry_deliveries"
    __table_args__ = (
        UniqueConstraint("submission_id", "sink"),
        Index("ix_registry_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("submissions.id"))
    sink: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status_code: Mapped[int | None]
    # The server's OperationOutcome on a permanent failure, for staff to read.
    operation_outcome: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
