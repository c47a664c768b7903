"""``walrus-harness test`` and ``check`` end to end, on real local clusters."""

import json
import subprocess
import sys

import pytest

from harness.checker.result import counts_of
from harness.runner import TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig
from tests.integration.conftest import BACKEND_PARAMS


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_run_under_partitions_and_kills_is_valid(tmp_path, backend):
    config = TestConfig(
        backend=backend,
        time_limit=12,
        nemesis="partition,kill",
        nemesis_interval=3,
        seed=3,
        store=tmp_path,
        workload=WorkloadConfig(rate=200, seed=3),
        system=WalrusPy(NodeSpec(max_segment_entries=40)),
    )
    result = run_test(config, log=lambda m: None)
    assert result.valid is True, json.dumps(result.results, default=str)[:3000]
    run = result.path
    for name in (
        "test.json",
        "history.jsonl",
        "results.json",
        "summary.md",
        "audit.json",
        "latency-raw.png",
        "latency-quantiles.png",
        "rate.png",
        "timeline.html",
    ):
        assert (run / name).stat().st_size > 0, name
    for node in ("1", "2", "3"):
        assert (run / "nodes" / node / "events.jsonl").exists()
    links = json.loads((run / "links.json").read_text())
    if backend == "local":  # the link proxies saw every link (dropping: tests/unit)
        assert (run / "links.png").stat().st_size > 0
        assert {(t["from"], t["to"]) for t in links["links"] if t["carried"]} == {
            (a, b) for a in (1, 2, 3) for b in (1, 2, 3) if a != b
        }
    else:
        assert links["links"] is None and "no link proxy" in links["why"]
    assert (tmp_path / "latest").resolve() == run.resolve()
    history = (run / "history.jsonl").read_text()
    assert '"start-' in history and '"stop-' in history
    assert "VALID" in (run / "summary.md").read_text()
    # The run directory checks again, from the outside, to the same verdict.
    again = harness("check", str(run / "history.jsonl"), "--events", str(run / "nodes"))
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_compat_walrus_is_caught(tmp_path, backend):
    config = TestConfig(
        backend=backend,
        name="compat",
        time_limit=15,
        nemesis="partition,kill",
        nemesis_interval=4,
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(rate=300, seed=1),
        system=WalrusPy(NodeSpec(compat=True, max_segment_entries=5)),
    )
    result = run_test(config, log=lambda m: None)
    assert result.valid is False
    named = json.dumps(counts_of(result.results))
    assert any(
        kind in named for kind in ("beyond", "VOrd", "VWit", "VRepet", "overlapping", "lost")
    )


def write_history(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_check_exit_codes(tmp_path):
    def op(i, t, p, type_, f, value):
        return {
            "index": i,
            "time": t,
            "process": p,
            "type": type_,
            "f": f,
            "topic": "t",
            "value": value,
        }

    valid = tmp_path / "valid.jsonl"
    write_history(
        valid,
        [
            op(0, 0, 1, "invoke", "put", "a"),
            op(1, 1, 1, "ok", "put", "a"),
            op(2, 2, 2, "invoke", "get", None),
            op(3, 3, 2, "ok", "get", "a"),
        ],
    )
    invalid = tmp_path / "invalid.jsonl"
    write_history(invalid, [op(0, 0, 1, "invoke", "get", None), op(1, 1, 1, "ok", "get", "ghost")])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"index": 0, "time": 0, "process": 1, "type": "ok", "f": "put"}\n')
    # No acknowledged put carries a position: a black-box history, checked by what applies.
    black = harness("check", str(valid))
    assert black.returncode == 0 and "black box" in black.stdout and "N/A" in black.stdout
    assert harness("check", "--black-box", str(valid)).returncode == 0
    # Positions but no node event logs: the lease checker cannot decide, unknown (2).
    positioned = tmp_path / "positioned.jsonl"
    write_history(
        positioned,
        [
            op(0, 0, 1, "invoke", "put", "a"),
            {**op(1, 1, 1, "ok", "put", "a"), "pos": [1, 0], "node": 1, "epoch": 1},
            op(2, 2, 2, "invoke", "get", None),
            op(3, 3, 2, "ok", "get", "a"),
        ],
    )
    assert harness("check", str(positioned)).returncode == 2
    assert harness("check", "--black-box", str(positioned)).returncode == 0
    # Black box and undecided: an acknowledged value never read, an info get may have taken it.
    undecided = tmp_path / "undecided.jsonl"
    write_history(
        undecided,
        [
            op(0, 0, 1, "invoke", "put", "a"),
            op(1, 1, 1, "ok", "put", "a"),
            op(2, 2, 2, "invoke", "get", None),
            op(3, 3, 2, "info", "get", None),
            op(4, 4, 3, "invoke", "get", None),
            op(5, 5, 3, "ok", "get", None),
        ],
    )
    assert harness("check", "--black-box", str(undecided)).returncode == 2
    events = tmp_path / "nodes" / "1"
    events.mkdir(parents=True)
    applied = {"kind": "meta-apply", "node": 1, "true_ns": 1, "node_time": 0.0, "index": 2}
    applied |= {"term": 1, "hash": "0", "cmd": "noop"}  # the metadata checker's evidence
    (events / "events.jsonl").write_text(json.dumps(applied) + "\n")
    out = tmp_path / "results.json"
    ok = harness("check", str(positioned), "--events", str(tmp_path / "nodes"), "--out", str(out))
    assert ok.returncode == 0 and json.loads(out.read_text())["valid"] is True
    bad = harness("check", str(invalid), "--events", str(tmp_path / "nodes"))
    assert bad.returncode == 1 and "VFresh" in bad.stdout
    garbled = harness("check", str(broken))
    assert garbled.returncode == 1 and "without an invocation" in garbled.stderr
    assert "Traceback" not in garbled.stderr
    missing = harness("check", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "no such history" in missing.stderr
