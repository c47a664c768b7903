"""``walrus-harness shrink``: from an invalid run, the smallest run that still fails the same way.

Test-case reduction for a distributed system (as DEMi, NSDI'16, minimises fuzzed executions): a
candidate is the original's configuration with part of it taken away, and it *fails* when it
shows the kept anomaly kind in a majority of a few reruns (real timing is not deterministic, so
one run proves little either way; the original run counts as one of the original's reruns).
The search, biggest cut first, each cut kept only if the candidate still fails:

1. the fault windows (a start with its stop): none at all; then the *suspects* alone — the
   windows open while the anomaly's witnesses happened (its operations, and its node events on
   the run's clock), the cause an explanation points at; then delta debugging (Zeller's ddmin)
   over the suspects if they fail alone, over every window if not;
2. the kept windows moved earlier, so the first starts when the original's first fault did;
3. each kept window made shorter (its stop moved halfway to its start);
4. the time limit cut to just after the last kept step, then halved while it fails;
5. a lower rate, fewer workers, fewer topics (each halved while it fails), fewer nodes (when no
   kept step names a node that would go);
6. each kept window dropped once more, in the final configuration: a window whose absence
   still fails goes, and when every one was tried the result is 1-minimal where it ends
   (ddmin's 1-minimality held for the configuration it ran in). The budget keeps the runs
   this needs in reserve from step 5.

Every candidate tried, its verdict and the reruns it cost go into ``shrink/shrink.json`` with
the minimal run's directory and the one command that runs it again.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.checker.result import anomalies_of, counts_of
from harness.checker.verdict import WORDS
from harness.progress import Runs
from harness.replay import Original, original
from harness.runner import TestConfig, run_test
from nemesis.schedule import Step, dumps

RERUNS = 3
"""Runs per candidate; it fails when a majority show the anomaly."""

Window = tuple[Step, ...]
"""A start step with the stop that follows it, or alone when the run ended first."""


class NotReproduced(Exception):
    """The original run's anomaly did not come back in a majority of reruns."""


def windows(steps: tuple[Step, ...]) -> list[Window]:
    """The schedule as fault windows: each start with the stop that follows it (alone if the
    run ended first), in order."""
    out: list[Window] = []
    open_: dict[str, int] = {}
    for step in steps:
        if step.action == "start":
            open_[step.fault] = len(out)
            out.append((step,))
        elif step.fault in open_:
            k = open_.pop(step.fault)
            out[k] = (*out[k], step)
    return out


def flatten(kept: list[Window]) -> tuple[Step, ...]:
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


def anomaly_spans(results: dict, kind: str) -> list[tuple[float, float]]:
    """For each anomaly of ``kind`` in a run's results.json, the run-time seconds its witnesses
    span: its operations' invocations and completions, and its node events' true times (on
    the run's clock when results.json has ``t0_ns``)."""
    witnesses = results.get("witnesses", {})
    t0 = results.get("t0_ns")
    spans = []
    for _, a in anomalies_of(results):
        if a.get("kind") == kind:
            ns = []
            for i in a.get("ops", []):
                w = witnesses.get(str(i))
                if w is not None:
                    ns.extend(t for t in (w["inv_ns"], w["ret_ns"]) if t is not None)
            if t0 is not None:
                ns.extend(t - t0 for t in a.get("times_ns", []))
            if ns:
                spans.append((min(ns) / 1e9, max(ns) / 1e9))
    return spans


def suspects(units: list[Window], spans: list[tuple[float, float]], slack: float) -> list[Window]:
    """The windows open while some anomaly's witnesses happened: started before its last
    witness, and not stopped more than ``slack`` seconds before its first."""
    out = []
    for w in units:
        start, stop = w[0].time, (w[1].time if len(w) == 2 else float("inf"))
        if any(start <= hi and stop + slack >= lo for lo, hi in spans):
            out.append(w)
    return out


def moved_earlier(kept: list[Window], first_at: float) -> list[Window]:
    """The windows shifted together so the first starts at ``first_at`` (unchanged if it does
    already or earlier)."""
    if not kept:
        return kept
    by = min(w[0].time for w in kept) - first_at
    if by <= 0:
        return kept
    return [tuple(replace(s, time=round(s.time - by, 6)) for s in w) for w in kept]


