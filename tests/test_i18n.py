"""Translation catalogs: the template is current, Spanish is complete, instruments are exact.

When a test here fails after you added or changed a user-facing string (a flow text, an
``N_("...")`` engine text, a ``{{ _("...") }}`` in a template): run ``make i18n``, then fill
the new empty ``msgstr`` entries in ``locales/es/LC_MESSAGES/messages.po``.
"""

from __future__ import annotations

import string
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from c3n_bot.config import SUPPORTED_LANGUAGES
from c3n_bot.i18n import SOURCE_LANGUAGE, Catalogs, shipped_catalogs

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
TEMPLATE = LOCALES / "messages.pot"
RUN_MAKE = "run `make i18n`, then translate the new entries in locales/es/LC_MESSAGES/messages.po"

# The Spanish (US, Pfizer) wording of the instruments, copied from instruments.md. A
# validated instrument loses its validity when its wording drifts: never "improve" these.
FREQUENCY = {
    "Not at all": "Ningún día",
    "Several days": "Varios días",
    "More than half the days": "Más de la mitad de los días",
    "Nearly every day": "Casi todos los días",
}
PHQ9 = {
    "Over the last 2 weeks, how often have you been bothered by any of the following problems?": (
        "Durante las últimas 2 semanas, ¿qué tan seguido le han afectado cualquiera de los "
        "siguientes problemas?"
    ),
    "Little interest or pleasure in doing things": "Poco interés o placer en hacer las cosas",
    "Feeling down, depressed, or hopeless": (
        "Se ha sentido decaído(a), deprimido(a), o sin esperanzas"
    ),
    "Trouble falling or staying asleep, or sleeping too much": (
        "Dificultad para dormir o permanecer dormido(a), o ha dormido demasiado"
    ),
    "Feeling tired or having little energy": "Se ha sentido cansado(a) o con poca energía",
    "Poor appetite or overeating": "Con poco apetito o ha comido en exceso",
    (
        "Feeling bad about yourself — or that you are a failure or have let yourself or your "
        "family down"
    ): (
        "Se ha sentido mal con usted mismo(a) – o que es un fracaso o que ha quedado mal con "
        "usted mismo(a) o con su familia"
    ),
    "Trouble concentrating on things, such as reading the newspaper or watching television": (
        "Ha tenido dificultad para concentrarse en cosas tales como leer el periódico o ver "
        "televisión"
    ),
    (
        "Moving or speaking so slowly that other people could have noticed. Or the opposite — "
        "being so fidgety or restless that you have been moving around a lot more than usual"
    ): (
        "¿Se ha estado moviendo o hablando tan lento que otras personas podrían notarlo?, o por "
        "el contrario – ha estado tan inquieto(a) o agitado(a), que se ha estado moviendo mucho "
        "más de lo normal"
    ),
    "Thoughts that you would be better off dead, or of hurting yourself in some way": (
        "Ha pensado que estaría mejor muerto(a) o se le ha ocurrido lastimarse de alguna manera"
    ),
    # Item 10 and its answers: the published Pfizer Spanish (instruments.md gives none).
    (
        "If you checked off any problems, how difficult have these problems made it for you to "
        "do your work, take care of things at home, or get along with other people?"
    ): (
        "Si marcó cualquiera de los problemas, ¿qué tan difícil se le ha hecho cumplir con su "
        "trabajo, atender su casa, o relacionarse con otras personas debido a estos problemas?"
    ),
    "Not difficult at all": "Nada difícil",
    "Somewhat difficult": "Algo difícil",
    "Very difficult": "Muy difícil",
    "Extremely difficult": "Extremadamente difícil",
}
GAD7 = {
    "Over the last 2 weeks, how often have you been bothered by the following problems?": (
        "Durante las últimas 2 semanas, ¿con qué frecuencia le han molestado los siguientes "
        "problemas?"
    ),
    "Feeling nervous, anxious or on edge": (
        "Se ha sentido nervioso(a), ansioso(a) o con los nervios de punta"
    ),
    "Not being able to stop or control worrying": (
        "No ha sido capaz de parar o controlar su preocupación"
    ),
    "Worrying too much about different things": (
        "Se ha preocupado demasiado por motivos diferentes"
    ),
    "Trouble relaxing": "Ha tenido dificultad para relajarse",
    "Being so restless that it is hard to sit still": (
        "Se ha sentido tan inquieto(a) que no ha podido quedarse quieto(a)"
    ),
    "Becoming easily annoyed or irritable": "Se ha molestado o irritado fácilmente",
    "Feeling afraid as if something awful might happen": (
        "Ha tenido miedo de que algo terrible fuera a pasar"
    ),
}
INSTRUMENTS = {**FREQUENCY, **PHQ9, **GAD7}


