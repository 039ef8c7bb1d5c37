"""Scoring and alerts of each shipped instrument, through the real flow files and engine.

Most tests answer a flow with button presses through ``runner.resume``; the prorating and
off-grid boundaries (a PUCAI total of 9 cannot be answered) call ``compute_scores`` with
answers dicts. Facts checked are those of /work/shared/instruments.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from c3n_bot.engine.definitions import Flow
from c3n_bot.engine.events import (
    AlertRaised,
    AnswerRecorded,
    ChoiceInput,
    Event,
    MessageOut,
    SubmissionCompleted,
)
from c3n_bot.engine.scoring import compute_scores, environment, fired_alerts
from tests.engine.transcripts import (
    Conversation,
    Reply,
    answer_items,
    choice,
    context,
    events_of,
    load_flow,
    run,
)

PHQ9_ITEMS = tuple(f"q{n}" for n in range(1, 10))
GAD7_ITEMS = tuple(f"q{n}" for n in range(1, 8))
PUCAI_ITEMS = ("pain", "bleeding", "consistency", "stools", "nocturnal", "activity")
# Stools is asked as a count (0-40); one count inside each published category, by points.
PUCAI_STOOL_COUNTS = {0: 1, 5: 4, 10: 7, 15: 12}


# -- helpers --------------------------------------------------------------------------------


def spread(total: int, items: Sequence[str], top: int = 3) -> dict[str, int]:
    """Item values (each 0..top, filled from the first item) that add up to `total`."""
    values: dict[str, int] = {}
    left = total
    for item in items:
        values[item] = min(top, left)
        left -= values[item]
    assert left == 0, f"{total} does not fit in {len(items)} items"
    return values


def pucai_stool_points(count: int) -> int:
    """The published PUCAI points of a stool count: 0-2 0, 3-5 5, 6-8 10, more than 8 15."""
    return 0 if count <= 2 else 5 if count <= 5 else 10 if count <= 8 else 15


def pucai_values(total: int) -> dict[str, int]:
    """PUCAI answers scoring `total` (a multiple of 5 from 0 to 85).

    Choice items get their points; `stools` gets a count (see PUCAI_STOOL_COUNTS) whose
    category points make up the rest.
    """
    flow = load_flow("pucai")
    scales = [
        list(PUCAI_STOOL_COUNTS.values())
        if item == "stools"
        else [o.value or 0 for o in flow.item(item).options]
        for item in PUCAI_ITEMS
    ]
    for combo in itertools.product(*scales):
        values = dict(zip(PUCAI_ITEMS, combo, strict=True))
        points = sum(v for k, v in values.items() if k != "stools")
        if points + pucai_stool_points(values["stools"]) == total:
            return values
    raise ValueError(f"no PUCAI answers add up to {total}")


def by_value(flow: Flow, values: Mapping[str, int | None]) -> dict[str, Reply | None]:
    """Button presses for choice item values, typed numbers for the others; None is SKIP."""
    return {
        k: None if v is None else choice(flow, k, v) if flow.item(k).options else str(v)
        for k, v in values.items()
    }


def complete(
    flow_id: str,
    values: Mapping[str, int | None],
    *,
    lang: str = "en",
    previous: Mapping[str, Any] | None = None,
    extra: Mapping[str, Reply | None] | None = None,
) -> Conversation:
    """Answer a flow through the engine: item values as buttons, plus `extra` replies."""
    flow = load_flow(flow_id)
    replies = {**by_value(flow, values), **(extra or {})}
    return answer_items(flow, context(lang, previous_scores=previous), replies)


def phq9(values: Mapping[str, int | None], *, lang: str = "en") -> Conversation:
    """PHQ-9 answered with these item values; q10 (when asked) answered 'Not difficult'."""
    flow = load_flow("phq9")
    return complete("phq9", values, lang=lang, extra={"q10": choice(flow, "q10", 0)})


def submission(conversation: Conversation) -> SubmissionCompleted:
    """The one submission of a conversation."""
    found = [e for e in events_of(conversation) if isinstance(e, SubmissionCompleted)]
    assert len(found) == 1
    return found[0]


def alerts(events: Sequence[Event]) -> dict[str, AlertRaised]:
    """Raised alerts by rule id."""
    return {e.rule_id: e for e in events if isinstance(e, AlertRaised)}


def last_message(conversation: Conversation) -> str:
    """The text of the last message the contact got."""
    return [e for e in events_of(conversation) if isinstance(e, MessageOut)][-1].text


def answers_with_zeros(values: Mapping[str, int | None]) -> dict[str, dict[str, Any]]:
    """Recorded answers as the runner keeps them in state; None is a missing item."""
    return {
        k: {"code": None, "value": v, "display": str(v)} for k, v in values.items() if v is not None
    }


# -- PHQ-9 ----------------------------------------------------------------------------------

PHQ9_BANDS = [
    (0, "minimal", "minimal"),
    (4, "minimal", "minimal"),
    (5, "mild", "mild"),
    (9, "mild", "mild"),
    (10, "moderate", "moderate"),
    (14, "moderate", "moderate"),
    (15, "moderately_severe", "moderately severe"),
    (19, "moderately_severe", "moderately severe"),
    (20, "severe", "severe"),
    (27, "severe", "severe"),
]


@pytest.mark.parametrize(("total", "band", "label"), PHQ9_BANDS)
def test_phq9_band_boundaries(total: int, band: str, label: str) -> None:
    """Each side of every band boundary, answered through the engine."""
    conversation = phq9(spread(total, PHQ9_ITEMS))
    result = submission(conversation)
    assert result.status == "completed"
    assert result.scores == {"total": total}
    assert result.bands == {"total": band}
    assert f"Your PHQ-9 score is {total} ({label})." in last_message(conversation)


def test_phq9_result_message_names_the_band_in_spanish() -> None:
    """The band label is translated in the completion message."""
    conversation = phq9(spread(12, PHQ9_ITEMS), lang="es")
    assert "Su puntaje del PHQ-9 es 12 (moderado)." in last_message(conversation)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # One missing: sum x 9 / 8, rounded half up.
        ({**spread(4, PHQ9_ITEMS[:8]), "q9": None}, 5),  # 4.5 -> 5, and so "mild"
        ({**spread(12, PHQ9_ITEMS[:8]), "q9": None}, 14),  # 13.5 -> 14
        ({"q1": None, **spread(3, PHQ9_ITEMS[1:])}, 3),  # 3.375 -> 3
        ({"q1": None, **spread(7, PHQ9_ITEMS[1:])}, 8),  # 7.875 -> 8
        ({"q5": None, **spread(24, [i for i in PHQ9_ITEMS if i != "q5"])}, 27),
        # Two missing: sum x 9 / 7.
        ({"q1": None, "q2": None, **spread(1, PHQ9_ITEMS[2:])}, 1),  # 1.29 -> 1
        ({"q1": None, "q2": None, **spread(3, PHQ9_ITEMS[2:])}, 4),  # 3.86 -> 4
        ({"q8": None, "q9": None, **spread(10, PHQ9_ITEMS[:7])}, 13),  # 12.86 -> 13
        (
            {
                "q3": None,
                "q7": None,
                **spread(21, [i for i in PHQ9_ITEMS if i not in ("q3", "q7")]),
            },
            27,
        ),
        # Three or more missing: no total.
        ({"q1": None, "q2": None, "q3": None, **spread(18, PHQ9_ITEMS[3:])}, None),
        (dict.fromkeys(PHQ9_ITEMS), None),
    ],
)
def test_phq9_prorating(values: dict[str, int | None], expected: int | None) -> None:
    """One or two missing items are replaced by the mean (half up); three leave no total."""
    flow = load_flow("phq9")
    scores, bands = compute_scores(flow, answers_with_zeros(values), {})
    assert scores == {"total": expected}
    if expected is None:
        assert bands == {}
    else:
        band = flow.scores[0].band(expected)
        assert band is not None
        assert bands == {"total": band.code}


def test_phq9_prorating_through_the_engine_rounds_half_up() -> None:
    """Skipping one item of eight answered summing 4 gives 4.5, reported as 5 (mild)."""
    conversation = phq9({**spread(4, PHQ9_ITEMS[:8]), "q9": None})
    result = submission(conversation)
    assert "q9" not in result.answers
    assert result.scores == {"total": 5}
    assert result.bands == {"total": "mild"}


def test_phq9_three_skipped_items_give_no_total_band_or_alert() -> None:
    """With three skipped the total is not computed: no band, no severe alert, plain outro.

    The six answered items are all 3 (prorated they would be 27), so only item 9 fires.
    """
    conversation = phq9({"q1": None, "q2": None, "q3": None, **spread(18, PHQ9_ITEMS[3:])})
    result = submission(conversation)
    assert result.scores == {"total": None}
    assert result.bands == {}
    assert set(alerts(events_of(conversation))) == {"phq9_item9"}
    assert last_message(conversation) == "Thank you. Your care team will see your answers."


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_item9_raises_the_crisis_alert_at_the_answer(item9: int) -> None:
    """Any q9 above 0 raises phq9_item9 right after the answer, before the next question."""
    flow = load_flow("phq9")
    conversation = phq9({**dict.fromkeys(PHQ9_ITEMS[:8], 0), "q9": item9})
    turn = next(
        t
        for t in conversation.turns
        if isinstance(t.reply, ChoiceInput) and t.reply.item_id == "q9"
    )
    kinds = [type(e) for e in turn.events]
    assert kinds == [AnswerRecorded, AlertRaised, MessageOut]
    alert = turn.events[1]
    assert isinstance(alert, AlertRaised)
    assert (alert.rule_id, alert.severity, alert.crisis) == ("phq9_item9", "urgent", True)
    assert alert.message and alert.message.startswith("Thank you for telling us.")
    question = turn.events[2]
    assert isinstance(question, MessageOut)
    assert flow.item("q10").text in question.text
    # Raised once, whatever the total (here item9 alone), and not again at completion.
    assert list(alerts(events_of(conversation))) == ["phq9_item9"]
    assert [e.rule_id for e in events_of(conversation) if isinstance(e, AlertRaised)] == [
        "phq9_item9"
    ]
    assert submission(conversation).scores == {"total": item9}


def test_phq9_item9_crisis_message_is_translated() -> None:
    """The words sent with the crisis resources are in the contact's language."""
    conversation = phq9({**dict.fromkeys(PHQ9_ITEMS[:8], 0), "q9": 1}, lang="es")
    alert = alerts(events_of(conversation))["phq9_item9"]
    assert alert.message and alert.message.startswith("Gracias por contarnos.")


