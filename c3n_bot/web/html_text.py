"""Escaping text into HTML as plain strings, for rows joined in Python."""

from __future__ import annotations


def html_text(value: str) -> str:
    """`value` escaped as markupsafe.escape escapes it (& < > ' "), as a plain str.

    markupsafe.escape makes a Markup object for every value, which costs more than the
    escaping: a row joined from a dozen texts escapes them here and is marked safe once."""
    return (
        value.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )
