"""SVG line charts: accessible, escaped, with bands, a median, flagged points and gaps."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from c3n_bot.web.charts import Band, data_table, format_value, line_chart, ticks

SVG = "{http://www.w3.org/2000/svg}"


def _chart(**overrides: object) -> str:
    arguments: dict[str, object] = {
        "points": [("W1", 3.0), ("W2", None), ("W3", 12.0), ("W4", 15.0)],
        "y_min": 0,
        "y_max": 27,
        "title": "PHQ-9 <total>",
        "y_label": "Score",
    }
    arguments.update(overrides)
    return str(line_chart(**arguments))  # type: ignore[arg-type]


def test_the_chart_is_well_formed_accessible_svg() -> None:
    root = ET.fromstring(_chart())
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert title.text == "PHQ-9 <total>"  # escaped in the markup, the same text once parsed
    assert desc.text == "Score, W1 – W4: 3 – 15"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_a_missing_value_is_a_gap_and_no_point() -> None:
    root = ET.fromstring(_chart())
    lines = root.findall(f"{SVG}polyline")
    assert [len(line.get("points", "").split()) for line in lines] == [2]  # W3-W4; W1 alone
    assert len(root.findall(f"{SVG}circle")) == 3


def test_bands_median_and_flagged_points() -> None:
    bands = [Band(0, 4.5, "minimal", "ok"), Band(19.5, 27, "severe", "severe")]
    markup = _chart(bands=bands, median=10.0, flagged={3}, median_label="median")
    assert markup.count('class="band band-') == 2
    assert "median 10" in markup
    assert re.findall(r'class="(point[^"]*)"', markup) == ["point", "point", "point flagged"]


def test_two_charts_on_a_page_have_distinct_ids() -> None:
    first, second = _chart(title="A"), _chart(title="B")
    ids = re.compile(r'id="([^"]+)"')
    assert not set(ids.findall(first)) & set(ids.findall(second))


def test_data_table_fallback() -> None:
    table = str(
        data_table([("W1", 50.0), ("W2", None)], caption="Rate", x_label="Week", y_label="%")
    )
    assert "<caption>Rate</caption>" in table
    assert '<th scope="row">W2</th><td>–</td>' in table


def test_values_are_shown_without_trailing_zeros() -> None:
    assert [format_value(v) for v in (3.0, 2.25, 66.666, 0.0)] == ["3", "2.2", "66.7", "0"]


def test_ticks_are_round_numbers() -> None:
    assert ticks(0, 27) == [0, 5, 10, 15, 20, 25]
    assert ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert ticks(5, 5) == [5]
