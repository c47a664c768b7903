"""Every checker over one history, combined: the verdict of a test run or of ``check``."""

from pathlib import Path

from harness import history
from harness.checker import lease, perf, queue, storage, totals
from harness.checker.queue import merge_verdicts
from harness.checker.resolve import resolve_info_gets
from walrus.events import read_events


def node_events(nodes_dir: Path) -> list[dict]:
    """Every event of every ``<nodes_dir>/<node>/events.jsonl``."""
    events: list[dict] = []
    for path in sorted(nodes_dir.glob("*/events.jsonl")):
        events.extend(read_events(path))
    return events


def check_run(
    history_path: Path,
    events: list[dict] | None,
    audit: dict | None,
    lease_s: float,
    workload_end: float | None = None,
) -> dict:
    """Run every checker; ``valid`` is False if any is, else unknown if any is, else True.

    ``workload_end`` (ns) bounds the performance statistics (the drain after it is left out).
    """
    nemesis, ops = history.load(history_path)
    resolved = resolve_info_gets(ops, events, audit)
    end = workload_end or max((o.ret for o in ops if o.ret != history.INF), default=0)
    windows = history.nemesis_windows(nemesis)
    states = (audit or {}).get("states", {})
    results = {
        "queue": queue.check(ops),
        "totals": totals.check(ops),
        "lease": lease.check(ops, states, events, lease_s),
        "perf": perf.check(ops, windows, end),
    }
    if audit is not None:
        results["storage"] = storage.check(ops, audit)
    verdict = merge_verdicts([r["valid"] for r in results.values()])
    results["cluster"] = _cluster_facts(states, events)
    return {
        "valid": verdict,
        "operations": len(ops),
        "faults": len(windows),
        "info_gets_resolved": resolved,
        **results,
    }


def _cluster_facts(states: dict[str, dict], events: list[dict] | None) -> dict:
    """What the faults did to the cluster: segments and leaders per topic, takeovers, restarts."""
    topics = {
        topic: {
            "segments": state.get("current_segment"),
            "leaders": sorted(set(state.get("segment_leaders", {}).values())),
            "leader_changes": sum(1 for a, b in zip(*_leader_runs(state), strict=False) if a != b),
        }
        for topic, state in states.items()
    }
    events = events or []
    return {
        "topics": topics,
        "takeovers": sum(_moved(e) for e in events if e["kind"] == "takeover"),
        "node_starts": sum(1 for e in events if e["kind"] == "start"),
        "lease_losses": sum(1 for e in events if e["kind"] == "lease-loss"),
    }


def _moved(event: dict) -> int:
    """Segments a takeover event moved ("taken-over N")."""
    kind, _, count = str(event.get("result", "")).partition(" ")
    return int(count) if kind == "taken-over" and count.isdigit() else 0


def _leader_runs(state: dict) -> tuple[list, list]:
    leaders = [
        state["segment_leaders"][k] for k in sorted(state.get("segment_leaders", {}), key=int)
    ]
    return leaders, leaders[1:]


EXIT_CODES = {True: 0, False: 1, "unknown": 2}