def test_phq9_item9_zero_raises_nothing() -> None:
    """q9 = 0 is no safety trigger, even with a moderate total."""
    conversation = phq9({**spread(14, PHQ9_ITEMS[:8]), "q9": 0})
    assert submission(conversation).scores == {"total": 14}
    assert alerts(events_of(conversation)) == {}


def test_phq9_item9_on_the_last_item_fires_before_completion() -> None:
    """When q9 is the only item above 0 and q10 is skipped, the alert still precedes the end."""
    conversation = complete(
        "phq9", {**dict.fromkeys(PHQ9_ITEMS[:8], 0), "q9": 1}, extra={"q10": None}
    )
    events = events_of(conversation)
    alert_at = next(i for i, e in enumerate(events) if isinstance(e, AlertRaised))
    done_at = next(i for i, e in enumerate(events) if isinstance(e, SubmissionCompleted))
    assert alert_at < done_at


@pytest.mark.parametrize(("total", "fires"), [(19, False), (20, True), (27, True)])
def test_phq9_severe_alert_at_20(total: int, fires: bool) -> None:
    """phq9_severe (review, no crisis) is raised at completion from a total of 20."""
    conversation = phq9(spread(total, PHQ9_ITEMS))
    raised = alerts(conversation.turns[-1].events)
    assert ("phq9_severe" in raised) is fires
    if fires:
        assert (raised["phq9_severe"].severity, raised["phq9_severe"].crisis) == ("review", False)


