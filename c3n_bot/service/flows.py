"""The deployment's flows, read once from the flows folder and looked up by id or keyword."""

from __future__ import annotations

import re
from pathlib import Path

from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.loader import FlowError, FlowIssue, parse_flow


class FlowCatalog:
    """Every flow of a folder; a broken file stops start-up with all its issues."""

    def __init__(self, flows: list[Flow]) -> None:
        self._by_id = {flow.id: flow for flow in flows}
        self._by_keyword = {word: flow for flow in flows for word in flow.keywords}

    @classmethod
    def from_dir(cls, directory: Path) -> FlowCatalog:
        """Load every *.yaml file of a folder."""
        flows, issues = load_dir(directory)
        if issues:
            raise FlowError(issues)
        return cls(flows)

    def get(self, flow_id: str) -> Flow:
        """The flow with this id (KeyError when unknown)."""
        return self._by_id[flow_id]

    def has(self, flow_id: str) -> bool:
        """Whether a flow with this id exists."""
        return flow_id in self._by_id

    def by_keyword(self, word: str) -> Flow | None:
        """The flow a keyword such as REPORT starts."""
        return self._by_keyword.get(word.strip().upper())

    def all(self) -> list[Flow]:
        """Every flow, by id."""
        return [self._by_id[key] for key in sorted(self._by_id)]


def load_dir(directory: Path) -> tuple[list[Flow], list[FlowIssue]]:
    """Parse every flow file of a folder, collecting the issues of all of them."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        return [], [FlowIssue(str(directory), 0, "(folder)", "no *.yaml flow files")]
    flows: list[Flow] = []
    issues: list[FlowIssue] = []
    first: dict[str, Path] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            flow = parse_flow(text, str(path))
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(FlowIssue(str(path), 1, "(file)", str(exc)))
            continue
        except FlowError as exc:
            issues.extend(exc.issues)
            continue
        if flow.id in first:
            found = re.search(r"^id:", text, re.MULTILINE)
            line = text.count("\n", 0, found.start()) + 1 if found else 1
            issues.append(
                FlowIssue(str(path), line, "id", f"{flow.id!r} is also the id of {first[flow.id]}")
            )
        first.setdefault(flow.id, path)
        flows.append(flow)
    return flows, issues
