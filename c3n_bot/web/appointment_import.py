"""Appointments from a CSV export, uploaded from the dashboard: one result per row, in a table.

The same import the CLI and the JSON API run (:mod:`c3n_bot.service.visit_import`): a bad row
is reported and the others are kept; only a file that is not our CSV is refused as a whole.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile, status
from starlette.responses import Response

from c3n_bot.service import visit_import
from c3n_bot.service.errors import InvalidInput
from c3n_bot.web.access import ClinicalDep, ClinicalFormDep
from c3n_bot.web.deps import DbDep, NowDep
from c3n_bot.web.templating import render

router = APIRouter(prefix="/appointments/import")


@router.get("")
def form(request: Request, principal: ClinicalDep) -> Response:
    """The upload form and the expected columns."""
    context = {"staff": principal.user, "required": visit_import.REQUIRED}
    return render(request, "appointment_import.html", context)


@router.post("")
def upload(
    request: Request,
    db: DbDep,
    now: NowDep,
    principal: ClinicalFormDep,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Import every row of the file; the page lists what became of each."""
    context: dict[str, object] = {
        "staff": principal.user,
        "required": visit_import.REQUIRED,
        "filename": file.filename or "",
    }
    try:
        results = visit_import.import_csv(
            db,
            data=file.file.read(visit_import.MAX_BYTES + 1),
            allowed_centers=principal.centers,
            now=now,
            actor=principal.actor(request),
        )
    except InvalidInput as exc:
        context["error"] = str(exc)
        return render(
            request, "appointment_import.html", context, status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    db.commit()
    context["results"] = results
    context["counts"] = sorted(Counter(result.status for result in results).items())
    return render(request, "appointment_import.html", context)
