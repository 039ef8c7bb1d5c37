"""Flows to FHIR R4 Questionnaires and back, and the `c3n-bot flows` commands."""

from __future__ import annotations

import itertools
import json
import operator
import random
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from typer.testing import CliRunner, Result

from c3n_bot.cli import app
from c3n_bot.config import data_dir
from c3n_bot.engine.definitions import Flow, FlowKind, Item, ItemType
from c3n_bot.engine.loader import FlowError, parse_flow
from c3n_bot.engine.scoring import is_enabled
from c3n_bot.registry.questionnaire import (
    ORDINAL_VALUE,
    QuestionnaireExportError,
    QuestionnaireImportError,
    local_system,
    questionnaire_json,
)
from c3n_bot.registry.questionnaire_export import questionnaire_from_flow
from c3n_bot.registry.questionnaire_import import flow_from_questionnaire

LOINC = "http://loinc.org"
SHIPPED_QUESTIONNAIRES = ["gad7", "ibd_checkin", "phq9", "pucai"]
Answers = dict[str, dict[str, Any]]
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}

# Every way the export writes a condition: an ordinal comparison under `all` with another
# condition, a code compared with != (several options), under `any`, boolean, integer, exists.
MIXED_FLOW = """\
id: mixed_conditions
version: "2"
kind: questionnaire
title: Mixed conditions
items:
  - id: mood
    type: choice
    text: How is your mood?
    options:
      - {code: good, value: 0, text: Good}
      - {code: fair, value: 1, text: Fair}
      - {code: poor, value: 2, text: Poor}
  - {id: pain, type: boolean, text: "Any pain?"}
  - id: days
    type: integer
    min: 0
    max: 7
    text: Days with pain?
    help: Count today too.
    enable_when: [{question: pain, operator: "=", answer: true}]
  - id: worse
    type: choice
    text: Worse than last week?
    options: [{code: "yes", text: "Yes"}, {code: "no", text: "No"}]
    enable_when:
      - {question: mood, operator: ">=", answer: 1}
      - {question: days, operator: ">", answer: 2}
  - id: note
    type: text
    required: false
    text: Tell us more
    enable_when: [{question: mood, operator: "!=", answer: good}]
  - id: since
    type: date
    text: Since when?
    enable_behavior: any
    enable_when:
      - {question: mood, operator: "<=", answer: 0}
      - {question: worse, operator: exists}
  - {id: bye, type: display, text: Thank you}
"""


@cache
def shipped() -> dict[str, Flow]:
    """Every flow shipped with the package, by id."""
    flows = (parse_flow(p.read_text("utf-8"), str(p)) for p in data_dir("flows").glob("*.yaml"))
    return {flow.id: flow for flow in flows}


def mixed() -> Flow:
    """The flow with every kind of condition."""
    return parse_flow(MIXED_FLOW, "mixed.yaml")


