"""The one machine-readable line every benchmark ends with, and its parser (bench.run_all).

    RESULT name=dispatch figure=29.25 baseline=30 ratio=0.975 unit=msg/s goal='ratio>=0.95' met=yes

Values holding spaces are shell-quoted; `shlex.split` reads the line back.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

PREFIX = "RESULT "


@dataclass(frozen=True)
class Result:
    """A benchmark's figure, the baseline measured in the same run, and whether its goal held."""

    name: str
    figure: float
    baseline: float
    unit: str
    goal: str
    met: bool

    @property
    def ratio(self) -> float:
        """figure / baseline (NaN without a baseline)."""
        return self.figure / self.baseline if self.baseline else math.nan

    def line(self) -> str:
        """The RESULT line."""
        fields = {
            "name": self.name,
            "figure": f"{self.figure:.6g}",
            "baseline": f"{self.baseline:.6g}",
            "ratio": f"{self.ratio:.4g}",
            "unit": self.unit,
            "goal": self.goal,
            "met": "yes" if self.met else "no",
        }
        return PREFIX + " ".join(f"{key}={shlex.quote(value)}" for key, value in fields.items())


def report(name: str, *, figure: float, baseline: float, unit: str, goal: str, met: bool) -> Result:
    """Print the RESULT line (flushed, so a parent reading the pipe sees it) and return it."""
    result = Result(name, figure, baseline, unit, goal, met)
    print(result.line(), flush=True)
    return result


def parse(line: str) -> Result | None:
    """The Result of a RESULT line; None for any other line."""
    if not line.startswith(PREFIX):
        return None
    fields = dict(part.partition("=")[::2] for part in shlex.split(line[len(PREFIX) :]))
    try:
        return Result(
            name=fields["name"],
            figure=float(fields["figure"]),
            baseline=float(fields["baseline"]),
            unit=fields.get("unit", ""),
            goal=fields.get("goal", ""),
            met=fields.get("met") == "yes",
        )
    except (KeyError, ValueError):
        return None
