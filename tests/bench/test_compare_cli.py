"""`walrus-harness bench compare` as a user meets it: bad input, results, a failed system."""

import json
import subprocess
import sys

import pytest

FIELDS = {
    "system",
    "variant",
    "workload",
    "publish_rate",
    "publish_errors",
    "consume_rate",
    "backlog_max",
    "driver_bound",
    "publish_latency_ms",
    "publish_delay_ms",
    "e2e_latency_ms",
}
QUANTILES = {"p50", "p99", "p999", "p9999", "max"}


def _compare(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "compare", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--systems", "walrus-py,kafka"], "unknown system kafka"),
        (["--workloads", "no-such.yaml"], "no-such.yaml: No such file"),
        (["--systems", ","], "unknown system (none)"),
    ],
)
def test_bad_input_is_one_line_and_nothing_runs(tmp_path, args, says):
    done = _compare(*args, "--out", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_system_that_fails_to_start_is_reported_and_the_others_run(tmp_path):
    workload = tmp_path / "fixed.yaml"
    workload.write_text(
        "name: fixed-200\nproducersPerTopic: 2\nconsumerPerSubscription: 2\n"
        "producerRate: 200\nwarmupDurationSeconds: 1\ntestDurationSeconds: 2\n"
    )
    out = tmp_path / "out"
    done = _compare(
        "--systems",
        "walrus-rs,walrus-py",
        "--walrus-src",
        str(tmp_path / "no-walrus-here"),
        "--workloads",
        str(workload),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["driver_ceiling"] > 0
    failed = [r for r in document["results"] if r["system"] == "walrus-rs"]
    assert len(failed) == 1 and failed[0]["error"].startswith("did not start")
    ours = [r for r in document["results"] if r["system"] == "walrus-py"]
    assert {r["variant"] for r in ours} == {"fsync=each", "fsync=none"}
    for r in ours:
        assert set(r) >= FIELDS, FIELDS - set(r)
        assert r["workload"] == "fixed-200" and r["publish_errors"] == 0
        for key in ("publish_latency_ms", "publish_delay_ms", "e2e_latency_ms"):
            assert set(r[key]) == QUANTILES and r[key]["p50"] is not None
        assert r["publish_rate"] > 0 and r["consume_rate"] > 0
    header = (out / "series.csv").read_text().splitlines()[0]
    assert header.startswith("system,variant,workload,phase,second,published")
    assert set(document["plots"]) >= {"throughput.png", "latency.png", "summary.png"}
    for name in document["plots"]:
        assert (out / name).stat().st_size > 10_000
