"""Run-chart rules improvement teams read: the median line and the shift signal."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# IHI run-chart rule: six or more consecutive points on one side of the median is a shift.
SHIFT_LENGTH = 6


@dataclass(frozen=True)
class RunChart:
    """A series with its median and the indexes of points that belong to a shift."""

    values: tuple[float | None, ...]
    median: float | None
    shift_points: frozenset[int]

    @property
    def has_shift(self) -> bool:
        """Whether the series shows at least one shift."""
        return bool(self.shift_points)


def analyse(values: Sequence[float | None], *, shift_length: int = SHIFT_LENGTH) -> RunChart:
    """The run chart of a series; a None (a week without data) is not a point."""
    centre = median(values)
    flagged = shifts(values, centre, length=shift_length) if centre is not None else set()
    return RunChart(tuple(values), centre, frozenset(flagged))


def median(values: Sequence[float | None]) -> float | None:
    """The median of the known values, or None when there are none."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def shifts(
    values: Sequence[float | None], centre: float, *, length: int = SHIFT_LENGTH
) -> set[int]:
    """Indexes of the points in runs of `length` or more consecutive points on one side of
    `centre`. Points on the median (and missing points) neither break a run nor count in it."""
    flagged: set[int] = set()
    run: list[int] = []
    side = 0
    for index, value in enumerate(values):
        if value is None or value == centre:
            continue
        this_side = 1 if value > centre else -1
        if this_side != side:
            if len(run) >= length:
                flagged.update(run)
            run, side = [], this_side
        run.append(index)
    if len(run) >= length:
        flagged.update(run)
    return flagged