# -- GAD-7 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band", "severe"),
    [
        (0, "minimal", False),
        (4, "minimal", False),
        (5, "mild", False),
        (9, "mild", False),
        (10, "moderate", False),
        (14, "moderate", False),
        (15, "severe", True),
        (21, "severe", True),
    ],
)
def test_gad7_band_boundaries_and_severe_alert(total: int, band: str, severe: bool) -> None:
    """Bands 0-4/5-9/10-14/15-21; gad7_severe at 15 and above, not at 14."""
    conversation = complete("gad7", spread(total, GAD7_ITEMS))
    result = submission(conversation)
    assert result.scores == {"total": total}
    assert result.bands == {"total": band}
    assert set(alerts(events_of(conversation))) == ({"gad7_severe"} if severe else set())
    assert f"Your GAD-7 score is {total} ({band})." in last_message(conversation)


def test_gad7_missing_item_gives_no_total() -> None:
    """GAD-7 has no missing-item rule: a skipped item leaves the total uncomputed."""
    conversation = complete("gad7", {**spread(18, GAD7_ITEMS[:6]), "q7": None})
    result = submission(conversation)
    assert result.scores == {"total": None}
    assert result.bands == {}
    assert alerts(events_of(conversation)) == {}
    assert last_message(conversation) == "Thank you. Your care team will see your answers."


