"""Correct a submission over the JSON API: a new version, rescored and sent to the sinks."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from c3n_bot.service import submissions
from c3n_bot.store.base import Role
from c3n_bot.web.deps import ApiDep, DbDep, NowDep, ServicesDep

router = APIRouter(prefix="/submissions", tags=["submissions"])
# Organisers run co-design work; clinical data is corrected by the care team.
MAY_CORRECT = frozenset({Role.CLINICIAN, Role.ADMIN})


class CorrectionIn(BaseModel):
    """New answers by item id: an option code, integer, boolean, ISO date or text; null clears."""

    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] = Field(min_length=1, max_length=100)


class CorrectionOut(BaseModel):
    """The new version of the submission."""

    id: uuid.UUID
    version: int
    replaces_id: uuid.UUID
    scores: dict[str, Any]
    bands: dict[str, Any]


@router.post("/{submission_id}/corrections", status_code=status.HTTP_201_CREATED)
def correct_submission(
    request: Request,
    submission_id: uuid.UUID,
    data: CorrectionIn,
    db: DbDep,
    now: NowDep,
    services: ServicesDep,
    principal: ApiDep,
) -> CorrectionOut:
    """Correct the newest version of a submission; 409 for an older one."""
    if principal.role not in MAY_CORRECT:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="not allowed for your role")
    new = submissions.correct(
        db,
        submission_id=submission_id,
        changes=data.answers,
        services=services,
        actor=principal.actor(request),
        now=now,
        allowed_centers=principal.centers,
    )
    db.commit()
    assert new.replaces_id is not None
    return CorrectionOut(
        id=new.id,
        version=new.version,
        replaces_id=new.replaces_id,
        scores=new.scores,
        bands=new.bands,
    )
