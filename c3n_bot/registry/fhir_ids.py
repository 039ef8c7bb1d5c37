"""Identifier systems, deterministic entry ids and references of the submission mapping."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import quote

from c3n_bot.engine.definitions import Flow
from c3n_bot.registry.questionnaire import C3N_FHIR_BASE, fhir_id

PATIENT_IDENTIFIER_SYSTEM = f"{C3N_FHIR_BASE}/sid/patient"
SUBMISSION_IDENTIFIER_SYSTEM = f"{C3N_FHIR_BASE}/sid/submission"
OBSERVATION_IDENTIFIER_SYSTEM = f"{C3N_FHIR_BASE}/sid/observation"
RELATED_PERSON_IDENTIFIER_SYSTEM = f"{C3N_FHIR_BASE}/sid/related-person"
DEVICE_IDENTIFIER_SYSTEM = f"{C3N_FHIR_BASE}/sid/device"
# Our own submission status (completed, partial, stopped), kept as a meta.tag.
SUBMISSION_STATUS_SYSTEM = f"{C3N_FHIR_BASE}/CodeSystem/submission-status"
# Links a correction to the submission it replaces (QuestionnaireResponse has no element).
REPLACES = f"{C3N_FHIR_BASE}/StructureDefinition/replaces"

# Every entry id is a uuid5 in this namespace, so the same record maps to the same ids.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, C3N_FHIR_BASE)
# FHIR search escapes these in a token value with a backslash.
_TOKEN_SPECIALS = ("\\", "|", ",", "$")

# How one resource points at another: `Patient/<id>` standalone, `urn:uuid:<id>` in a Bundle.
Reference = Callable[[str, str], str]


def entry_id(*parts: object) -> str:
    """A stable UUID (as text) for an entry named by its parts, e.g. (submission id, score)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(part) for part in parts)))


def relative_reference(resource_type: str, resource_id: str) -> str:
    """A reference to a resource on the same server."""
    return f"{resource_type}/{resource_id}"


def bundle_reference(resource_type: str, resource_id: str) -> str:
    """A reference to another entry of the same transaction Bundle (its fullUrl)."""
    return f"urn:uuid:{resource_id}"


def questionnaire_canonical(flow: Flow, version: str) -> str:
    """The canonical URL of the exported Questionnaire at the version that was answered."""
    url = flow.url or f"{C3N_FHIR_BASE}/Questionnaire/{fhir_id(flow.id)}"
    return f"{url}|{version}"


def observation_identifier(submission_id: uuid.UUID, score_id: str) -> str:
    """The identifier value of a score's Observation: one per (submission, score)."""
    return f"{submission_id}/{score_id}"


def identifier_query(system: str, value: str) -> str:
    """A search by identifier (`identifier=system|value`), escaped for FHIR and for a URL."""
    for special in _TOKEN_SPECIALS:
        value = value.replace(special, f"\\{special}")
    return "identifier=" + quote(f"{system}|{value}", safe=":/|")
