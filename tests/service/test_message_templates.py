"""Organiser templates: a sandbox over known variables, errors that say what and where."""

from __future__ import annotations

import pytest

from c3n_bot.service.message_templates import (
    MAX_LENGTH,
    TemplateProblem,
    compile_template,
    preview,
    render,
)

VALUES = {"first_name": "ana", "program": "ImproveCareNow", "center": "Riverside"}


def test_variables_filters_and_if_render() -> None:
    template = compile_template(
        "Hi {{ first_name | title }}{% if center %} from {{ center | upper }}{% endif %}!",
        with_activity=False,
    )
    assert render(template, VALUES) == "Hi Ana from RIVERSIDE!"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ first_nam }}", "line 1: unknown variable 'first_nam'"),
        ("{{ activity_title }}", "line 1: unknown variable 'activity_title'"),
        ("{% for i in range(9) %}x{% endfor %}", "line 1: a loop is not allowed here"),
        ("{{ center.__class__ }}", "line 1: an attribute is not allowed here"),
        ("{{ center | attr('x') }}", "line 1: unknown filter 'attr'"),
        ("{{ lipsum() }}", "line 1: a call is not allowed here"),
        ("Hi\n{{ first_name", "line 2: unexpected end of template"),
        ("   ", "empty"),
        ("x" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH} characters"),
    ],
)
def test_anything_else_is_refused_with_its_line(source: str, problem: str) -> None:
    with pytest.raises(TemplateProblem) as raised:
        compile_template(source, with_activity=False)
    assert str(raised.value).startswith(problem)


def test_activity_variables_only_with_an_activity() -> None:
    template = compile_template("{{ activity_title }} at {{ activity_time }}", with_activity=True)
    values = {**VALUES, "activity_title": "Design day", "activity_time": "Sat 10:00"}
    assert render(template, values) == "Design day at Sat 10:00"


def test_the_preview_shows_each_language_or_its_error() -> None:
    shown = preview(
        {"en": "Hi {{ first_name }}", "es": "Hola {{ nombre }}"},
        {"en": VALUES, "es": VALUES},
        with_activity=False,
    )
    assert [(r.lang, r.text) for r in shown] == [("en", "Hi ana"), ("es", None)]
    assert shown[1].error is not None and "unknown variable 'nombre'" in shown[1].error
