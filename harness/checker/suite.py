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
    return {
        "valid": verdict,
        "operations": len(ops),
        "faults": len(windows),
        "info_gets_resolved": resolved,
        **results,
    }


EXIT_CODES = {True: 0, False: 1, "unknown": 2}
