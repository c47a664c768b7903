"""What every checker returns: a verdict, counts by kind, anomalies as data, and details.

One shape for all of them, as Elle separates an anomaly's data from its explanation: a checker
says *what* it found — the kind, the topic, the operations that witness it (by invoke index),
the nodes, positions and true times involved, and a few kind-specific facts — and
``harness.checker.explain`` turns that into the one line people read, at the edge, when the
results are written. Summaries, campaigns, ``check``, the reports, ``serve``, ``replay`` and
``shrink`` read a run's results.json only through the accessors at the end of this module
(``checker_results``, ``result_of``, ``details_of``, ``anomalies_of``, ``counts_of``,
``fault_windows``), which know every shape results.json has had.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.checker.verdict import NOT_APPLICABLE, Verdict

MAX_REPORTED = 20
"""Anomalies kept per checker (counts cover every one)."""
MAX_PER_KIND = 5
"""Anomalies kept per kind, so that every kind found shows some."""

Json = dict[str, Any]
"""A JSON object as results.json holds it: a run's results, a checker's result, its details."""


@dataclass(frozen=True)
class Anomaly:
    """One violation, or one that operations of unknown outcome might explain (``certain``
    False), as data."""

    kind: str
    topic: str | None = None
    ops: tuple[int, ...] = ()
    """Invoke indexes of the operations that witness it: the smallest set that proves it."""
    nodes: tuple[int | None, ...] = ()
    """The nodes involved; None for one a system did not name."""
    positions: tuple[tuple[int, int], ...] = ()
    """(segment, offset) pairs."""
    times_ns: tuple[int, ...] = ()
    """True times (the host's CLOCK_MONOTONIC) of the node events that witness it."""
    values: tuple[str | None, ...] = ()
    facts: Mapping[str, object] = field(default_factory=dict)
    """Kind-specific numbers the explanation needs (a sealed count, a lease expiry)."""
    certain: bool = True

    def to_json(self, text: str) -> dict[str, object]:
        """As stored in results.json, with its one-line ``text``."""
        return {
            "kind": self.kind,
            "topic": self.topic,
            "ops": list(self.ops),
            "nodes": list(self.nodes),
            "positions": [list(p) for p in self.positions],
            "times_ns": list(self.times_ns),
            "values": list(self.values),
            "facts": dict(self.facts),
            "certain": self.certain,
            "text": text,
        }


@dataclass(frozen=True)
class CheckResult:
    """A checker's verdict, its counts by anomaly kind, the anomalies kept, and details (totals,
    statistics, a ``why`` for a verdict that is not True or False)."""

    valid: Verdict
    counts: Mapping[str, int] = field(default_factory=dict)
    anomalies: tuple[Anomaly, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)


def keep(anomalies: list[Anomaly]) -> tuple[Anomaly, ...]:
    """At most MAX_PER_KIND of each kind and MAX_REPORTED in all, certain ones first."""
    kept: list[Anomaly] = []
    per_kind: dict[str, int] = {}
    for a in sorted(anomalies, key=lambda a: not a.certain):
        if len(kept) >= MAX_REPORTED:
            break
        if per_kind.get(a.kind, 0) < MAX_PER_KIND:
            per_kind[a.kind] = per_kind.get(a.kind, 0) + 1
            kept.append(a)
    return tuple(kept)


def not_applicable(why: str) -> CheckResult:
    """The result of a checker whose inputs the system under test cannot produce."""
    return CheckResult(NOT_APPLICABLE, details={"why": why})


RESULTS_VERSION = 2
"""The shape of results.json this code writes: 2 keeps every checker's result under
``checkers``; 1 (no ``version`` field) kept each at the top level under its name."""

VERSION_1_CHECKERS = ("queue", "totals", "lease", "perf", "storage")
"""The checkers a version-1 results.json could hold, at its top level."""


def checker_results(results: Json) -> dict[str, Json]:
    """Every checker's stored result in a run's results.json, by name, in the order they ran."""
    if results.get("version", 1) >= 2:
        return dict(results.get("checkers", {}))
    return {n: results[n] for n in VERSION_1_CHECKERS if isinstance(results.get(n), dict)}


def result_of(results: Json, name: str) -> Json:
    """The stored result of checker ``name`` ({} when the run has none)."""
    return checker_results(results).get(name, {})


def details_of(results: Json, name: str) -> Json:
    """The details of checker ``name``'s stored result ({} when the run has none)."""
    details: Json = result_of(results, name).get("details", {})
    return details


def anomalies_of(results: Json) -> list[tuple[str, Json]]:
    """Every stored anomaly, with the name of the checker that found it, in checker order."""
    return [(n, a) for n, r in checker_results(results).items() for a in r.get("anomalies", [])]


def counts_of(results: Json) -> dict[str, int]:
    """Every anomaly count of a run's results.json, by kind, over every checker."""
    out: dict[str, int] = {}
    for r in checker_results(results).values():
        for kind, n in r["counts"].items():
            out[kind] = out.get(kind, 0) + n
    return out


def fault_windows(results: Json) -> list[tuple[str, float, float, object]]:
    """The run's fault windows as the checkers saw them: (fault, start ns, stop ns, value), a
    window still open at the end stopping at infinity."""
    return [
        (name, start, math.inf if stop is None else stop, value)
        for name, start, stop, value in results.get("fault_windows", [])
    ]


def found(result: Json) -> str:
    """What a checker's stored result found, in a few words: its error, its counts, or why its
    verdict is what it is."""
    details = result.get("details", {})
    counts = ", ".join(f"{k} {v}" for k, v in result.get("counts", {}).items())
    words: str = details.get("error") or counts or details.get("why", "")
    return words
