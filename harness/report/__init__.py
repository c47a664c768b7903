"""Reports of a run: plots, the timeline and the summary, written into the run directory."""

import json
from pathlib import Path

from harness.checker.result import anomalies_of, fault_windows
from harness.history import columns
from harness.report import plots, summary, timeline


def write_reports(
    run: Path, results: dict, workload_end_ns: float, loaded: columns.Loaded | None = None
) -> None:
    """Write every report for the run in ``run`` (``loaded``: its history, if read already)."""
    loaded = loaded or columns.load(run / "history.jsonl")
    windows = fault_windows(results)
    names = plots.write_all(loaded.ops, loaded.nemesis, windows, workload_end_ns, run)
    test = json.loads((run / "test.json").read_text())
    anomalies = [a for _, a in anomalies_of(results)]
    title = f"{test.get('name')} {run.name}"
    timeline.write(loaded.ops, windows, run / "timeline.html", title, anomalies)
    summary.write(run, results, test, names, loaded.nemesis)
