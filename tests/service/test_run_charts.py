"""Run-chart rules: the median and the shift of six or more points on one side."""

from __future__ import annotations

import pytest

from c3n_bot.service.run_charts import analyse, median, shifts


def test_median_of_odd_and_even_counts() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_median_ignores_missing_weeks_and_is_none_without_data() -> None:
    assert median([None, 5, None, 7]) == 6
    assert median([]) is None
    assert median([None, None]) is None


def test_six_points_above_the_median_are_a_shift() -> None:
    values = [1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9]
    assert shifts(values, 5) == set(range(6, 12)) | set(range(6))


def test_five_points_on_one_side_are_not_a_shift() -> None:
    values = [1, 9, 9, 9, 9, 9, 1, 1, 9]
    assert shifts(values, 5) == set()


def test_points_on_the_median_neither_break_nor_count() -> None:
    values = [9, 9, 5, 9, 5, 9, 9, 1]
    # Five points above with two on the median between them: still five, no shift.
    assert shifts(values, 5) == set()
    values = [9, 9, 5, 9, 9, 5, 9, 9, 1]
    assert shifts(values, 5) == {0, 1, 3, 4, 6, 7}


def test_missing_weeks_do_not_break_a_run() -> None:
    values = [2, None, 2, 2, None, 2, 2, 2, 8]
    assert shifts(values, 5) == {0, 2, 3, 5, 6, 7}


def test_a_shift_below_and_one_above() -> None:
    values = [1] * 6 + [9] * 7
    assert shifts(values, 5) == set(range(13))


def test_a_side_change_resets_the_run() -> None:
    values = [1, 1, 1, 9, 1, 1, 1]
    assert shifts(values, 5) == set()


@pytest.mark.parametrize("values", [[], [None, None], [4.0]])
def test_analyse_without_enough_data_flags_nothing(values: list[float | None]) -> None:
    chart = analyse(values)
    assert not chart.has_shift
    assert chart.median == (4.0 if values == [4.0] else None)


def test_analyse_with_its_own_median() -> None:
    values: list[float | None] = [10, 10, 10, 10, 10, 10, 30, 40, 50, 60, 70, 80]
    chart = analyse(values)
    assert chart.median == 20
    assert chart.shift_points == frozenset(range(12))
    assert chart.has_shift


def test_constant_series_has_no_shift() -> None:
    assert not analyse([7.0] * 12).has_shift