def test_gad7_missing_item_through_compute_scores() -> None:
    """The same rule on an answers dict: six of seven answered is no total."""
    flow = load_flow("gad7")
    six = answers_with_zeros({**spread(6, GAD7_ITEMS[1:]), "q1": None})
    assert compute_scores(flow, six, {}) == ({"total": None}, {})
    seven = answers_with_zeros({**spread(6, GAD7_ITEMS[1:]), "q1": 0})
    assert compute_scores(flow, seven, {}) == ({"total": 6}, {"total": "mild"})


# -- PUCAI ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "remission"),
        (5, "remission"),
        (10, "mild"),
        (30, "mild"),
        (35, "moderate"),
        (60, "moderate"),
        (65, "severe"),
        (85, "severe"),
    ],
)
def test_pucai_bands_through_the_engine(total: int, band: str) -> None:
    """Reachable totals on each side of every boundary, and the maximum of 85."""
    conversation = complete("pucai", pucai_values(total))
    result = submission(conversation)
    assert result.scores == {"total": total}
    assert result.bands == {"total": band}
    assert f"The PUCAI score is {total} ({band})." in last_message(conversation)


@pytest.mark.parametrize(
    ("total", "band"),
    [(9, "remission"), (10, "mild"), (34, "mild"), (35, "moderate"), (64, "moderate")],
)
def test_pucai_band_edges_off_the_answer_grid(total: int, band: str) -> None:
    """Edges no real answers reach (totals are multiples of 5), on an answers dict."""
    flow = load_flow("pucai")
    # A count of 2 stools is still 0 points.
    values = {**dict.fromkeys(PUCAI_ITEMS, 0), "stools": 2, "bleeding": total}
    assert compute_scores(flow, answers_with_zeros(values), {}) == (
        {"total": total},
        {"total": band},
    )


@pytest.mark.parametrize(("total", "fires"), [(30, False), (35, True), (85, True)])
def test_pucai_moderate_alert_at_35(total: int, fires: bool) -> None:
    """pucai_moderate (review) from a total of 35."""
    conversation = complete("pucai", pucai_values(total))
    raised = alerts(events_of(conversation))
    assert ("pucai_moderate" in raised) is fires
    assert "pucai_rise" not in raised  # no previous report


@pytest.mark.parametrize(("total", "fires"), [(25, False), (30, True), (40, True)])
def test_pucai_rise_of_20_since_the_previous_report(total: int, fires: bool) -> None:
    """pucai_rise when the total is at least 20 above the previous report's (10 here)."""
    conversation = complete("pucai", pucai_values(total), previous={"total": 10})
    raised = alerts(events_of(conversation))
    assert ("pucai_rise" in raised) is fires
    assert ("pucai_moderate" in raised) is (total >= 35)


@pytest.mark.parametrize(("total", "fires"), [(29, False), (30, True)])
def test_pucai_rise_edge_on_an_answers_dict(total: int, fires: bool) -> None:
    """A rise of 19 raises nothing, a rise of exactly 20 does."""
    flow = load_flow("pucai")
    previous = {"total": 10}
    values = answers_with_zeros({**dict.fromkeys(PUCAI_ITEMS, 0), "stools": 2, "bleeding": total})
    scores, _ = compute_scores(flow, values, previous)
    fired = fired_alerts(flow.alerts, environment(values, scores, previous), set())
    assert ("pucai_rise" in [rule.id for rule in fired]) is fires


def test_pucai_rise_needs_a_previous_report() -> None:
    """Without a previous total a high first report raises pucai_moderate only."""
    conversation = complete("pucai", pucai_values(85), previous={})
    assert set(alerts(events_of(conversation))) == {"pucai_moderate"}


def test_pucai_answers_keep_points_and_codes() -> None:
    """The submission holds each choice item's code and points, and the stool count as is."""
    values = pucai_values(40)
    result = submission(complete("pucai", values))
    assert result.scores == {"total": 40}
    assert {k: v["value"] for k, v in result.answers.items()} == values
    for item in PUCAI_ITEMS:
        if item != "stools":
            assert result.answers[item]["code"] == f"{item}-{values[item]}"
    assert result.answers["stools"]["code"] is None
    assert result.answers["stools"]["value"] in PUCAI_STOOL_COUNTS.values()


