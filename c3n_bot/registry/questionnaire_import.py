"""FHIR R4 Questionnaire JSON to flow YAML: the import half of the Questionnaire mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from c3n_bot.engine.loader import FlowError, parse_flow
from c3n_bot.registry.questionnaire import ITEM_CONTROL, QuestionnaireImportError
from c3n_bot.registry.questionnaire_items import (
    Entry,
    Json,
    Question,
    first_coding,
    import_item,
    objects,
    text_of,
)

ITEM_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# One line per text, as in hand-written flows (folded lines are harder to grep and review).
WIDTH = 1 << 16


class _Dumper(yaml.SafeDumper):
    """Writes shared objects out in full: a flow file has no YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def flow_from_questionnaire(resource: Json) -> str:
    """Flow YAML for an R4 Questionnaire; the text always passes `parse_flow`.

    Item types choice, integer, boolean, string/text, date and display are imported; a
    group's children are flattened into the flow (its text becomes a display item, its
    enableWhen is added to each child's). A linkId that is no valid item id ("1.1",
    "/44250-9") gets a safe id ("q_1_1", "q_44250_9") used in every enableWhen too.
    Options come from answerOption valueCoding (with ordinalValue as value), valueString
    or valueInteger. Anything else raises QuestionnaireImportError naming the linkId.
    """
    if resource.get("resourceType") != "Questionnaire":
        raise QuestionnaireImportError("not a FHIR Questionnaire (resourceType)")
    flow_id = _flow_id(resource)
    entries = _flatten(objects(resource, "item", "Questionnaire"), None)
    ids = _assign_ids(entries)
    questions: dict[str, Question] = {}
    items = [item for entry in entries if (item := import_item(entry, ids, questions, flow_id))]
    if not items:
        raise QuestionnaireImportError("the Questionnaire has no items a flow can ask")
    data: dict[str, Any] = {
        "id": flow_id,
        "version": _version(resource.get("version")),
        "kind": "questionnaire",
        "title": text_of(resource.get("title")) or text_of(resource.get("name")) or flow_id,
    }
    if description := text_of(resource.get("description")):
        data["description"] = description
    url = resource.get("url")
    if isinstance(url, str) and re.match(r"^https?://", url):
        data["url"] = url
    if code := first_coding(resource.get("code")):
        data["code"] = code
    answer_sets = _share_answer_sets(items)
    if answer_sets:
        data["answer_sets"] = answer_sets
    data["items"] = items
    header = (
        f"# Imported from FHIR Questionnaire {url or resource.get('id') or flow_id} "
        "by `c3n-bot flows import-fhir`.\n# Review it, then add intro, scores and alerts.\n"
    )
    text = header + yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=WIDTH
    )
    try:
        parse_flow(text, f"<{flow_id}>")
    except FlowError as exc:
        raise QuestionnaireImportError(f"the imported flow is not valid:\n{exc}") from None
    return text


def _flatten(items: Sequence[Json], inherited: tuple[list[Json], str] | None) -> list[Entry]:
    out: list[Entry] = []
    for raw in items:
        link_id = raw.get("linkId")
        if not isinstance(link_id, str) or not link_id:
            raise QuestionnaireImportError(f"an item has no linkId: {json.dumps(raw)[:80]}")
        conditions, behavior = _merge(link_id, inherited, raw)
        scope = (conditions, behavior) if conditions else None
        children = objects(raw, "item", link_id)
        if raw.get("type") == "group":
            if raw.get("repeats"):
                raise QuestionnaireImportError(f"item {link_id!r}: repeating groups unsupported")
            if text_of(raw.get("text")):
                out.append(Entry(raw, link_id, conditions, behavior, heading=True))
            out.extend(_flatten(children, scope))
            continue
        helps = [c for c in children if _is_help(c)]
        entry = Entry(raw, link_id, conditions, behavior)
        entry.help = text_of(helps[0].get("text")) if helps else None
        out.append(entry)
        out.extend(_flatten([c for c in children if not _is_help(c)], scope))
    return out


def _merge(
    link_id: str, inherited: tuple[list[Json], str] | None, raw: Json
) -> tuple[list[Json], str]:
    own = objects(raw, "enableWhen", link_id)
    behavior = raw.get("enableBehavior", "all")
    if behavior not in ("all", "any"):
        raise QuestionnaireImportError(f"item {link_id!r}: enableBehavior {behavior!r}")
    if inherited is None or not own:
        return (own, behavior) if inherited is None else inherited
    parents, parent_behavior = inherited
    if (len(own) == 1 or behavior == "all") and (len(parents) == 1 or parent_behavior == "all"):
        return [*parents, *own], "all"
    raise QuestionnaireImportError(
        f"item {link_id!r}: its enableWhen and its parent's cannot be combined in one list"
    )


def _is_help(raw: Json) -> bool:
    if raw.get("type") != "display":
        return False
    for extension in objects(raw, "extension", str(raw.get("linkId"))):
        if extension.get("url") == ITEM_CONTROL:
            codings = (extension.get("valueCodeableConcept") or {}).get("coding") or []
            if any(c.get("code") == "help" for c in codings):
                return True
    return False


def _assign_ids(entries: list[Entry]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for entry in entries:
        if entry.link_id in ids:
            raise QuestionnaireImportError(f"linkId {entry.link_id!r} is used twice")
        ids[entry.link_id] = _safe_id(entry.link_id, set(ids.values()))
    return ids


def _safe_id(link_id: str, taken: set[str]) -> str:
    if ITEM_ID.fullmatch(link_id) and link_id not in taken:
        return link_id
    base = "q_" + (re.sub(r"[^A-Za-z0-9]+", "_", link_id).strip("_") or "item")
    base = base[:58]
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}_{number}", number + 1
    return candidate


def _share_answer_sets(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Option lists used by several items become named answer sets, as hand-written flows do."""
    uses: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if isinstance(item.get("options"), list):
            uses.setdefault(json.dumps(item["options"], sort_keys=True), []).append(item)
    sets: dict[str, list[dict[str, Any]]] = {}
    for shared in (group for group in uses.values() if len(group) > 1):
        name = f"answers_{len(sets) + 1}"
        sets[name] = shared[0]["options"]
        for item in shared:
            item["options"] = name
    return sets


def _flow_id(resource: Json) -> str:
    for candidate in (resource.get("id"), resource.get("name")):
        if isinstance(candidate, str):
            slug = re.sub(r"[^a-z0-9]+", "_", candidate.lower()).strip("_")
            if slug:
                return (slug if slug[0].isalpha() else f"q_{slug}")[:64]
    return "questionnaire"


def _version(raw: object) -> str:
    version = re.sub(r"[^0-9A-Za-z.+-]+", "-", str(raw)).strip("-")[:32] if raw else ""
    return version or "1"