def named_nodes(params: dict) -> set[int]:
    """The node ids a planned start names (its ``nodes``, ``node`` or a partition's grudge)."""
    out: set[int] = set()
    for key in ("nodes", "node"):
        value = params.get(key)
        out.update(value if isinstance(value, list) else [] if value is None else [value])
    for node, unheard in (params.get("grudge") or {}).items():
        out.update([int(node), *unheard])
    return {int(n) for n in out}


@dataclass
class Search:
    """The state of one shrink: the budget, what was tried, the smallest failing run so far."""

    first: Original
    kind: str
    out: Path
    budget: int
    reruns: int = RERUNS
    runs: Runs = field(default_factory=lambda: Runs("shrink", 0, live=False))
    """Where each rerun's progress and each change's outcome are shown."""
    spent: int = 0
    tried: list[dict] = field(default_factory=list)
    minimal: TestConfig | None = None
    minimal_run: Path | None = None
    minimal_ops: int | None = None

    def left(self) -> int:
        """Runs still in the budget."""
        return self.budget - self.spent

    def fails(self, config: TestConfig, change: str, hits: int = 0) -> bool:
        """Whether ``config`` shows the anomaly in a majority of reruns, ``hits`` of them
        already seen (False once the budget is spent, so the search keeps what it has)."""
        need = self.reruns // 2 + 1
        misses = 0
        runs = []
        while hits < need and misses <= self.reruns - need:
            if self.spent >= self.budget:
                self.tried.append({"change": change, "kept": False, "why": "budget spent"})
                return False
            self.spent += 1
            name = f"try-{len(self.tried) + 1}"
            self.runs.begin(f"{change}, run {len(runs) + 1}")
            result = run_test(replace(config, store=self.out / "tries", name=name), self.runs.phase)
            runs.append(result)
            if result.valid is False and self.kind in counts_of(result.results):
                hits += 1
            else:
                misses += 1
            self.runs.done(verdict=WORDS[result.valid])
        kept = hits >= need
        self.tried.append({"change": change, "kept": kept, "reruns": len(runs)})
        self.runs.note(
            f"{'kept   ' if kept else 'dropped'} {change} ({len(runs)} runs, {self.spent} spent)"
        )
        failing = [r for r in runs if r.valid is False and self.kind in counts_of(r.results)]
        if kept and failing:
            self.minimal, self.minimal_run = config, failing[0].path
            self.minimal_ops = failing[0].results.get("operations")
        return kept


def describe(config: TestConfig, operations: int | None) -> dict:
    """A run's size, as shrink.json reports it."""
    return {
        "fault_steps": len(config.schedule or ()),
        "operations": operations,
        "time_limit": config.time_limit,
        "workers": config.workload.concurrency,
        "topics": config.workload.topics,
        "nodes": config.nodes,
    }


def _cut_windows(s: Search, config: TestConfig, spans: list) -> list[Window]:
    """Step 1: the fewest windows that still fail."""
    units = windows(config.schedule or ())
    answers: dict[str, bool] = {}

    def with_windows(kept: list[Window]) -> bool:
        steps = flatten(kept)
        key = dumps(list(steps))
        if key not in answers:
            change = f"{len(kept)} of {len(units)} fault windows"
            answers[key] = s.fails(replace(config, schedule=steps), change)
        return answers[key]

    if not units or with_windows([]):
        return []
    suspect = suspects(units, spans, config.nemesis_interval)
    if suspect and len(suspect) < len(units) and with_windows(suspect):
        return ddmin(suspect, with_windows)
    return ddmin(units, with_windows)


