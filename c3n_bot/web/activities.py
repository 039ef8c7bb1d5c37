"""Co-design activities and their RSVPs: what organisers follow (and every staff role may see).

No clinical data is on these pages: an activity, its answer counts, and the names families gave.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from c3n_bot.service import rsvps
from c3n_bot.web.deps import DbDep, StaffDep
from c3n_bot.web.templating import render

router = APIRouter(prefix="/activities")


@router.get("")
def activity_list(request: Request, db: DbDep, principal: StaffDep) -> Response:
    """The activities of the user's centers and networks, latest first, with answer counts."""
    lines = rsvps.activities(db, centers=principal.centers)
    return render(request, "activities.html", {"staff": principal.user, "lines": lines})


@router.get("/{activity_id}")
def activity_page(
    request: Request, activity_id: uuid.UUID, db: DbDep, principal: StaffDep
) -> Response:
    """One activity and who answered its invitation."""
    activity, answers = rsvps.answers(db, activity_id=activity_id, centers=principal.centers)
    context = {"staff": principal.user, "activity": activity, "answers": answers}
    return render(request, "activity.html", context)
