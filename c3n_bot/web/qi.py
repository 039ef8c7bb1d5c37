"""QI pages: a center's weekly run charts of response rate and IBD remission."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from c3n_bot.service import qi, run_charts
from c3n_bot.service.errors import NotFound
from c3n_bot.service.timing import load_zone
from c3n_bot.web.charts import data_table, line_chart
from c3n_bot.web.deps import DbDep, NowDep, StaffDep
from c3n_bot.web.templating import render

router = APIRouter()


@router.get("/qi")
def qi_index(request: Request, principal: StaffDep) -> Response:
    """The signed-in user's centers to choose from (straight to the only one)."""
    centers = sorted(principal.user.centers, key=lambda c: c.name)
    if len(centers) == 1:
        return RedirectResponse(f"/qi/{centers[0].id}", status.HTTP_303_SEE_OTHER)
    return render(request, "qi_index.html", {"staff": principal.user, "centers": centers})


@router.get("/qi/{center_id}")
def qi_page(
    request: Request, center_id: uuid.UUID, db: DbDep, now: NowDep, principal: StaffDep
) -> Response:
    """Run charts of one of the user's centers: aggregates only, no patient's data."""
    center = next((c for c in principal.user.centers if c.id == center_id), None)
    if center is None:
        raise NotFound("center")
    weeks = qi.complete_weeks(now, load_zone(center.timezone))
    measures = {
        "response": qi.response_rate(db, center_id=center.id, weeks=weeks),
        "remission": qi.remission(db, center_id=center.id, weeks=weeks),
    }
    charts = {
        name: _chart(weeks, measure, run_charts.analyse(measure.percentages))
        for name, measure in measures.items()
    }
    context = {
        "staff": principal.user,
        "center": center,
        "charts": charts,
        "line_chart": line_chart,
        "data_table": data_table,
    }
    return render(request, "qi.html", context)


def _chart(
    weeks: list[qi.Week], measure: qi.Measure, chart: run_charts.RunChart
) -> dict[str, object]:
    values = measure.percentages
    return {
        "points": [
            (week.start.isoformat(), value) for week, value in zip(weeks, values, strict=True)
        ],
        "run": chart,
        "counts": list(zip(measure.numerators, measure.denominators, strict=True)),
    }
