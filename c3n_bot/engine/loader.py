"""Turn flow YAML text into a Flow, reporting every problem with file, line and field.

One pass reports everything: YAML syntax (which stops the pass), duplicate keys, the JSON
Schema (each error at its most precise path), then the semantic checks of `flow_checks`
on whatever parts are usable. Nothing but FlowError ever escapes `parse_flow`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import yaml

from c3n_bot.engine.definitions import (
    AlertRule,
    Band,
    Coding,
    EnableWhen,
    Flow,
    FlowKind,
    Item,
    ItemType,
    Numbering,
    Option,
    Score,
)
from c3n_bot.engine.flow_checks import CONTEXT_PREFIXES, Path, check_flow

__all__ = ["CONTEXT_PREFIXES", "SCHEMA", "FlowError", "FlowIssue", "parse_flow"]

SCHEMA: dict[str, Any] = json.loads(
    resources.files("c3n_bot.engine").joinpath("flow.schema.json").read_text("utf-8")
)
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
MERGE_TAG = "tag:yaml.org,2002:merge"
# A flow has a few hundred values; far more once aliases are expanded is an alias bomb.
MAX_NODES = 100_000
Problem = tuple[Path, str]


@dataclass(frozen=True)
class FlowIssue:
    """One problem in a flow file."""

    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.message}"


class FlowError(Exception):
    """A flow file has problems; `issues` lists them all."""

    def __init__(self, issues: list[FlowIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def parse_flow(text: str, source: str) -> Flow:
    """Parse and check one flow file's text; raises FlowError listing every issue."""
    node, data = _read_yaml(text, source)
    lines = _line_map(node)
    issues = [FlowIssue(source, line, _field(path), why) for path, line, why in _dup_keys(node)]
    found: list[Problem] = []
    if isinstance(data, dict):
        found.extend(schema_problems(data))
        check_flow(data, lambda path, message: found.append((path, message)))
    else:
        found.append(((), "a flow file must be a mapping of fields (id, version, items, ...)"))
    for path, message in found:
        issue = FlowIssue(source, _line_of(lines, path), _field(path), message)
        if issue not in issues:
            issues.append(issue)
    if issues or not isinstance(data, dict):
        raise FlowError(sorted(issues, key=lambda i: i.line))
    return _build(data, source)


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, object]:
    """The composed node tree (for lines) and the data built from it, or a FlowError."""
    try:
        return _compose(text, source)
    except yaml.YAMLError as exc:
        raise FlowError([_yaml_issue(exc, text, source)]) from None
    except RecursionError:
        raise FlowError([FlowIssue(source, 1, "(yaml)", "nested too deeply")]) from None


def _compose(text: str, source: str) -> tuple[yaml.Node | None, object]:
    """One YAML document as nodes and data (python tags refused: the safe loader)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        _check_tree(node, source)
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _yaml_issue(exc: yaml.YAMLError, text: str, source: str) -> FlowIssue:
    """A YAML error as an issue at the line where the parser gave up."""
    message, line = str(exc).splitlines()[0], 1
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = ", ".join(p for p in (exc.context, exc.problem) if p) or message
        line = mark.line + 1 if mark else 1
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
    return FlowIssue(source, line, "(yaml)", message)


def _check_tree(node: yaml.Node | None, source: str) -> None:
    """Refuse alias cycles and alias bombs before anything walks or builds the tree."""
    budget = [MAX_NODES]

    def walk(current: yaml.Node, ancestors: frozenset[int]) -> None:
        budget[0] -= 1
        line = current.start_mark.line + 1
        if id(current) in ancestors:
            raise FlowError([FlowIssue(source, line, "(yaml)", "an alias refers to itself")])
        if budget[0] < 0:
            message = f"more than {MAX_NODES} values once aliases are expanded"
            raise FlowError([FlowIssue(source, line, "(yaml)", message)])
        if isinstance(current, yaml.CollectionNode):
            inner = ancestors | {id(current)}
            for entry in current.value:  # mapping entries are (key, value) pairs
                for child in entry if isinstance(entry, tuple) else (entry,):
                    walk(child, inner)

    if node is not None:
        walk(node, frozenset())


def _dup_keys(node: yaml.Node | None, path: Path = ()) -> Iterator[tuple[Path, int, str]]:
    """Each repeated key of every mapping, at its line (YAML keeps the last silently)."""
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield from _dup_keys(child, (*path, index))
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[str, int] = {}
    for key, value in node.value:
        scalar = isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG
        line = key.start_mark.line + 1
        if scalar and key.value in first:
            message = f"duplicate key {key.value!r} (first at line {first[key.value]})"
            yield (*path, key.value), line, message
        if scalar:
            first.setdefault(key.value, line)
            yield from _dup_keys(value, (*path, key.value))


def schema_problems(data: dict[str, Any]) -> Iterator[Problem]:
    """Every JSON Schema error of the data, each at its most precise path."""
    for error in _VALIDATOR.iter_errors(data):
        path = tuple(error.absolute_path)
        instance = error.instance
        if error.validator == "additionalProperties" and isinstance(instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in (k for k in instance if k not in allowed):
                yield (*path, str(key)), _unknown(str(key), allowed)
        elif error.validator == "required" and isinstance(instance, dict):
            for key in (k for k in error.validator_value if k not in instance):
                yield path, f"missing {key!r}"
        elif error.validator == "type":
            wanted = error.validator_value
            types = wanted if isinstance(wanted, list) else [wanted]
            expected = " or ".join(json.dumps(t) for t in types)
            yield path, f"must be of type {expected}, not {_json_type(instance)}"
        else:
            message = error.message
            yield path, message if len(message) <= 200 else f"{message[:197]}..."


def _unknown(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"unknown field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _json_type(value: object) -> str:
    """The JSON name of a YAML value's type (a date written unquoted is no string)."""
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    names.update({dict: "object", type(None): "null"})
    return f'"{names.get(type(value), type(value).__name__)}"'


