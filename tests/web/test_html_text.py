"""Rows joined in Python escape their texts exactly as the templates would."""

from __future__ import annotations

import pytest
from markupsafe import escape

from c3n_bot.web.html_text import html_text


@pytest.mark.parametrize(
    "text",
    ["", "plain", "O'Brien <b>&amp;</b>", "\"quoted\" & <tag attr='x'>", "Zoë · 😀 &#39;"],
)
def test_html_text_escapes_as_markupsafe_does(text: str) -> None:
    assert html_text(text) == str(escape(text))
