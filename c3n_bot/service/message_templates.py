"""Organiser-written messages: Jinja2 in a sandbox, over a fixed set of variables.

A template may print variables, apply a few text filters and use `if`; nothing else (no
loops, calls, attributes or imports), so rendering one for 100,000 families is cheap and no
template can run away. A misspelt variable is an error shown in the preview, never a blank.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_LENGTH = 2000
# What every template may use, and what only a message about an activity may use.
RECIPIENT_VARIABLES = ("first_name", "program", "center")
ACTIVITY_VARIABLES = ("activity_title", "activity_time", "activity_place", "activity_link")
FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim", "default", "replace"})
TESTS = frozenset({"defined", "undefined", "none"})
ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.Filter,
    nodes.Test, nodes.Keyword, nodes.If, nodes.CondExpr, nodes.Compare, nodes.Operand,
    nodes.And, nodes.Or, nodes.Not, nodes.Concat,
)  # fmt: skip

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_env.globals.clear()


class TemplateProblem(ValueError):
    """A template that cannot be used, with a message for its author."""


@dataclass(frozen=True)
class Rendered:
    """A template's text for one language, or why it failed."""

    lang: str
    text: str | None
    error: str | None = None


def variables(with_activity: bool) -> tuple[str, ...]:
    """The names a template may use."""
    return RECIPIENT_VARIABLES + (ACTIVITY_VARIABLES if with_activity else ())


def compile_template(source: str, *, with_activity: bool) -> Template:
    """A checked, compiled template, or TemplateProblem saying what is wrong and where."""
    if len(source) > MAX_LENGTH:
        raise TemplateProblem(f"longer than {MAX_LENGTH} characters")
    if not source.strip():
        raise TemplateProblem("empty")
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from None
    _check(tree, set(variables(with_activity)))
    return _env.from_string(tree)


def render(template: Template, values: Mapping[str, str]) -> str:
    """A compiled template's text for one recipient (surrounding blank space trimmed)."""
    return template.render(values).strip()


def preview(
    templates: Mapping[str, str], values: Mapping[str, Mapping[str, str]], *, with_activity: bool
) -> list[Rendered]:
    """Each language's text with example values, or its error."""
    shown = []
    for lang, source in templates.items():
        try:
            text = render(compile_template(source, with_activity=with_activity), values[lang])
        except TemplateProblem as exc:
            shown.append(Rendered(lang, None, str(exc)))
            continue
        except TemplateError as exc:
            shown.append(Rendered(lang, None, exc.message or type(exc).__name__))
            continue
        shown.append(Rendered(lang, text))
    return shown


def _check(tree: nodes.Template, known: set[str]) -> None:
    for node in _walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise TemplateProblem(f"line {node.lineno}: {_what(node)} is not allowed here")
        if isinstance(node, nodes.Name) and node.name not in known:
            names = ", ".join(sorted(known))
            raise TemplateProblem(f"line {node.lineno}: unknown variable '{node.name}' ({names})")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            raise TemplateProblem(f"line {node.lineno}: unknown filter '{node.name}'")
        if isinstance(node, nodes.Test) and node.name not in TESTS:
            raise TemplateProblem(f"line {node.lineno}: unknown test '{node.name}'")


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _what(node: nodes.Node) -> str:
    names = {nodes.For: "a loop", nodes.Call: "a call", nodes.Getattr: "an attribute",
             nodes.Getitem: "an index", nodes.Assign: "an assignment"}  # fmt: skip
    return names.get(type(node), f"'{type(node).__name__}'")
