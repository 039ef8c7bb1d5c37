"""Translation catalogs (gettext .po files in locales/) and the Babel extractor for flows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from c3n_bot.config import SUPPORTED_LANGUAGES, data_dir
from c3n_bot.engine.loader import parse_flow
from c3n_bot.engine.texts import flow_texts

DOMAIN = "messages"
SOURCE_LANGUAGE = "en"


class Catalogs:
    """Translations for every supported language, read from .po files once."""

    def __init__(self, locales_dir: Path) -> None:
        self._tables: dict[str, dict[str, str]] = {}
        for lang in SUPPORTED_LANGUAGES:
            path = locales_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
            self._tables[lang] = _read(path) if path.is_file() else {}

    def translate(self, lang: str, text: str) -> str:
        """The text in a language; the English source when no translation exists."""
        return self._tables.get(lang, {}).get(text) or text

    def translator(self, lang: str) -> Callable[[str], str]:
        """A one-argument translate function for the engine's Context."""
        table = self._tables.get(lang, {})
        return lambda text: table.get(text) or text

    def missing(self, lang: str, texts: list[str]) -> list[str]:
        """Source strings without a translation in a language."""
        table = self._tables.get(lang, {})
        return [t for t in texts if not table.get(t)]


def _read(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        catalog: Catalog = read_po(handle)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id
        and message.string
        and not message.fuzzy
        and isinstance(message.id, str)
        and isinstance(message.string, str)
    }


@lru_cache(maxsize=1)
def shipped_catalogs() -> Catalogs:
    """The catalogs shipped with the package."""
    return Catalogs(data_dir("locales"))


def extract_flow(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor for flow YAML: yields each patient-facing string with its line."""
    text = fileobj.read().decode("utf-8")
    flow = parse_flow(text, getattr(fileobj, "name", "<flow>"))
    lines = text.splitlines()
    for message in dict.fromkeys(flow_texts(flow)):
        needle = message.splitlines()[0][:40]
        lineno = next((n for n, line in enumerate(lines, 1) if needle in line), 1)
        yield lineno, "", message, [f"flow {flow.id}"]
