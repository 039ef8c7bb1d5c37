"""Every benchmark in turn, as a subprocess, then one table of their RESULT lines.

Each benchmark prints its own report (passed through here as it runs) and ends with one
RESULT line per figure (bench/results.py): the figure, the baseline it measured in the same
run, their ratio, the goal and whether it was met. The table gathers those lines; a
benchmark that printed none (it crashed, or timed out) gets a row saying so. `--quick`
shortens the long ones (smaller data, shorter load, fewer families); its figures are for
checking that everything runs, not for comparing.

    .venv/bin/python -m bench.run_all [--quick] [--only inbound,drills] [--logs DIR]

Exit status 1 when any goal was missed or any benchmark failed.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT
from bench.results import Result, parse


@dataclass(frozen=True)
class Bench:
    """A benchmark module and the arguments of its quick run."""

    name: str
    quick: tuple[str, ...] = ()
    timeout: float = 3600.0  # seconds; a full run of the longest takes about half that


BENCHES = (
    Bench("inbound", ("--quick",)),
    Bench("dispatch", ("--quick",)),
    Bench("fanout", ("--patients", "20000")),
    Bench("export", ("--rows", "100000")),
    Bench("dashboard", ("--patients", "5000", "--submissions", "100000", "--requests", "50")),
    Bench("broadcast", ("--families", "20000")),
    Bench("topology", ("--quick",)),
    Bench("drills", ("--quick",)),
    Bench("load", ("--quick",)),
)


@dataclass(frozen=True)
class Ran:
    """One benchmark's run: its RESULT lines, exit status and time."""

    bench: Bench
    results: list[Result]
    status: int | None  # None: timed out
    seconds: float


def run(bench: Bench, *, quick: bool, logs: Path | None) -> Ran:
    """Run one benchmark, passing its output through, and collect its RESULT lines."""
    command = [sys.executable, "-m", f"bench.{bench.name}", *(bench.quick if quick else ())]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    began = time.monotonic()
    log = (logs / f"{bench.name}.log").open("w") if logs else None
    results: list[Result] = []
    with subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if log is not None:
                log.write(line)
            if (result := parse(line.rstrip("\n"))) is not None:
                results.append(result)
            if time.monotonic() - began > bench.timeout:
                process.kill()
        status = process.wait()
    if log is not None:
        log.close()
    timed_out = time.monotonic() - began > bench.timeout
    return Ran(bench, results, None if timed_out else status, time.monotonic() - began)


def table(runs: Sequence[Ran]) -> list[str]:
    """The summary: one row per RESULT line, or per benchmark that printed none."""
    header = (
        f"{'benchmark':<20}{'figure':>12}{'baseline':>12}{'ratio':>9}  {'unit':<11}"
        f"{'met':<5}{'goal':<42}{'exit':>5}{'time':>8}"
    )
    lines = [header, "-" * len(header)]
    for ran in runs:
        exit_text = "t/o" if ran.status is None else str(ran.status)
        tail = f"{exit_text:>5}{ran.seconds:>7.0f}s"
        if not ran.results:
            lines.append(
                f"{ran.bench.name:<20}{'(no RESULT line)':>33}{'':<13}{'no':<5}{'':<42}{tail}"
            )
        for result in ran.results:
            ratio = "" if math.isnan(result.ratio) else f"{result.ratio:.3g}"
            lines.append(
                f"{result.name:<20}{result.figure:>12.4g}{result.baseline:>12.4g}{ratio:>9}  "
                f"{result.unit:<11}{'yes' if result.met else 'NO':<5}{result.goal[:41]:<42}{tail}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Run the chosen benchmarks, print the table; exit status 1 when any failed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    names = [bench.name for bench in BENCHES]
    parser.add_argument("--quick", action="store_true", help="the shortened runs")
    parser.add_argument("--only", help=f"comma list (default all: {','.join(names)})")
    parser.add_argument("--logs", type=Path, help="also write each benchmark's output here")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else names
    if unknown := set(chosen) - set(names):
        parser.error(f"unknown benchmarks: {sorted(unknown)}")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    runs = [
        run(bench, quick=args.quick, logs=args.logs) for bench in BENCHES if bench.name in chosen
    ]
    print("\n" + "\n".join(table(runs)))
    print(
        "figure and baseline in the unit shown, measured in the same run; ratio = figure / "
        "baseline; met: the benchmark's goal (its own output explains it)."
    )
    failed = [
        r for r in runs if r.status != 0 or not r.results or not all(x.met for x in r.results)
    ]
    if failed:
        print("not met or failed: " + ", ".join(r.bench.name for r in failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
