"""Who may open which dashboard page: role checks as dependencies.

- Clinical pages (a patient's chart and its actions, the simulator, appointment import):
  clinicians and admins, each only for patients of their own centers. A patient of another
  center is a 404, never a 403, so a page never says whether a record exists.
- An organiser sees activities and their RSVPs, never clinical answers: a clinical page is a
  403 for the role, answered before any patient is looked up.
- Admin pages (audit log, users, centers, API keys): admins only, for their own centers.

Form posts check the session first (no session: the sign-in redirect, as for a page), then
the role, then the CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status

from c3n_bot.store.base import Role
from c3n_bot.web.csrf import verify_csrf
from c3n_bot.web.deps import Principal, StaffDep

CLINICAL_ROLES = (Role.CLINICIAN, Role.ADMIN)


# The checks read only the signed-in principal: async, so each runs on the event loop instead
# of costing a hop to the thread pool and back.
async def clinical(principal: StaffDep) -> Principal:
    """A signed-in clinician or admin (403 for an organiser)."""
    return require_clinical(principal)


def require_clinical(principal: Principal) -> Principal:
    """As :func:`clinical`, called directly (by a page run in one thread hop)."""
    if principal.role not in CLINICAL_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for your role")
    return principal


async def admin(principal: StaffDep) -> Principal:
    """A signed-in admin (403 for other roles)."""
    if principal.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for your role")
    return principal


def may_read_messages(principal: Principal, center_id: object) -> bool:
    """Message bodies are for the clinicians of the patient's center only."""
    return principal.role == Role.CLINICIAN and center_id in principal.centers


ClinicalDep = Annotated[Principal, Depends(clinical)]
AdminDep = Annotated[Principal, Depends(admin)]
CsrfDep = Annotated[None, Depends(verify_csrf)]


async def clinical_form(principal: ClinicalDep, _csrf: CsrfDep) -> Principal:
    """A clinician or admin posting a form of this session."""
    return principal


async def admin_form(principal: AdminDep, _csrf: CsrfDep) -> Principal:
    """An admin posting a form of this session."""
    return principal


ClinicalFormDep = Annotated[Principal, Depends(clinical_form)]
AdminFormDep = Annotated[Principal, Depends(admin_form)]
