"""The FHIR R4 Questionnaire mapping's shared vocabulary: extension URLs, ids, errors."""

from __future__ import annotations

import json
from typing import Any

# The mapping lives in three modules: questionnaire_export (Flow -> Questionnaire JSON),
# questionnaire_import (Questionnaire JSON -> flow YAML) and questionnaire_items (one
# imported item). This module holds what both directions must agree on.

C3N_FHIR_BASE = "https://c3n-bot.example/fhir"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
# Our own extension: the wording used when a parent answers for a child.
PROXY_TEXT = f"{C3N_FHIR_BASE}/StructureDefinition/proxy-text"
# An item's help text travels as a child display item with this linkId suffix.
HELP_SUFFIX = "-help"


class QuestionnaireExportError(ValueError):
    """A flow holds something an R4 Questionnaire cannot express; the message names the item."""


class QuestionnaireImportError(ValueError):
    """A Questionnaire holds something a flow cannot express; the message names the linkId."""


def local_system(flow_id: str) -> str:
    """The code system of a flow's own codes: the system of every option that names none."""
    return f"{C3N_FHIR_BASE}/CodeSystem/{flow_id}"


def fhir_id(flow_id: str) -> str:
    """A flow id as a FHIR resource id, which allows `-` and `.` but no `_`."""
    return flow_id.replace("_", "-")


def questionnaire_name(flow_id: str) -> str:
    """The computable Questionnaire.name of a flow: its id in CamelCase (`ibd_checkin`...)."""
    return "".join(part[:1].upper() + part[1:] for part in flow_id.split("_"))


def questionnaire_json(resource: dict[str, Any]) -> str:
    """A resource as the JSON text written to files: stable, indented, UTF-8 kept as is."""
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
