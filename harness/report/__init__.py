"""Reports of a run: plots, the timeline and the summary, written into the run directory."""

import json
from pathlib import Path

from harness import columns
from harness.checker.suite import CHECKERS
from harness.report import plots, summary, timeline


def write_reports(
    run: Path, results: dict, workload_end_ns: float, loaded: columns.Loaded | None = None
) -> None:
    """Write every report for the run in ``run`` (``loaded``: its history, if read already)."""
    nemesis, c = loaded or columns.load(run / "history.jsonl")
    names = plots.write_all(c, nemesis, workload_end_ns, run)
    test = json.loads((run / "test.json").read_text())
    anomalies = [a for name in CHECKERS for a in results.get(name, {}).get("anomalies", [])]
    title = f"{test.get('name')} {run.name}"
    timeline.write(c, nemesis, run / "timeline.html", title, anomalies)
    summary.write(run, results, test, names, nemesis)
