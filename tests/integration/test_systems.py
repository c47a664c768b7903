"""Systems under test: black-box mode, an external cluster, and the original Walrus (walrus-rs).

The black-box and external paths run in CI against this repository's node (the cluster under
test is a `walrus cluster up`, broken and mended through its own controls). The walrus-rs tests
need a Walrus source tree in WALRUS_RS_SRC and are skipped, saying so, without one.
"""

import json
import os
import subprocess
import sys

import pytest

from harness.checker.result import result_of
from harness.cluster.local import free_base_port
from harness.runner import TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig
from tests.integration.conftest import DOCKER
from tests.integration.nodes import start_cluster_up, stop_cluster_up

WALRUS_RS_SRC = os.environ.get("WALRUS_RS_SRC")
needs_walrus_rs = pytest.mark.skipif(
    not WALRUS_RS_SRC, reason="WALRUS_RS_SRC is not set: no Walrus source tree to build walrus-rs"
)


def harness(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_failure(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.mark.slow
def test_black_box_run_of_our_node_is_valid_with_the_white_box_checkers_not_applicable(tmp_path):
    # Clock faults: our node rides through them without dropping connections, so no get ends
    # unknown; a black box gives no tags with which to resolve one that did.
    config = TestConfig(
        time_limit=10,
        nemesis="clock",
        nemesis_interval=3,
        seed=2,
        store=tmp_path,
        system=WalrusPy(NodeSpec(max_segment_entries=30), plain=True),
    )
    result = run_test(config, log=lambda m: None)
    r = result.results
    assert result.valid is True, json.dumps(r, default=str)[:2000]
    assert r["black_box"] is True
    assert (
        result_of(r, "lease")["valid"] == "not applicable"
        and result_of(r, "storage")["valid"] == "not applicable"
    )
    assert (
        result_of(r, "queue")["valid"] is True
        and result_of(r, "totals")["details"]["acknowledged"] > 0
    )
    lines = (result.path / "history.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert {k: header[k] for k in ("history", "system", "black_box")} == {
        "history": 1,
        "system": "walrus-py",
        "black_box": True,
    }
    assert header["delivery"]["once"] is True, "Walrus's promise: each value once, in order"
    assert '"pos"' not in "".join(lines)
    again = harness("check", str(result.path / "history.jsonl"))
    assert again.returncode == 0 and "black box" in again.stdout


@pytest.mark.slow
def test_black_box_checkers_alone_catch_walrus_0_3(tmp_path):
    """Without positions, events or an audit, queue and totals still see Walrus 0.3 lose an
    acknowledged write to its unfenced rollover and hand entries out of order through its
    per-node cursors — no faults needed, only concurrent writers and small segments."""
    config = TestConfig(
        name="compat-black-box",
        time_limit=20,
        nemesis="none",
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(concurrency=12, rate=400, seed=1),
        system=WalrusPy(NodeSpec(compat=True, max_segment_entries=3), plain=True),
    )
    result = run_test(config, log=lambda m: None)
    assert result.valid is False, result.results
    queue = result_of(result.results, "queue")
    # certain: no GET whose reply was lost (a timeout on a loaded machine) could explain it
    assert any(a["kind"] == "VOrd" and a["certain"] for a in queue["anomalies"]), queue


def test_bad_systems_are_refused_in_one_line_before_anything_is_made(tmp_path):
    store = tmp_path / "runs"
    not_walrus = tmp_path / "not-walrus"
    not_walrus.mkdir()
    silent = f"127.0.0.1:{free_base_port(1) + 1}"
    rs = ["--system", "walrus-rs", "--nemesis", "kill", "--walrus-src"]
    external = ["--system", "external", "--addr"]
    for args, words in (
        ([*rs, str(not_walrus)], "not a Walrus source tree"),
        ([*rs, str(tmp_path / "nowhere")], "no such directory"),
        ([*external, silent, "--nemesis", "none"], "does not answer"),
        ([*external, "127.0.0.1:1", "--nemesis", "kill"], "--kill-cmd"),
        ([*external, "nonsense"], "host:port"),
        ([*external, "127.0.0.1:1", "--nemesis", "partition"], "does not support the nemesis"),
        ([*external, "127.0.0.1:1", "--backend", "docker"], "--backend does not apply"),
        (["--nemesis", "loss"], "Docker backend"),
        (["--nemesis", "duplicate,reorder"], "Docker backend"),
        (["--system", "walrus-rs", "--nemesis", "lose-unsynced"], "does not support the nemesis"),
    ):
        one_line_failure(harness("test", *args, "--store", str(store)), words)
    assert not store.exists()


@pytest.mark.slow
def test_an_external_cluster_is_tested_and_broken_through_the_users_commands(tmp_path):
    base = free_base_port(3)
    data = tmp_path / "cluster"
    proc = start_cluster_up(data, base)
    walrus = f"{sys.executable} -m walrus cluster"
    try:
        common = [
            "--system", "external",
            "--addr", ",".join(f"127.0.0.1:{base + i}" for i in (1, 2, 3)),
            "--kill-cmd", f"{walrus} kill --data-dir {data} --node {{node}}",
            "--start-cmd", f"{walrus} restart --data-dir {data} --node {{node}}",
            "--pause-cmd", f"{walrus} pause --data-dir {data} --node {{node}}",
            "--resume-cmd", f"{walrus} resume --data-dir {data} --node {{node}}",
            "--nemesis-interval", "3",
            "--time-limit", "10",
            "--store", str(tmp_path / "runs"),
        ]  # fmt: skip
        # Kills leave gets of unknown outcome that a black box gives no way to resolve, so an
        # unread value can make a run of our (correct) node unknown, never invalid.
        campaign = harness("campaign", *common, "--nemesis-matrix", "kill;pause", "--seeds", "1")
        assert campaign.returncode == 0, campaign.stdout + campaign.stderr
        summary = next((tmp_path / "runs").glob("campaign-*/summary.md")).read_text()
        by_nemesis, every_run = summary.split("## Every run")
        assert " 0 invalid, " in summary and every_run.count("| `kill` |") == 1
        assert every_run.count("| `pause` |") == 1 and by_nemesis.count("| `pause` | 1 |") == 1
        run = next((tmp_path / "runs").glob("campaign-*/kill-seed1/*/history.jsonl")).parent
        history = (run / "history.jsonl").read_text()
        assert '"start-kill"' in history and '"stop-kill"' in history
        results = json.loads((run / "results.json").read_text())
        assert result_of(results, "lease")["valid"] == "not applicable"
        status = subprocess.run(
            [sys.executable, "-m", "walrus", "cluster", "status", "--data-dir", str(data)],
            capture_output=True,
            text=True,
        )
        assert status.stdout.count("running") == 3, "the harness mends what it broke"
    finally:
        stop_cluster_up(proc)


@needs_walrus_rs
@pytest.mark.slow
def test_walrus_rs_runs_to_a_verdict_as_a_black_box(tmp_path):
    done = harness(
        "test", "--system", "walrus-rs", "--nodes", "3", "--time-limit", "15", "--nemesis",
        "kill", "--nemesis-interval", "5", "--max-segment-entries", "10", "--seed", "1",
        "--store", str(tmp_path),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert results["black_box"] is True and result_of(results, "lease")["valid"] == "not applicable"
    assert result_of(results, "totals")["details"]["acknowledged"] > 0
    header = json.loads((tmp_path / "latest" / "history.jsonl").read_text().splitlines()[0])
    assert header["system"] == "walrus-rs"
    assert not subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True).stdout


@needs_walrus_rs
def test_walrus_rs_partitions_are_refused_on_the_local_backend(tmp_path):
    one_line_failure(
        harness(
            "test", "--system", "walrus-rs", "--nemesis", "partition", "--store", str(tmp_path)
        ),
        "UDP",
    )


@needs_walrus_rs
@pytest.mark.slow
@pytest.mark.parametrize("backend", [DOCKER])
def test_walrus_rs_in_docker_under_partitions(tmp_path, backend):
    done = harness(
        "test", "--system", "walrus-rs", "--backend", backend, "--nodes", "3", "--time-limit",
        "20", "--nemesis", "partition,clock", "--nemesis-interval", "4",
        "--max-segment-entries", "10", "--seed", "2", "--store", str(tmp_path),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    history = (tmp_path / "latest" / "history.jsonl").read_text()
    assert '"start-partition"' in history
    import docker

    left = docker.from_env().containers.list(all=True, filters={"label": "walrus-harness"})
    assert not left, f"containers left behind: {[c.name for c in left]}"


@needs_walrus_rs
def test_a_walrus_tree_that_does_not_build_is_one_line(tmp_path):
    import shutil

    broken = tmp_path / "walrus"
    shutil.copytree(WALRUS_RS_SRC, broken, ignore=shutil.ignore_patterns(".git", "target"))
    with open(broken / "distributed-walrus" / "Cargo.toml", "a") as f:
        f.write("\n[dependencies.this-crate-does-not-exist-anywhere]\nversion = 1\n")
    done = harness(
        "test", "--system", "walrus-rs", "--walrus-src", str(broken), "--nemesis", "kill",
        "--store", str(tmp_path / "runs"),
    )  # fmt: skip
    one_line_failure(done, "cargo could not build")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_run_that_breaks_off_is_unknown_and_says_why(tmp_path):
    """A fault command that fails stops the run; its directory records why and the verdict is
    unknown (exit 2), so a campaign carries on with the next run."""
    base = free_base_port(3)
    proc = start_cluster_up(tmp_path / "cluster", base)
    try:
        done = harness(
            "test", "--system", "external",
            "--addr", ",".join(f"127.0.0.1:{base + i}" for i in (1, 2, 3)),
            "--kill-cmd", "false", "--start-cmd", "true", "--nemesis", "kill",
            "--nemesis-interval", "2", "--time-limit", "6", "--store", str(tmp_path / "runs"),
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        assert "UNKNOWN" in done.stdout and "--kill-cmd for node" in done.stdout
        results = json.loads((tmp_path / "runs" / "latest" / "results.json").read_text())
        assert results["valid"] == "unknown" and "--kill-cmd" in results["error"]
    finally:
        stop_cluster_up(proc)
