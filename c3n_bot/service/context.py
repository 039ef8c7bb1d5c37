"""What use cases need besides the database: flows and translations, wired once per process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.engine.prompts import fill
from c3n_bot.i18n import Catalogs
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.store.base import Channel


@dataclass(frozen=True)
class Services:
    """The flow catalog, the translation catalogs, the sending channels and the FHIR sinks."""

    flows: FlowCatalog
    catalogs: Catalogs
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    # Channels this deployment can send on; scheduled work never picks another.
    channels: frozenset[Channel] = frozenset(Channel)
    # Names of the FHIR servers that receive every submission (C3N_FHIR_SINKS).
    sinks: tuple[str, ...] = ()

    def translate(self, lang: str, text: str) -> str:
        """A source string in a language."""
        return self.catalogs.translate(lang, text)

    def translator(self, lang: str) -> Callable[[str], str]:
        """A translate function for the engine."""
        return self.catalogs.translator(lang)

    def fill(self, lang: str, template: str, values: Mapping[str, str]) -> str:
        """Translate a template, then fill its {placeholders}."""
        return fill(self.translate(lang, template), values)
