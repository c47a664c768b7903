"""Reports of a run: plots, the timeline and the summary, written into the run directory."""

import json
from pathlib import Path

from harness import history
from harness.checker.suite import CHECKERS
from harness.report import plots, summary, timeline


def write_reports(run: Path, results: dict, workload_end_ns: float) -> None:
    """Write every report for the run in ``run``."""
    nemesis, ops = history.load(run / "history.jsonl")
    names = plots.write_all(ops, nemesis, workload_end_ns, run)
    test = json.loads((run / "test.json").read_text())
    anomalies = [a for name in CHECKERS for a in results.get(name, {}).get("anomalies", [])]
    title = f"{test.get('name')} {run.name}"
    timeline.write(ops, nemesis, run / "timeline.html", title, anomalies)
    summary.write(run, results, test, names)