def _halve(s: Search, config: TestConfig, reserve: int) -> TestConfig:
    """Step 5: rate (what the operations count most follows), workers and topics halved while
    the candidate fails, then one node fewer while no kept step names it; each only while
    ``reserve`` runs stay in the budget."""
    for what, get, put in (
        ("rate", lambda c: c.workload.rate, lambda c, v: {"rate": v}),
        ("workers", lambda c: c.workload.concurrency, lambda c, v: {"concurrency": v}),
        ("topics", lambda c: c.workload.topics, lambda c, v: {"topics": v}),
    ):
        while get(config) > 1 and s.left() > reserve:
            smaller = max(1, get(config) // 2) if what != "rate" else get(config) / 2
            trial = replace(config, workload=replace(config.workload, **put(config, smaller)))
            if not s.fails(trial, f"{what} {smaller:g}"):
                break
            config = trial
    named = set().union(*(named_nodes(st.params) for st in config.schedule or ()))
    while (
        config.backend != "external"
        and config.nodes > 1
        and config.nodes not in named
        and s.left() > reserve
    ):
        trial = replace(config, nodes=config.nodes - 1)
        try:
            if not s.fails(trial, f"nodes {trial.nodes}"):
                break
        except Exception as exc:  # the system cannot run that many nodes: say so, stop here
            s.tried.append({"change": f"nodes {trial.nodes}", "kept": False, "why": str(exc)})
            break
        config = trial
    return config


def _recheck(
    s: Search, kept: list[Window], config: TestConfig
) -> tuple[list[Window], TestConfig, bool]:
    """Step 6: each kept window dropped in the final configuration, dropped for good when the
    anomaly stays; whether every remaining window was shown needed (1-minimal)."""
    needed: list[Window] = []
    while len(needed) < len(kept):
        window = next(w for w in kept if w not in needed)
        rest = [w for w in kept if w != window]
        change = f"without the {window[0].fault} window"
        if s.fails(replace(config, schedule=flatten(rest)), change):
            kept, needed = rest, []
            config = replace(config, schedule=flatten(kept))
        elif s.tried[-1].get("why") == "budget spent":
            return kept, config, False
        else:
            needed.append(window)
    return kept, config, True


def shrink(run: Path, budget: int, reruns: int = RERUNS, live: bool | None = None) -> dict:
    """Search for the smallest failing run; shrink.json's content. NotReproduced if the original
    does not fail again. Progress (of at most ``budget`` runs) goes to stdout, live on a terminal
    unless ``live`` says otherwise (``harness.progress``)."""
    if budget < 1 or reruns < 1:
        raise ValueError("--budget-runs and --reruns must be at least 1")
    first = original(run)
    results = json.loads((run / "results.json").read_text())
    if first.valid is not False:
        raise ValueError(f"{run}: the run is not invalid: nothing to shrink")
    counts = counts_of(results)
    kind = max(counts, key=lambda k: (counts[k], k))
    with Runs("shrink", budget, live=live) as runs:
        return _search(Search(first, kind, run / "shrink", budget, reruns, runs), results)


def _search(s: Search, results: dict) -> dict:
    """The search itself, from the original run to shrink.json's content."""
    first, kind, budget, run = s.first, s.kind, s.budget, s.out.parent
    config = first.config
    if not s.fails(config, "the original, again", hits=1):
        raise NotReproduced(
            f"{run}: the original's {kind} did not come back in a majority of {s.reruns} reruns"
        )
    s.minimal, s.minimal_run, s.minimal_ops = None, run, results.get("operations")
    original_steps = config.schedule or ()
    kept = _cut_windows(s, config, anomaly_spans(results, kind))
    config = replace(config, schedule=flatten(kept))
    if original_steps:
        earlier = moved_earlier(kept, original_steps[0].time)
        if earlier != kept and s.fails(
            replace(config, schedule=flatten(earlier)), "kept windows moved earlier"
        ):
            kept = earlier
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
    reserve = len(kept) * s.reruns
    config = _halve(s, config, reserve)
    kept, config, one_minimal = _recheck(s, kept, config)
    minimal = s.minimal or first.config
    doc = {
        "smaller": s.minimal is not None and s.minimal != first.config,
        "anomaly": kind,
        "original": describe(first.config, results.get("operations")),
        "minimal": describe(minimal, s.minimal_ops),
        "one_minimal": one_minimal,
        "reruns": s.spent,
        "budget_runs": budget,
        "command": f"walrus-harness replay {s.minimal_run}",
        "minimal_run": str(s.minimal_run),
        "tried": s.tried,
    }
    s.out.mkdir(exist_ok=True)
    (s.out / "shrink.json").write_text(json.dumps(doc, indent=1))
    return doc
