"""Golden transcripts: every flow, in English and Spanish, as a scripted conversation.

Each script runs through the real engine at a fixed clock (2026-03-02 15:00 UTC) with the
shipped translations, and its rendering (see ``tests/engine/transcripts.py``) must equal
``tests/transcripts/<flow>[.<variant>].<lang>.txt``. After an intended change, rewrite the
files and read the diff as a reviewer would:

    .venv/bin/pytest tests/engine/test_transcripts.py --update-golden
    C3N_UPDATE_GOLDEN=1 .venv/bin/pytest          # from the repository root

Every script has an invalid reply, HELP, BACK, SKIP (refused where the item is required),
a misspelled option and a number word; some also press a stale button.
"""

from __future__ import annotations

import pytest

from c3n_bot.engine.events import ChoiceInput, Subject
from tests.engine.transcripts import (
    LANGUAGES,
    TRANSCRIPTS_DIR,
    Script,
    flow_ids,
    run_script,
    transcript,
)

CENTER_EN = {"center": "Riverside Children's"}
CENTER_ES = {"center": "Clínica Infantil Riverside"}
ANA = Subject("patient-ana", "Ana")
LUIS = Subject("patient-luis", "Luis")

SCRIPTS: tuple[Script, ...] = (
    Script(
        "phq9",
        "en",
        note="self-report; q3 skipped (prorated total), q9 > 0 raises the crisis alert",
        replies=(
            "help",
            "back",
            "several dayz",
            "two",
            "back",
            "Nearly every day",
            "blah",
            "I don't know",
            "maybe?",
            "skip",
            "never",
            "1",
            ChoiceInput("q5", "LA6568-5"),
            "MORE THAN HALF THE DAYS 😔",
            "1",
            "0",
            "one",
            "somewhat",
            "thanks",
        ),
    ),
    Script(
        "phq9",
        "es",
        note="autoinforme; q3 saltada (total prorrateado), q9 > 0 activa la alerta de crisis",
        replies=(
            "ayuda",
            "atrás",
            "varios diaz",
            "dos",
            "atras",
            "Casi todos los días",
            "bla",
            "no sé",
            "¿quizás?",
            "saltar",
            "nunca",
            "1",
            ChoiceInput("q5", "LA6568-5"),
            "MÁS DE LA MITAD DE LOS DÍAS 😔",
            "1",
            "0",
            "uno",
            "algo",
            "gracias",
        ),
    ),
    Script(
        "gad7",
        "en",
        note="self-report; q3 skipped, then BACK un-skips and answers it",
        replies=(
            "sevral days",
            "help",
            "three",
            "back",
            "2",
            "skip",
            "back",
            "1",
            "xyz",
            "1",
            "more than half",
            "never",
            "nearly every day",
        ),
    ),
    Script(
        "gad7",
        "es",
        note="autoinforme; q3 saltada, luego ATRÁS la vuelve a preguntar",
        replies=(
            "varios dias",
            "ayuda",
            "tres",
            "atrás",
            "2",
            "saltar",
            "volver",
            "1",
            "xyz",
            "1",
            "mas de la mitad",
            "nunca",
            "casi todos los dias",
        ),
    ),
    Script(
        "pucai",
        "en",
        note="patient; previous PUCAI total 10, so a total of 30 or more raises pucai_rise",
        previous_scores={"total": 10},
        replies=(
            "back",
            "help",
            "pain can be ignored",
            "small amout with most stools",
            "back",
            "two",
            "skip",
            "partially",
            "help",
            "4",
            "maybe",
            "yes",
            "ocasional limitation of activity",
        ),
    ),
    Script(
        "pucai",
        "es",
        note="paciente; PUCAI anterior 10, así que un total de 30 o más activa pucai_rise",
        previous_scores={"total": 10},
        replies=(
            "atrás",
            "ayuda",
            "dolor que se puede ignorar",
            "un poco en la mayoria de las evacuasiones",
            "atrás",
            "dos",
            "saltar",
            "parcialmente",
            "ayuda",
            "4",
            "quizás",
            "sí",
            "limitacion ocasional",
        ),
    ),
    Script(
        "pucai",
        "en",
        variant="proxy",
        note="a parent reporting for one child (started for Ana); '4' stools is a count of four",
        subjects=(ANA,),
        proxy=True,
        replies=(
            "help",
            "no pian",
            "one",
            "formed",
            "4",
            "back",
            "0-2",
            "2",
            "nope",
            "no",
            "skip",
            "no limitation",
        ),
    ),
    Script(
        "pucai",
        "es",
        variant="proxy",
        note="madre o padre que reporta por Ana; '4' evacuaciones es una cuenta de cuatro",
        subjects=(ANA,),
        proxy=True,
        replies=(
            "ayuda",
            "sin dolr",
            "uno",
            "formadas",
            "4",
            "atrás",
            "0-2",
            "2",
            "nop",
            "no",
            "saltar",
            "sin limitación",
        ),
    ),
    Script(
        "ibd_checkin",
        "en",
        note="self-report; blood with pain on 3 days raises ibd_bleeding_pain",
        replies=(
            "back",
            "so so",
            "help",
            "three",
            "back",
            "four",
            "none",
            "three days",
            "3",
            "skip",
            "yes",
            "0",
            "missed a few dosses",
            "skip",
        ),
    ),
    Script(
        "ibd_checkin",
        "es",
        note="autoinforme; sangre con dolor 3 días o más activa ibd_bleeding_pain",
        replies=(
            "atrás",
            "regular",
            "ayuda",
            "tres",
            "atrás",
            "cuatro",
            "ninguno",
            "tres días",
            "3",
            "saltar",
            "sí",
            "0",
            "faltaron algunas dosiss",
            "saltar",
        ),
    ),
    Script(
        "ibd_checkin",
        "en",
        variant="proxy",
        note="a parent of two children picks Luis by name",
        subjects=(ANA, LUIS),
        proxy=True,
        replies=(
            "the other one",
            "luis",
            "back",
            "Very unwell",
            "help",
            "two",
            "nope",
            "eight",
            "1",
            "skip",
            "every dose",
            "He had a cold on Tuesday.",
        ),
    ),
    Script(
        "ibd_checkin",
        "es",
        variant="proxy",
        note="madre o padre de dos hijos elige a Luis por su nombre",
        subjects=(ANA, LUIS),
        proxy=True,
        replies=(
            "el otro",
            "Luis",
            "atrás",
            "Muy mal",
            "ayuda",
            "dos",
            "nop",
            "no",
            "ocho",
            "1",
            "saltar",
            "todas las dosis",
            "Tuvo un resfriado el martes.",
        ),
    ),
    Script(
        "consent",
        "en",
        note="first contact: yes to reports and reminders, no to the rest",
        values=CENTER_EN,
        replies=(
            "back",
            "yes",
            "maybe",
            "help",
            "skip",
            "one",
            "back",
            "yess",
            "nah",
            "2",
            "no thanks",
        ),
    ),
    Script(
        "consent",
        "es",
        note="primer contacto: sí a reportes y recordatorios, no al resto",
        values=CENTER_ES,
        replies=(
            "atrás",
            "sí",
            "tal vez",
            "ayuda",
            "saltar",
            "uno",
            "atrás",
            "sii",
            "nel",
            "no",
            "2",
            "no gracias",
        ),
    ),
    Script(
        "visit_reminder",
        "en",
        note="a parent; the visit is for Ana",
        subjects=(ANA,),
        proxy=True,
        values={**CENTER_EN, "child": "Ana", "visit_time": "Thursday, March 5 at 10:30 AM"},
        replies=("maybe", "help", "back", "skip", "three", "yess"),
    ),
    Script(
        "visit_reminder",
        "es",
        note="madre o padre; la cita es de Ana",
        subjects=(ANA,),
        proxy=True,
        values={**CENTER_ES, "child": "Ana", "visit_time": "jueves 5 de marzo a las 10:30"},
        replies=("tal vez", "ayuda", "atrás", "saltar", "tres", "nesesitamos cambiar la cita"),
    ),
    Script(
        "codesign_invite",
        "en",
        note="an invitation to a co-design workshop",
        values={
            **CENTER_EN,
            "activity_title": "Design our new check-in questions",
            "activity_time": "Saturday, March 14 at 11:00 AM",
            "activity_place": "Riverside Children's, room 4B, or online.",
        },
        replies=("what time?", "help", "back", "skip", "five", "perhapps"),
    ),
    Script(
        "codesign_invite",
        "es",
        note="invitación a un taller de co-diseño",
        values={
            **CENTER_ES,
            "activity_title": "Diseñemos nuestras nuevas preguntas",
            "activity_time": "sábado 14 de marzo a las 11:00",
            "activity_place": "Clínica Infantil Riverside, sala 4B, o en línea.",
        },
        replies=("¿a qué hora?", "ayuda", "atrás", "saltar", "cinco", "tal ves"),
    ),
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_transcript_matches_golden_file(script: Script, update_golden: bool) -> None:
    """The conversation renders exactly as its golden file (rewritten under the switch)."""
    path = TRANSCRIPTS_DIR / f"{script.name}.txt"
    actual = transcript(script)
    if update_golden:
        TRANSCRIPTS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, "utf-8")
        return
    assert path.is_file(), f"{path} is missing: rerun with --update-golden (or C3N_UPDATE_GOLDEN=1)"
    assert actual == path.read_text("utf-8")


def test_every_flow_has_a_transcript_in_every_language() -> None:
    """A new flow file, or a new language, needs its scripted conversation here."""
    covered = {(s.flow_id, s.lang) for s in SCRIPTS if not s.variant}
    wanted = {(flow_id, lang) for flow_id in flow_ids() for lang in LANGUAGES}
    assert wanted - covered == set()


def test_no_golden_file_without_a_script() -> None:
    """A golden file whose script was removed is stale."""
    names = {f"{s.name}.txt" for s in SCRIPTS}
    assert len(names) == len(SCRIPTS)
    stale = {p.name for p in TRANSCRIPTS_DIR.glob("*.txt")} - names
    assert stale == set()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_script_completes_its_flow(script: Script) -> None:
    """Every script reaches the end, so the whole flow is in its golden file."""
    assert run_script(script).state["ended"] is not None
