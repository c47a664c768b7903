"""Every checker over one history, combined: the verdict of a test run or of ``check``.

Each checker runs under a guard, as Jepsen's ``compose`` runs its checkers: one that raises says
``unknown``, with its error and traceback kept in its result, and the others still decide, so a
bug in one checker can neither hide another's violation nor lose the run's results.
"""

import functools
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np

from harness import history
from harness.checker import lease, metadata, perf, queue, storage, totals
from harness.checker.explain import explain
from harness.checker.resolve import apply, resolve_info_gets
from harness.checker.result import RESULTS_VERSION, CheckResult, Json, not_applicable
from harness.checker.verdict import UNKNOWN, merge
from harness.history import columns
from harness.history.columns import NO, Columns
from harness.history.delivery import Delivery
from harness.history.host_clocks import HostClocks
from harness.history.node_events import NodeEvent


def is_black_box(loaded: columns.Loaded) -> bool:
    """What the history says of itself: its header, else whether any acknowledged put carries a
    position (a black box's plain PUT reports none)."""
    if loaded.header.black_box is not None:
        return loaded.header.black_box
    c = loaded.ops
    return not bool(np.any(c.acked_put & (c.seg != NO)))


BLACK_BOX_WHY = {
    "lease": "a black-box system reports no positions, epochs or node event logs",
    "storage": "a black-box system cannot list what it stores",
    "metadata": "a black-box system writes no event log of its Raft entries",
}


class Given(TypedDict, total=False):
    """What a run gives besides its history (``Evidence``'s other fields)."""

    events: list[NodeEvent] | None
    audit: Json | None
    lease_s: float | None
    workload_end: float | None
    black_box: bool | None
    clocks: HostClocks | None


@dataclass(frozen=True)
class Evidence:
    """What one run leaves to be checked: its history, read once, and what the nodes gave."""

    history: columns.Loaded
    events: list[NodeEvent] | None = None
    """The nodes' event logs (None: not given)."""
    audit: Json | None = None
    """The final SCAN audit and STATE of every topic (None: not given)."""
    lease_s: float | None = None
    """The nodes' lease duration (None: the node's default)."""
    workload_end: float | None = None
    """When the workload stopped (ns): the drain after it is left out of the performance
    statistics (None: the last operation's completion)."""
    black_box: bool | None = None
    """Whether to judge it as a black box (None: what the history says of itself)."""
    clocks_apart: str | None = None
    """Why the nodes' event times and the history's cannot be set on one time line (each host
    its own CLOCK_MONOTONIC, offsets not measured); None: they can."""
    clocks: HostClocks | None = None
    """The hosts' clocks measured against the control node's, which set the nodes' events on the
    history's time line (None: every node read one machine's clock)."""

    @classmethod
    def read(cls, history_path: Path, **given: Unpack[Given]) -> "Evidence":
        """The evidence of the history at ``history_path`` with ``given``'s fields."""
        return cls(columns.load(history_path), **given)


def check_run(evidence: Evidence) -> Json:
    """Run every checker that applies; ``valid`` merges them (verdict.merge). A black box makes
    the lease and storage checkers not applicable."""
    black_box = evidence.black_box
    if black_box is None:
        black_box = is_black_box(evidence.history)
    c = evidence.history.ops
    events, audit = evidence.events, evidence.audit
    bound: int | None = None
    if evidence.clocks is not None:
        events, bound = evidence.clocks.aligned(events or [])
        bound = bound or evidence.clocks.widest()
    resolutions = [] if black_box else resolve_info_gets(c, events, audit)
    c = apply(c, resolutions)
    windows = history.nemesis_windows(evidence.history.nemesis)
    finite = c.ret[np.isfinite(c.ret)]
    given = Inputs(
        c,
        events,
        audit,
        (audit or {}).get("states", {}),
        evidence.lease_s or DEFAULT_LEASE_S,
        windows,
        evidence.workload_end or (float(finite.max()) if len(finite) else 0),
        black_box,
        evidence.history.header.promise,
        evidence.clocks_apart,
        bound,
    )
    found: dict[str, CheckResult] = {}
    for name, checker in CHECKERS.items():
        result = guarded(name, functools.partial(checker, given))
        if result is not None:
            found[name] = result
    named = sorted({i for r in found.values() for a in r.anomalies for i in a.ops})
    by_index = c.ops(named)
    results = {name: to_json(result, by_index) for name, result in found.items()}
    verdict = merge([r["valid"] for r in results.values()])
    try:
        cluster = _cluster_facts(given.states, events)
    except Exception as exc:  # facts for people, not a verdict: say why they are missing
        cluster = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "version": RESULTS_VERSION,
        "valid": verdict,
        "black_box": black_box,
        "delivery": given.delivery.to_json(),
        "operations": len(c),
        "faults": len(windows),
        "fault_windows": [
            [name, start, None if stop == history.INF else stop, value]
            for name, start, stop, value in windows
        ],
        "info_gets_resolved": len(resolutions),
        "checkers": results,
        "cluster": cluster,
        "witnesses": {str(i): witness(op) for i, op in by_index.items()},
    }


