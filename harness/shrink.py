"""``walrus-harness shrink``: from an invalid run, the smallest run that still fails the same way.

Test-case reduction for a distributed system (as DEMi, NSDI'16, minimises fuzzed executions): a
candidate is the original's configuration with part of it taken away, and it *fails* when it
shows the kept anomaly kind in a majority of a few reruns (real timing is not deterministic, so
one run proves little either way). The search, cheapest cut first, each step kept only if the
candidate still fails:

1. the fault windows (a start with its stop): none at all, then delta debugging (Zeller's
   ddmin) over them, which ends 1-minimal when the budget lets it — dropping any one window
   left makes the anomaly go away;
2. each kept window made shorter (its stop moved halfway to its start);
3. the time limit cut to just after the last kept window, then halved while it fails;
4. fewer workers, fewer topics, a lower rate (each halved while it fails).

Every candidate tried, its verdict and the reruns it cost go into ``shrink/shrink.json`` with
the minimal run's directory and the one command that runs it again.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.checker.result import counts_of
from harness.replay import Original, original
from harness.runner import TestConfig, run_test
from nemesis.schedule import Step, dumps

RERUNS = 3
"""Runs per candidate; it fails when a majority show the anomaly."""


class NotReproduced(Exception):
    """The original run's anomaly did not come back in a majority of reruns."""


def windows(steps: tuple[Step, ...]) -> list[tuple[Step, ...]]:
    """The schedule as fault windows: each start with the stop that follows it (alone if the
    run ended first), in order."""
    out: list[tuple[Step, ...]] = []
    open_: dict[str, int] = {}
    for step in steps:
        if step.action == "start":
            open_[step.fault] = len(out)
            out.append((step,))
        elif step.fault in open_:
            k = open_.pop(step.fault)
            out[k] = (*out[k], step)
    return out


def flatten(kept: list[tuple[Step, ...]]) -> tuple[Step, ...]:
    """The steps of some windows, in time order."""
    return tuple(sorted((s for w in kept for s in w), key=lambda s: s.time))