def _build(data: dict[str, Any], source: str) -> Flow:
    """The Flow of data that passed every check."""
    sets = {
        name: tuple(map(_option, options)) for name, options in data.get("answer_sets", {}).items()
    }
    return Flow(
        id=data["id"],
        version=data["version"],
        kind=FlowKind(data["kind"]),
        title=data["title"],
        items=tuple(_item(raw, sets) for raw in data["items"]),
        intro=data.get("intro"),
        proxy_intro=data.get("proxy_intro"),
        outro=data.get("outro", Flow.outro),
        result_message=data.get("result_message"),
        scores=tuple(_score(s) for s in data.get("scores", [])),
        alerts=tuple(_alert(a) for a in data.get("alerts", [])),
        numbering=Numbering(data.get("numbering", "position")),
        keywords=tuple(k.upper() for k in data.get("keywords", [])),
        expires_after_hours=data.get("expires_after_hours", 72),
        url=data.get("url"),
        code=_coding(data.get("code")),
        description=data.get("description"),
        source=source,
    )


def _item(raw: dict[str, Any], answer_sets: dict[str, tuple[Option, ...]]) -> Item:
    """An item; a display item is never required, any other one is unless it says not."""
    item_type = ItemType(raw["type"])
    spec = raw.get("options", ())
    options = answer_sets[spec] if isinstance(spec, str) else tuple(map(_option, spec))
    conditions = tuple(
        EnableWhen(question=c["question"], operator=c["operator"], answer=c.get("answer", True))
        for c in raw.get("enable_when", [])
    )
    return Item(
        id=raw["id"],
        type=item_type,
        text=raw["text"],
        proxy_text=raw.get("proxy_text"),
        help=raw.get("help"),
        code=_coding(raw.get("code")),
        options=options,
        required=raw.get("required", item_type != ItemType.DISPLAY),
        min=raw.get("min"),
        max=raw.get("max"),
        enable_when=conditions,
        enable_behavior=raw.get("enable_behavior", "all"),
    )


def _option(raw: dict[str, Any]) -> Option:
    return Option(**{**raw, "aliases": tuple(raw.get("aliases", ()))})


def _coding(raw: dict[str, Any] | None) -> Coding | None:
    # The schema allows exactly the dataclass's fields in a coding, band, score and alert.
    return None if raw is None else Coding(**raw)


def _score(raw: dict[str, Any]) -> Score:
    bands = tuple(Band(**band) for band in raw.get("bands", ()))
    return Score(**{**raw, "code": _coding(raw.get("code")), "bands": bands})


def _alert(raw: dict[str, Any]) -> AlertRule:
    return AlertRule(**raw)


def _line_map(node: yaml.Node | None) -> dict[Path, int]:
    """The line of every path: of its key for a mapping entry, else of the value."""
    lines: dict[Path, int] = {}

    def walk(current: yaml.Node, path: Path) -> None:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    child = (*path, key.value)
                    walk(value, child)
                    lines[child] = key.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for index, value in enumerate(current.value):
                walk(value, (*path, index))

    if node is not None:
        walk(node, ())
    return lines


def _line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of a path, else of its deepest ancestor (a missing key: its parent's)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


def _field(path: Path) -> str:
    """A path as written in a report: items[2].options[0].code."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"