def witness(op: history.Op) -> dict[str, object]:
    """An operation an anomaly names, as results.json keeps it for the reports to draw without
    reading the history again."""
    return {
        "process": op.process,
        "f": op.f,
        "topic": op.topic,
        "value": op.value,
        "type": op.type,
        "inv_ns": op.inv,
        "ret_ns": None if op.ret == history.INF else op.ret,
        "node": op.node,
        "pos": None if op.pos is None else list(op.pos),
        "text": op.describe(),
    }


@dataclass(frozen=True)
class Inputs:
    """What the checkers of one run are given."""

    ops: Columns
    events: list[NodeEvent] | None
    audit: Json | None
    states: dict[str, Json]
    lease_s: float
    windows: list[tuple[str, float, float, object]]
    end: float
    black_box: bool
    delivery: Delivery
    """What the system promises about delivery (the history's header)."""
    clocks_apart: str | None = None
    """``Evidence.clocks_apart``."""
    clock_bound_ns: int | None = None
    """How far apart the hosts' clocks may be once aligned (None: one machine's clock)."""

    @property
    def last_fault(self) -> float:
        """When (ns) the last fault started or stopped (INF: one never stopped; 0: none)."""
        return max((max(start, stop) for _, start, stop, _ in self.windows), default=0.0)


def _storage(i: Inputs) -> CheckResult | None:
    if i.black_box:
        return not_applicable(BLACK_BOX_WHY["storage"])
    if i.audit is None or "segments" not in i.audit:
        return None  # not audited: no storage result at all
    return storage.check(i.ops, i.audit)


CHECKERS: dict[str, Callable[[Inputs], CheckResult | None]] = {
    "queue": lambda i: queue.check(i.ops, i.delivery),
    "totals": lambda i: totals.check(i.ops, i.delivery, i.last_fault),
    "lease": lambda i: (
        not_applicable(BLACK_BOX_WHY["lease"])
        if i.black_box
        else not_applicable(i.clocks_apart)
        if i.clocks_apart
        else lease.check(i.ops, i.states, i.events, i.lease_s, i.clock_bound_ns)
    ),
    "perf": lambda i: perf.check(i.ops, i.windows, i.end),
    "storage": _storage,
    "metadata": lambda i: (
        not_applicable(BLACK_BOX_WHY["metadata"])
        if i.black_box and not i.events
        else metadata.check(i.events, i.clock_bound_ns or 0)
    ),
}
"""Every checker, by the name its result has in results.json, in the order they run."""


def guarded(name: str, run: Callable[[], CheckResult | None]) -> CheckResult | None:
    """``run()``'s result, or, if it raised, ``unknown`` with the error and its traceback."""
    try:
        return run()
    except Exception as exc:
        return CheckResult(
            UNKNOWN,
            details={
                "error": f"the {name} checker failed: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            },
        )


def to_json(result: CheckResult, ops: dict[int, history.Op]) -> Json:
    """A checker's result as results.json holds it, each anomaly with its line of text."""
    return {
        "valid": result.valid,
        "counts": dict(result.counts),
        "anomalies": [a.to_json(explain(a, ops)) for a in result.anomalies],
        "details": dict(result.details),
    }


DEFAULT_LEASE_S = 2.0
"""The lease duration assumed when none is given (the node's default)."""


def _cluster_facts(states: dict[str, Json], events: list[NodeEvent] | None) -> Json:
    """What the faults did to the cluster: segments and leaders per topic, takeovers, restarts."""
    topics = {
        topic: {
            "segments": state.get("current_segment"),
            "sealed_entries": sum(state.get("sealed_segments", {}).values()),
            "leaders": sorted(set(state.get("segment_leaders", {}).values())),
            "leader_changes": sum(1 for a, b in zip(*_leader_runs(state), strict=False) if a != b),
            "lost_segments": len(state.get("lost_segments", [])),
        }
        for topic, state in states.items()
    }
    if not events:
        return {"topics": topics}
    return {
        "topics": topics,
        "takeovers": sum(_moved(e) for e in events if e.kind == "takeover"),
        "disks_lost": sum(1 for e in events if e.kind == "disk-lost"),
        "node_starts": sum(1 for e in events if e.kind == "start"),
        "lease_losses": sum(1 for e in events if e.kind == "lease-loss"),
    }


def _moved(event: NodeEvent) -> int:
    """Segments a takeover event moved ("taken-over N")."""
    kind, _, count = str(event.result or "").partition(" ")
    return int(count) if kind == "taken-over" and count.isdigit() else 0


def _leader_runs(state: Json) -> tuple[list[int], list[int]]:
    leaders = [
        state["segment_leaders"][k] for k in sorted(state.get("segment_leaders", {}), key=int)
    ]
    return leaders, leaders[1:]