def by_link_id(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Top-level items of a Questionnaire by linkId."""
    return {item["linkId"]: item for item in resource["item"]}


def states(item: Item) -> list[dict[str, Any] | None]:
    """Every answer the engine can record for an item (None: unanswered)."""
    if item.type == ItemType.CHOICE:
        values = [(o.code, o.value if o.value is not None else o.code) for o in item.options]
        return [None, *({"code": code, "value": value} for code, value in values)]
    if item.type == ItemType.BOOLEAN:
        return [None, {"code": "yes", "value": True}, {"code": "no", "value": False}]
    if item.type == ItemType.INTEGER:
        low, high = item.min or 0, item.max if item.max is not None else 10
        return [None, *({"code": None, "value": n} for n in range(low, high + 1))]
    return [None, {"code": None, "value": "2026-01-01"}]


def answer_sets(flow: Flow, item: Item, limit: int = 4000) -> Iterator[Answers]:
    """Answer combinations of the questions an item's conditions read (sampled when many)."""
    questions = sorted({c.question for c in item.enable_when})
    choices = [states(flow.item(q)) for q in questions]
    combos: Iterator[tuple[dict[str, Any] | None, ...]]
    if sum(1 for _ in itertools.islice(itertools.product(*choices), limit + 1)) <= limit:
        combos = itertools.product(*choices)
    else:
        # Each question alone in each state (the rest unanswered), then a seeded sample.
        rng = random.Random(7)
        alone = [
            tuple(state if i == index else None for i in range(len(choices)))
            for index, states_of_one in enumerate(choices)
            for state in states_of_one
        ]
        sample = [tuple(rng.choice(c) for c in choices) for _ in range(limit)]
        combos = iter(alone + sample)
    for combo in combos:
        yield {q: a for q, a in zip(questions, combo, strict=True) if a is not None}


def fhir_enabled(item: dict[str, Any], answers: Answers) -> bool:
    """enableWhen as a FHIR renderer evaluates it (codings compared by code)."""
    results = []
    for condition in item["enableWhen"]:
        answer = answers.get(condition["question"])
        if condition["operator"] == "exists":
            results.append((answer is not None) == condition["answerBoolean"])
        elif answer is None:
            results.append(False)
        elif "answerCoding" in condition:
            expected = condition["answerCoding"]["code"]
            results.append(_COMPARE[condition["operator"]](answer["code"], expected))
        else:
            (key,) = (k for k in condition if k.startswith("answer"))
            results.append(_COMPARE[condition["operator"]](answer["value"], condition[key]))
    return any(results) if item.get("enableBehavior", "all") == "any" else all(results)


def validate(resource: dict[str, Any]) -> None:
    """Structure by fhir.resources R4B, and the code rules it does not check."""
    Questionnaire.model_validate(resource)
    seen: set[str] = set()
    for item in resource["item"]:
        for condition in item.get("enableWhen", []):
            assert condition["question"] in seen, (item["linkId"], condition)
        for option in item.get("answerOption", []):
            assert option["valueCoding"]["system"] and option["valueCoding"]["code"]
        assert item["type"] != "display" or "required" not in item
        seen.add(item["linkId"])
    assert len(seen) == len(resource["item"])


def test_the_shipped_questionnaire_flows_are_the_expected_ones() -> None:
    ids = sorted(f.id for f in shipped().values() if f.kind == FlowKind.QUESTIONNAIRE)

    assert ids == SHIPPED_QUESTIONNAIRES


@pytest.mark.parametrize("flow_id", SHIPPED_QUESTIONNAIRES)
def test_each_questionnaire_flow_exports_a_valid_stable_r4_questionnaire(flow_id: str) -> None:
    flow = shipped()[flow_id]

    resource = questionnaire_from_flow(flow)

    validate(resource)
    assert questionnaire_json(resource) == questionnaire_json(questionnaire_from_flow(flow))
    assert resource["url"] == flow.url and resource["version"] == flow.version
    assert [i["linkId"] for i in resource["item"]] == [i.id for i in flow.items]
    assert resource["status"] == "active" and resource["subjectType"] == ["Patient"]


def test_phq9_export_carries_the_loinc_codes_and_ordinal_values() -> None:
    resource = questionnaire_from_flow(shipped()["phq9"])
    items = by_link_id(resource)

    assert resource["code"][0]["system"] == LOINC and resource["code"][0]["code"] == "44249-1"
    assert resource["name"] == "Phq9" and resource["id"] == "phq9"
    assert items["q1"]["code"] == [{"system": LOINC, "code": "44250-9"}]
    assert items["q9"]["code"][0]["code"] == "44260-8"
    for link_id in [f"q{n}" for n in range(1, 10)]:
        options = items[link_id]["answerOption"]
        codes = [(o["valueCoding"]["system"], o["valueCoding"]["code"]) for o in options]
        ordinals = [o["extension"] for o in options]
        assert codes == [(LOINC, c) for c in ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")]
        assert ordinals == [[{"url": ORDINAL_VALUE, "valueDecimal": v}] for v in range(4)]
        assert items[link_id]["required"] is False


def test_phq9_item_10_condition_becomes_codings_any_of_items_1_to_9_above_0() -> None:
    q10 = by_link_id(questionnaire_from_flow(shipped()["phq9"]))["q10"]

    conditions = {
        (c["question"], c["operator"], c["answerCoding"]["code"]) for c in q10["enableWhen"]
    }
    above_zero = ("LA6569-3", "LA6570-1", "LA6571-9")
    assert q10["enableBehavior"] == "any"
    assert conditions == {(f"q{n}", "=", c) for n in range(1, 10) for c in above_zero}
    assert len(q10["enableWhen"]) == 27


def test_options_without_a_system_use_the_flows_local_code_system() -> None:
    items = by_link_id(questionnaire_from_flow(shipped()["pucai"]))

    coding = items["pain"]["answerOption"][1]["valueCoding"]
    assert coding == {
        "system": local_system("pucai"),
        "code": "pain-5",
        "display": "Pain can be ignored",
    }
    assert local_system("pucai") == "https://c3n-bot.example/fhir/CodeSystem/pucai"
    assert items["stools"]["item"][0]["text"] == "Count every bowel movement in a day and night."
    assert items["pain"]["extension"][0]["valueString"] == "{child}'s abdominal pain"


def test_integer_bounds_become_min_and_max_value_extensions() -> None:
    resource = questionnaire_from_flow(shipped()["ibd_checkin"])
    pain_days = by_link_id(resource)["pain_days"]

    assert resource["id"] == "ibd-checkin" and resource["name"] == "IbdCheckin"
    assert {e["url"].rsplit("/", 1)[1]: e.get("valueInteger") for e in pain_days["extension"]} == {
        "minValue": 0,
        "maxValue": 7,
        "proxy-text": None,
    }


def test_every_condition_form_exports_valid_and_means_what_the_engine_means() -> None:
    flow = mixed()
    resource = questionnaire_from_flow(flow)
    items = by_link_id(resource)

    validate(resource)
    assert items["worse"]["enableBehavior"] == "all"
    assert [
        (c["operator"], c.get("answerCoding", {}).get("code")) for c in items["worse"]["enableWhen"]
    ] == [
        ("exists", None),
        ("!=", "good"),
        (">", None),
    ]
    assert items["note"]["enableBehavior"] == "any" and len(items["note"]["enableWhen"]) == 2
    assert items["days"]["enableWhen"] == [
        {"question": "pain", "operator": "=", "answerBoolean": True}
    ]
    assert items["since"]["enableWhen"][1] == {
        "question": "worse",
        "operator": "exists",
        "answerBoolean": True,
    }
    for item in (i for i in flow.items if i.enable_when):
        for answers in answer_sets(flow, item):
            assert fhir_enabled(items[item.id], answers) == is_enabled(item, answers), (
                item.id,
                answers,
            )


@pytest.mark.parametrize("flow_id", SHIPPED_QUESTIONNAIRES)
def test_shipped_conditions_mean_the_same_in_fhir(flow_id: str) -> None:
    flow = shipped()[flow_id]
    items = by_link_id(questionnaire_from_flow(flow))

    for item in (i for i in flow.items if i.enable_when):
        for answers in answer_sets(flow, item):
            assert fhir_enabled(items[item.id], answers) == is_enabled(item, answers), (
                item.id,
                answers,
            )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("{question: mood, operator: '>', answer: 5}", "can never hold"),
    ],
)
def test_conditions_fhir_cannot_state_are_refused_by_name(condition: str, message: str) -> None:
    text = MIXED_FLOW.replace(
        "  - {id: bye, type: display, text: Thank you}\n",
        "  - {id: hello, type: display, text: Hi}\n"
        f"  - {{id: last, type: text, text: Last, enable_when: [{condition}]}}\n",
    )

    with pytest.raises(QuestionnaireExportError, match=message) as raised:
        questionnaire_from_flow(parse_flow(text, "x.yaml"))
    assert "'last'" in str(raised.value)


