"""The results browser's benchmark: how long a large run's page takes to load in a real browser.

A run of ``operations`` operations is made as a test run leaves it — the checker benchmark's
synthetic history with one delivery duplicated (so the page has anomalies to draw), every
checker, every report — in a store of its own; ``walrus-harness serve`` serves it on loopback and
a headless chromium loads the index and the run page several times. The time is the browser's
own: navigation start to the end of the load event (images included).
"""

import json
import statistics
import threading
import time
from pathlib import Path

from harness.bench.checker import generate
from harness.checker.suite import Evidence, check_run
from harness.history import columns
from harness.report import write_reports
from harness.serve.app import make_server
from harness.serve.browser import chromium, load_seconds


def plant_duplicate(path: Path) -> None:
    """Make the history's 1000th acknowledged dequeue return what the one before it returned."""
    lines = path.read_bytes().splitlines()
    gets = [
        n
        for n, line in enumerate(lines)
        if b'"type":"ok"' in line and b'"f":"get"' in line and b'"value":null' not in line
    ]
    if len(gets) < 2:
        return
    target, source = gets[min(1000, len(gets) - 1)], gets[min(999, len(gets) - 2)]
    raw = json.loads(lines[target])
    raw["value"] = json.loads(lines[source])["value"]
    lines[target] = json.dumps(raw, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")


def make_run(store: Path, operations: int) -> tuple[Path, dict]:
    """A checked run of ``operations`` synthetic operations, with its reports; (directory,
    seconds per stage)."""
    run = store / "bench-serve" / time.strftime("%Y%m%dT%H%M%S")
    run.mkdir(parents=True)
    stages = {}
    t = time.perf_counter()
    generate(run / "history.jsonl", operations)
    plant_duplicate(run / "history.jsonl")
    stages["generate_s"] = time.perf_counter() - t
    (run / "test.json").write_text(
        json.dumps(
            {
                "name": "bench-serve",
                "backend": "synthetic",
                "nemesis": "none",
                "seed": 1,
                "system": {"name": "synthetic", "description": "synthetic queue history"},
            }
        )
    )
    t = time.perf_counter()
    loaded = columns.load(run / "history.jsonl")
    results = check_run(Evidence(loaded))
    (run / "results.json").write_text(json.dumps(results))
    stages["check_s"] = time.perf_counter() - t
    t = time.perf_counter()
    last = (run / "history.jsonl").read_bytes().rstrip().rsplit(b"\n", 1)[-1]
    write_reports(run, results, json.loads(last)["time"], loaded)
    stages["reports_s"] = time.perf_counter() - t
    return run, stages


def run(operations: int, store: Path, loads: int = 5) -> dict:
    """Make the run, serve the store, load its pages ``loads`` times each; the measurements."""
    directory, stages = make_run(store, operations)
    results = json.loads((directory / "results.json").read_text())
    server = make_server(store, "127.0.0.1", 0, lambda m: None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rel = directory.relative_to(store).as_posix()
    browser = chromium()
    try:
        pages = {
            "index": f"{base}/",
            "run": f"{base}/run/{rel}/",
            "timeline": f"{base}/file/{rel}/timeline.html",
        }
        times = {
            name: [load_seconds(browser, u) for _ in range(loads)] for name, u in pages.items()
        }
    finally:
        browser.quit()
        server.shutdown()
        server.server_close()
    return {
        "operations": results["operations"],
        "verdict": results["valid"],
        "anomalies_shown": sum(
            len(r.get("anomalies", [])) for r in results.values() if isinstance(r, dict)
        ),
        "run_dir": str(directory),
        **stages,
        **{
            f"{name}_load_s": {"median": statistics.median(ts), "max": max(ts), "all": ts}
            for name, ts in times.items()
        },
    }