def pucai_with_stools(
    stools: Reply, *, lang: str = "en", rest: Mapping[str, int] | None = None
) -> Conversation:
    """PUCAI with the choice items at `rest` (0 points by default) and this stools reply."""
    flow = load_flow("pucai")
    others = {**dict.fromkeys(PUCAI_ITEMS, 0), **(rest or {})}
    del others["stools"]
    replies = {**by_value(flow, others), "stools": stools}
    return answer_items(flow, context(lang), replies)


@pytest.mark.parametrize(
    ("count", "points"),
    [(0, 0), (2, 0), (3, 5), (5, 5), (6, 10), (8, 10), (9, 15), (40, 15)],
)
def test_pucai_stool_count_maps_to_category_points(count: int, points: int) -> None:
    """Each side of the 0-2 / 3-5 / 6-8 / more-than-8 boundaries, answered through the engine."""
    rest = {"bleeding": 20}
    result = submission(pucai_with_stools(str(count), rest=rest))
    assert result.answers["stools"] == {"code": None, "value": count, "display": str(count)}
    assert result.scores == {"total": 20 + points}


@pytest.mark.parametrize(("lang", "reply"), [("en", "four"), ("es", "cuatro"), ("en", "4")])
def test_pucai_stool_count_as_a_number_word(lang: str, reply: str) -> None:
    """'four' / 'cuatro' (and '4') are a count of four stools, 5 points; never option 4."""
    result = submission(pucai_with_stools(reply, lang=lang))
    assert result.answers["stools"]["value"] == 4
    assert result.scores == {"total": 5}


@pytest.mark.parametrize(
    ("lang", "reply", "expected"),
    [
        ("en", "41", "Sorry, I didn't understand that. Reply with a number from 0 to 40."),
        ("en", "lots", "Sorry, I didn't understand that. Reply with a number from 0 to 40."),
        ("en", "-1", "Sorry, I didn't understand that. Reply with a number from 0 to 40."),
        ("es", "41", "Disculpe, no entendí su respuesta. Responda con un número del 0 al 40."),
        ("es", "muchas", "Disculpe, no entendí su respuesta. Responda con un número del 0 al 40."),
    ],
)
def test_pucai_stool_count_out_of_range_is_refused(lang: str, reply: str, expected: str) -> None:
    """Above 40, or no number at all, is re-asked with the accepted range; nothing recorded."""
    # "1" picks the first option (0 points) of pain, bleeding and consistency.
    conversation = run(load_flow("pucai"), context(lang), ["1", "1", "1", reply, "9"])
    refused, accepted = conversation.turns[4], conversation.turns[5]
    assert [e.text for e in refused.events if isinstance(e, MessageOut)] == [expected]
    assert not any(isinstance(e, AnswerRecorded) for e in refused.events)
    assert [e for e in accepted.events if isinstance(e, AnswerRecorded)] == [
        AnswerRecorded("stools", None, 9, "9")
    ]
    assert conversation.state["awaiting"] == "nocturnal"


# -- IBD check-in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wellbeing", "pain_days", "blood", "expected"),
    [
        ("very-well", "3", "yes", {"ibd_bleeding_pain"}),
        ("very-well", "7", "yes", {"ibd_bleeding_pain"}),
        ("very-well", "2", "yes", set()),
        ("very-well", "7", "no", set()),
        ("unwell", "0", "no", set()),
        ("very-unwell", "0", "no", {"ibd_very_unwell"}),
        ("very-unwell", "5", "yes", {"ibd_bleeding_pain", "ibd_very_unwell"}),
    ],
)
def test_ibd_checkin_alerts(wellbeing: str, pain_days: str, blood: str, expected: set[str]) -> None:
    """Blood with pain on 3+ days, and feeling very unwell, raise review alerts at the end."""
    flow = load_flow("ibd_checkin")
    replies: dict[str, Reply | None] = {
        "wellbeing": choice(flow, "wellbeing", wellbeing),
        "pain_days": pain_days,
        "blood": blood,
        "missed_days": "0",
        "meds": choice(flow, "meds", "all"),
        "note": None,
    }
    conversation = answer_items(flow, context("en"), replies)
    result = submission(conversation)
    assert result.scores == {}
    assert result.answers["pain_days"]["value"] == int(pain_days)
    assert result.answers["blood"]["value"] is (blood == "yes")
    final = alerts(conversation.turns[-1].events)
    assert set(final) == expected
    assert all(a.severity == "review" and not a.crisis for a in final.values())
    earlier = [t.events for t in conversation.turns[:-1]]
    assert all(alerts(events) == {} for events in earlier)