@pytest.mark.parametrize(
    "condition",
    ["{question: hello, operator: exists}", "{question: pain, operator: '>', answer: true}"],
)
def test_conditions_without_meaning_are_refused_by_the_loader(condition: str) -> None:
    """A condition on a display item, or ordering on a yes/no, never reaches the exporter."""
    text = MIXED_FLOW.replace(
        "  - {id: bye, type: display, text: Thank you}\n",
        "  - {id: hello, type: display, text: Hi}\n"
        f"  - {{id: last, type: text, text: Last, enable_when: [{condition}]}}\n",
    )

    with pytest.raises(FlowError) as raised:
        parse_flow(text, "x.yaml")
    assert "enable_when" in str(raised.value)


def small_questionnaire() -> dict[str, Any]:
    """A hand-written Questionnaire with every supported item type and answer form."""
    frequency = [
        ("LA6568-5", "Not at all", {"extension": [{"url": ORDINAL_VALUE, "valueDecimal": 0}]}),
        ("LA6569-3", "Several days", {"extension": [{"url": ORDINAL_VALUE, "valueInteger": 1}]}),
    ]
    options: list[dict[str, Any]] = [
        {**extra, "valueCoding": {"system": LOINC, "code": code, "display": text}}
        for code, text, extra in frequency
    ]
    options.append(
        {
            "valueCoding": {
                "system": LOINC,
                "code": "LA6570-1",
                "display": "More than half the days",
                "extension": [{"url": ORDINAL_VALUE, "valueDecimal": 2.0}],
            }
        }
    )
    help_control = {
        "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
        "valueCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "help"}]
        },
    }
    bounds = [
        {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
        {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 7},
    ]
    return {
        "resourceType": "Questionnaire",
        "id": "Small-check.v2",
        "url": "urn:uuid:6f1d2a1c-0000-4000-8000-000000000001",
        "name": "SmallCheck",
        "version": "2.0 beta",
        "title": "Small check",
        "status": "draft",
        "code": [{"system": LOINC, "code": "44249-1"}],
        "item": [
            {"linkId": "intro", "type": "display", "text": "A few questions."},
            {
                "linkId": "/44250-9",
                "type": "choice",
                "text": "Little interest or pleasure in doing things",
                "required": True,
                "code": [{"system": LOINC, "code": "44250-9", "display": "Interest"}],
                "answerOption": options,
            },
            {"linkId": "1.1", "type": "integer", "text": "Days?", "extension": bounds},
            {
                "linkId": "g1",
                "type": "group",
                "text": "About pain",
                "enableWhen": [{"question": "1.1", "operator": ">", "answerInteger": 0}],
                "item": [
                    {"linkId": "g1.pain", "type": "boolean", "text": "Pain?", "required": True},
                    {
                        "linkId": "g1.where",
                        "type": "string",
                        "text": "Where?",
                        "enableWhen": [
                            {"question": "g1.pain", "operator": "=", "answerBoolean": True}
                        ],
                    },
                ],
            },
            {
                "linkId": "severity",
                "type": "choice",
                "text": "How bad?",
                "answerOption": [{"valueString": "mild"}, {"valueString": "very bad"}],
                "enableWhen": [
                    {
                        "question": "/44250-9",
                        "operator": "=",
                        "answerCoding": {"system": LOINC, "code": "LA6569-3"},
                    }
                ],
            },
            {
                "linkId": "count",
                "type": "choice",
                "text": "How many?",
                "answerOption": [{"valueInteger": 1}, {"valueInteger": 2}],
            },
            {
                "linkId": "notes",
                "type": "text",
                "text": "Notes",
                "enableWhen": [
                    {"question": "severity", "operator": "=", "answerString": "very bad"}
                ],
            },
            {
                "linkId": "onset",
                "type": "date",
                "text": "Since when?",
                "required": True,
                "item": [
                    {
                        "linkId": "onset.help",
                        "type": "display",
                        "text": "Roughly.",
                        "extension": [help_control],
                    }
                ],
            },
        ],
    }


def test_import_of_a_small_questionnaire_covers_every_supported_type() -> None:
    resource = small_questionnaire()
    Questionnaire.model_validate(resource)

    flow = parse_flow(flow_from_questionnaire(resource), "small.yaml")
    items = {item.id: item for item in flow.items}

    assert (flow.id, flow.version, flow.kind, flow.title) == (
        "small_check_v2",
        "2.0-beta",
        FlowKind.QUESTIONNAIRE,
        "Small check",
    )
    assert flow.url is None and flow.code is not None and flow.code.code == "44249-1"
    assert [(i.id, i.type.value, i.required) for i in flow.items] == [
        ("intro", "display", False),
        ("q_44250_9", "choice", True),
        ("q_1_1", "integer", False),
        ("g1", "display", False),
        ("q_g1_pain", "boolean", True),
        ("q_g1_where", "text", False),
        ("severity", "choice", False),
        ("count", "choice", False),
        ("notes", "text", False),
        ("onset", "date", True),
    ]
    interest = items["q_44250_9"]
    assert [(o.code, o.value, o.system, o.text) for o in interest.options] == [
        ("LA6568-5", 0, LOINC, "Not at all"),
        ("LA6569-3", 1, LOINC, "Several days"),
        ("LA6570-1", 2, LOINC, "More than half the days"),
    ]
    assert interest.code is not None and interest.code.code == "44250-9"
    assert (items["q_1_1"].min, items["q_1_1"].max) == (0, 7)
    assert [(c.question, c.operator, c.answer) for c in items["g1"].enable_when] == [
        ("q_1_1", ">", 0)
    ]
    assert [(c.question, c.operator, c.answer) for c in items["q_g1_where"].enable_when] == [
        ("q_1_1", ">", 0),
        ("q_g1_pain", "=", True),
    ]
    assert [(o.code, o.text) for o in items["severity"].options] == [
        ("mild", "mild"),
        ("very-bad", "very bad"),
    ]
    assert items["severity"].enable_when[0].answer == "LA6569-3"
    assert [(o.code, o.value) for o in items["count"].options] == [("1", 1), ("2", 2)]
    assert items["notes"].enable_when[0].answer == "very-bad"
    assert items["onset"].help == "Roughly."


@pytest.mark.parametrize(
    "fhir_type", ["decimal", "quantity", "open-choice", "attachment", "dateTime", "time", "url"]
)
def test_import_names_the_link_id_of_an_unsupported_type(fhir_type: str) -> None:
    resource = small_questionnaire()
    resource["item"].insert(2, {"linkId": "odd.1", "type": fhir_type, "text": "Odd"})

    with pytest.raises(QuestionnaireImportError, match=rf"'odd\.1'.*'{fhir_type}'"):
        flow_from_questionnaire(resource)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["item"][1].update(repeats=True), "'/44250-9': repeating"),
        (lambda r: r["item"][1].pop("answerOption"), "'/44250-9': no options"),
        (lambda r: r["item"][1]["answerOption"][0]["extension"][0].update(valueDecimal=0.5), "0.5"),
        (lambda r: r["item"][2].update(linkId="intro"), "'intro' is used twice"),
        (
            lambda r: r["item"][4]["enableWhen"][0].update(question="notes"),
            "'severity'.*not an earlier",
        ),
        (
            lambda r: r["item"][4]["enableWhen"][0]["answerCoding"].update(code="X"),
            "'X' is not one",
        ),
        (lambda r: r.update(resourceType="Patient"), "not a FHIR Questionnaire"),
    ],
)
def test_import_refuses_what_a_flow_cannot_hold(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    resource = small_questionnaire()
    change(resource)

    with pytest.raises(QuestionnaireImportError, match=message):
        flow_from_questionnaire(resource)


@pytest.mark.parametrize("flow_id", [*SHIPPED_QUESTIONNAIRES, "mixed_conditions"])
def test_export_import_round_trip_keeps_items_and_re_exports_identically(flow_id: str) -> None:
    flow = mixed() if flow_id == "mixed_conditions" else shipped()[flow_id]
    exported = questionnaire_from_flow(flow)

    back = parse_flow(flow_from_questionnaire(json.loads(json.dumps(exported))), "back.yaml")

    def carried(item: Item) -> tuple[object, ...]:
        options = [
            (o.code, o.text, o.value, o.system or local_system(flow.id)) for o in item.options
        ]
        texts = (item.text, item.proxy_text, item.help)
        return (item.id, item.type, *texts, item.code, item.required, item.min, item.max, options)

    assert (back.id, back.version, back.title, back.url, back.code, back.description) == (
        flow.id,
        flow.version,
        flow.title,
        flow.url,
        flow.code,
        flow.description,
    )
    assert [carried(i) for i in back.items] == [carried(i) for i in flow.items]
    for item in (i for i in flow.items if i.enable_when):
        for answers in answer_sets(flow, item, limit=500):
            assert is_enabled(back.item(item.id), answers) == is_enabled(item, answers)
    assert questionnaire_from_flow(back) == exported


# ---------------------------------------------------------------- c3n-bot flows


def flows(*args: str) -> Result:
    """Run `c3n-bot flows ...` (the caller's clean_env sets the environment)."""
    return CliRunner().invoke(app, ["flows", *args])


def test_flows_check_passes_the_shipped_flows_without_a_secret_key(clean_env: Path) -> None:
    result = flows("check")

    assert result.exit_code == 0, result.output
    assert "7 flows ok" in result.stdout


BROKEN = {
    # An unknown field (flow style keeps the schema's report on the key's own line).
    "unknown.yaml": "id: unknown\nversion: '1'\nkind: questionnaire\ntitle: U\nitems:\n"
    "  - {id: q1, type: integer, text: One, colour: blue}\n",
    "dup.yaml": "id: dup\nversion: '1'\nkind: questionnaire\ntitle: D\nitems:\n"
    "  - id: q1\n    type: integer\n    text: One\n  - id: q1\n    type: integer\n    text: Two\n",
    "expr.yaml": "id: expr\nversion: '1'\nkind: questionnaire\ntitle: E\nitems:\n"
    "  - {id: q1, type: integer, text: One}\nscores:\n  - id: total\n    label: Total\n"
    "    expr: 'sum(q1,'\n",
}


def test_flows_check_reports_each_problem_as_file_line_field(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, text in BROKEN.items():
        (clean_env / name).write_text(text, "utf-8")
    monkeypatch.setenv("C3N_FLOWS_DIR", str(clean_env))

    result = flows("check")

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any("unknown.yaml:6: items[0].colour: " in x for x in lines), lines
    assert any("dup.yaml:9: items[1].id: duplicate item id 'q1'" in x for x in lines), lines
    assert any("expr.yaml:10: scores[0].expr: " in x for x in lines), lines


ALL_IN_ONE = """\
id: broken
version: "1"
kind: questionnaire
title: Broken
items:
  - id: q1
    type: integer
    text: One
    colour: blue
  - id: q1
    type: integer
    text: Two
scores:
  - id: total
    label: Total
    expr: "sum(q1,"
"""


def test_flows_check_reports_every_problem_of_one_file_at_its_line(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / "broken.yaml").write_text(ALL_IN_ONE, "utf-8")
    monkeypatch.setenv("C3N_FLOWS_DIR", str(clean_env))

    result = flows("check")

    assert result.exit_code == 1
    assert "broken.yaml:9: " in result.stdout and "'colour'" in result.stdout
    assert "broken.yaml:10: items[1].id: duplicate item id 'q1'" in result.stdout
    assert "broken.yaml:16: scores[0].expr: " in result.stdout


def test_flows_export_fhir_writes_one_valid_file_per_questionnaire(clean_env: Path) -> None:
    out = clean_env / "out"

    result = flows("export-fhir", "-o", str(out))

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"{i}.json" for i in SHIPPED_QUESTIONNAIRES]
    for flow_id in SHIPPED_QUESTIONNAIRES:
        text = (out / f"{flow_id}.json").read_text("utf-8")
        assert text == questionnaire_json(questionnaire_from_flow(shipped()[flow_id]))
        validate(json.loads(text))


def test_flows_export_fhir_defaults_to_a_fhir_folder(clean_env: Path) -> None:
    result = flows("export-fhir")

    assert result.exit_code == 0, result.output
    assert (clean_env / "fhir" / "phq9.json").is_file()


def test_flows_import_fhir_prints_or_writes_a_valid_flow(clean_env: Path) -> None:
    source = clean_env / "small.json"
    source.write_text(json.dumps(small_questionnaire()), "utf-8")

    printed = flows("import-fhir", str(source))
    written = flows("import-fhir", str(source), "-o", str(clean_env / "small.yaml"))

    assert printed.exit_code == 0, printed.output
    assert parse_flow(printed.stdout, "stdout").id == "small_check_v2"
    assert written.exit_code == 0, written.output
    assert (clean_env / "small.yaml").read_text("utf-8") == printed.stdout


def test_flows_import_fhir_names_the_unsupported_item(clean_env: Path) -> None:
    resource = small_questionnaire()
    resource["item"].append({"linkId": "weight", "type": "quantity", "text": "Weight"})
    source = clean_env / "bad.json"
    source.write_text(json.dumps(resource), "utf-8")
    (clean_env / "junk.json").write_text("{not json", "utf-8")

    result = flows("import-fhir", str(source))
    junk = flows("import-fhir", str(clean_env / "junk.json"))

    assert result.exit_code == 1 and "'weight'" in result.stderr and "quantity" in result.stderr
    assert junk.exit_code == 1 and "cannot read JSON" in junk.stderr