def _catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def _ids(catalog: Catalog) -> set[str]:
    return {_msgid(message.id) for message in catalog if message.id}


def _msgid(msgid: str | tuple[str, ...] | list[str]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def _po(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / "messages.po"


def _extracted() -> set[str]:
    """What `make i18n` extracts now: babel.cfg's mapping over the repository."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")  # type: ignore[no-untyped-call]
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS)
    return {_msgid(message) for _filename, _lineno, message, _comments, _context in found}


def _placeholders(text: str) -> Counter[str]:
    """The {name} fields of a str.format template ("{{" escapes are not fields)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return Counter({f"<malformed: {text!r}>": 1})
    return Counter(field for _literal, field, _spec, _conversion in parsed if field is not None)


@pytest.fixture(scope="module")
def template() -> Catalog:
    return _catalog(TEMPLATE)


@pytest.fixture(scope="module")
def spanish() -> Catalog:
    return _catalog(_po("es"))


def test_template_is_up_to_date(template: Catalog) -> None:
    extracted = _extracted()
    committed = _ids(template)
    new = sorted(extracted - committed)
    gone = sorted(committed - extracted)
    assert not new and not gone, (
        f"locales/messages.pot is out of date: {RUN_MAKE}.\n"
        f"New strings: {new}\nStrings no longer in the source: {gone}"
    )


def test_every_string_has_a_spanish_translation(template: Catalog, spanish: Catalog) -> None:
    missing = []
    for msgid in sorted(_ids(template)):
        message = spanish.get(msgid)
        if message is None or not message.string or message.fuzzy:
            missing.append(msgid)
    assert not missing, f"{len(missing)} string(s) lack a Spanish translation ({RUN_MAKE}):\n" + (
        "\n".join(f"  {m!r}" for m in missing)
    )


def test_spanish_keeps_every_placeholder(spanish: Catalog) -> None:
    wrong = [
        f"  {message.id!r}: {dict(_placeholders(message.id))} -> "
        f"{message.string!r}: {dict(_placeholders(message.string))}"
        for message in spanish
        if message.id
        and isinstance(message.id, str)
        and isinstance(message.string, str)
        and message.string
        and _placeholders(message.id) != _placeholders(message.string)
    ]
    assert not wrong, "Spanish must keep exactly the msgid's {placeholders}:\n" + "\n".join(wrong)


def test_spanish_instruments_are_the_published_wording(template: Catalog) -> None:
    catalogs = Catalogs(LOCALES)
    shipped = _ids(template)
    assert set(INSTRUMENTS) <= shipped, (
        f"instrument texts missing from the flows: {sorted(set(INSTRUMENTS) - shipped)}"
    )
    drifted = {
        english: catalogs.translate("es", english)
        for english, expected in INSTRUMENTS.items()
        if catalogs.translate("es", english) != expected
    }
    assert not drifted, f"Spanish instrument wording differs from instruments.md: {drifted}"


def test_phq9_and_gad7_alias_never_is_translated() -> None:
    # "Never" is an alias of "Not at all": Spanish speakers may type "nunca" for "Ningún día".
    assert Catalogs(LOCALES).translate("es", "Never") == "Nunca"


def test_english_catalog_translates_nothing() -> None:
    # English is the source language: change English wording in the flow or the code, never
    # in a catalog (the validated instrument wording lives in the flow files).
    overridden = [m.id for m in _catalog(_po(SOURCE_LANGUAGE)) if m.id and m.string]
    assert not overridden, f"locales/en must leave msgstr empty, found: {overridden}"


def test_every_supported_language_has_a_catalog() -> None:
    for lang in SUPPORTED_LANGUAGES:
        assert _po(lang).is_file(), f"no catalog for {lang}: {RUN_MAKE}"


def test_catalogs_translate_to_spanish_and_fall_back_to_the_source() -> None:
    catalogs = Catalogs(LOCALES)
    item = "Little interest or pleasure in doing things"
    assert catalogs.translate("es", item) == "Poco interés o placer en hacer las cosas"
    assert catalogs.translate("es", "({n} of {total})") == "({n} de {total})"
    assert catalogs.translate("en", item) == item
    assert catalogs.translate("fr", item) == item
    assert catalogs.translate("es", "A string nobody wrote") == "A string nobody wrote"
    assert catalogs.translator("es")("Yes") == "Sí"
    assert catalogs.translator("en")("Yes") == "Yes"
    assert catalogs.translator("xx")("Yes") == "Yes"
    assert catalogs.missing("es", [item, "A string nobody wrote"]) == ["A string nobody wrote"]


def test_shipped_catalogs_are_the_repository_catalogs() -> None:
    assert shipped_catalogs().translate("es", "Not at all") == "Ningún día"
    assert shipped_catalogs().translate("en", "Not at all") == "Not at all"