def ddmin(units: list, fails: Callable[[list], bool]) -> list:
    """Zeller's delta debugging: a subset of ``units`` that still ``fails`` (the empty one first),
    1-minimal when ``fails`` answers every question it is asked."""
    if fails([]):
        return []
    n = 2
    while len(units) >= 2:
        size = -(-len(units) // n)
        chunks = [units[i : i + size] for i in range(0, len(units), size)]
        found = next((c for c in chunks if fails(c)), None)
        if found is not None:
            units, n = found, 2
            continue
        if len(chunks) > 2:
            rest = ([u for u in units if u not in c] for c in chunks)
            found = next((r for r in rest if fails(r)), None)
            if found is not None:
                units, n = found, max(n - 1, 2)
                continue
        if n >= len(units):
            break
        n = min(len(units), n * 2)
    return units


@dataclass
class Search:
    """The state of one shrink: the budget, what was tried, the smallest failing run so far."""

    first: Original
    kind: str
    out: Path
    budget: int
    reruns: int = RERUNS
    log: Callable[[str], None] = print
    spent: int = 0
    tried: list[dict] = field(default_factory=list)
    minimal: TestConfig | None = None
    minimal_run: Path | None = None
    minimal_ops: int | None = None

    def fails(self, config: TestConfig, change: str) -> bool:
        """Whether ``config`` shows the anomaly in a majority of reruns (False once the budget
        is spent, so the search keeps what it has)."""
        need = self.reruns // 2 + 1
        hits = misses = 0
        runs = []
        while hits < need and misses <= self.reruns - need:
            if self.spent >= self.budget:
                self.tried.append({"change": change, "kept": False, "why": "budget spent"})
                return False
            self.spent += 1
            name = f"try-{len(self.tried) + 1}"
            result = run_test(replace(config, store=self.out / "tries", name=name), lambda m: None)
            runs.append(result)
            if result.valid is False and self.kind in counts_of(result.results):
                hits += 1
            else:
                misses += 1
        kept = hits >= need
        self.tried.append({"change": change, "kept": kept, "reruns": len(runs)})
        self.log(
            f"{'kept   ' if kept else 'dropped'} {change} ({len(runs)} runs, {self.spent} spent)"
        )
        if kept:
            failing = next(
                r for r in runs if r.valid is False and self.kind in counts_of(r.results)
            )
            self.minimal, self.minimal_run = config, failing.path
            self.minimal_ops = failing.results.get("operations")
        return kept


def describe(config: TestConfig, operations: int | None) -> dict:
    """A run's size, as shrink.json reports it."""
    return {
        "fault_steps": len(config.schedule or ()),
        "operations": operations,
        "time_limit": config.time_limit,
        "workers": config.workload.concurrency,
        "topics": config.workload.topics,
    }


def shrink(
    run: Path, budget: int, reruns: int = RERUNS, log: Callable[[str], None] = print
) -> dict:
    """Search for the smallest failing run; shrink.json's content. NotReproduced if the original
    does not fail again."""
    if budget < 1 or reruns < 1:
        raise ValueError("--budget-runs and --reruns must be at least 1")
    first = original(run)
    results = json.loads((run / "results.json").read_text())
    if first.valid is not False:
        raise ValueError(f"{run}: the run is not invalid: nothing to shrink")
    counts = counts_of(results)
    kind = max(counts, key=lambda k: (counts[k], k))
    s = Search(first, kind, run / "shrink", budget, reruns, log)
    config = first.config
    if not s.fails(config, "the original, again"):
        raise NotReproduced(
            f"{run}: the original's {kind} did not come back in a majority of {s.reruns} reruns"
        )
    units = windows(config.schedule or ())

    answers: dict[str, bool] = {}

    def with_windows(kept: list) -> bool:
        steps = flatten(kept)
        key = dumps(list(steps))
        if key not in answers:
            change = f"{len(kept)} of {len(units)} fault windows"
            answers[key] = s.fails(replace(config, schedule=steps), change)
        return answers[key]

    kept = ddmin(units, with_windows) if units else []
    config = replace(config, schedule=flatten(kept))
    for i, window in enumerate(kept):
        if len(window) == 2:
            start, stop = window
            shorter = replace(stop, time=round(start.time + (stop.time - start.time) / 2, 6))
            trial = [*kept[:i], (start, shorter), *kept[i + 1 :]]
            if s.fails(replace(config, schedule=flatten(trial)), f"window {i + 1} halved"):
                kept = trial
                config = replace(config, schedule=flatten(kept))
    last = max((st.time for st in config.schedule or ()), default=0.0)
    limit = round(last + config.nemesis_interval, 3)
    while 2 <= limit < config.time_limit:
        if not s.fails(replace(config, time_limit=limit), f"time limit {limit:g} s"):
            break
        config = replace(config, time_limit=limit)
        limit = round(max(last + 1, limit / 2), 3)
    for what, get, put in (
        ("workers", lambda c: c.workload.concurrency, lambda c, v: {"concurrency": v}),
        ("topics", lambda c: c.workload.topics, lambda c, v: {"topics": v}),
        ("rate", lambda c: c.workload.rate, lambda c, v: {"rate": v}),
    ):
        while get(config) > 1:
            smaller = max(1, get(config) // 2) if what != "rate" else get(config) / 2
            trial = replace(config, workload=replace(config.workload, **put(config, smaller)))
            if not s.fails(trial, f"{what} {smaller:g}"):
                break
            config = trial
    minimal = s.minimal or first.config
    doc = {
        "smaller": s.minimal is not None and s.minimal != first.config,
        "anomaly": kind,
        "original": describe(first.config, results.get("operations")),
        "minimal": describe(minimal, s.minimal_ops),
        "reruns": s.spent,
        "budget_runs": budget,
        "command": f"walrus-harness replay {s.minimal_run}",
        "minimal_run": str(s.minimal_run),
        "tried": s.tried,
    }
    s.out.mkdir(exist_ok=True)
    (s.out / "shrink.json").write_text(json.dumps(doc, indent=1))
    return doc
