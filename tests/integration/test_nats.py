"""NATS JetStream under test (``--system nats``): a real cluster of Debian's nats-server on the
local backend, its routes through the link proxies."""

import json
import os
import subprocess
import sys

import pytest

from harness.checker.result import result_of
from harness.checker.suite import Evidence, check_run
from harness.runner import TestConfig, run_test
from harness.systems.nats import Nats
from harness.tools import missing_reason, require
from harness.workload import WorkloadConfig
from tests.integration.conftest import DOCKER, no_fuse

pytestmark = pytest.mark.skipif(
    missing_reason("nats-server") is not None, reason=str(missing_reason("nats-server"))
)


def _run(
    tmp_path,
    nemesis: str,
    seed: int = 1,
    backend: str = "local",
    time_limit: float = 8,
    timeout: float = 10.0,
):
    config = TestConfig(
        name=f"nats-{nemesis}",
        backend=backend,
        time_limit=time_limit,
        nemesis=nemesis,
        nemesis_interval=time_limit / 4,
        seed=seed,
        store=tmp_path,
        workload=WorkloadConfig(rate=100, seed=seed, timeout=timeout),
        system=Nats(),
    )
    return run_test(config, log=lambda m: None)


def test_a_nats_cluster_without_faults_is_valid_and_drained(tmp_path):
    result = _run(tmp_path, "none")
    assert result.valid is True, json.dumps(result.results, default=str)[:3000]
    assert all(result.results["drained"].values())
    totals = result_of(result.results, "totals")["details"]
    assert totals["acknowledged"] > 100 and totals["lost"] == 0, totals
    audit = json.loads((result.path / "audit.json").read_text())
    links = json.loads((result.path / "links.json").read_text())["links"]
    assert {(t["from"], t["to"]) for t in links if t["carried"]}, (
        "the routes went around the proxies"
    )
    assert audit is not None


def test_a_nats_run_under_kills_and_partitions_reaches_a_verdict(tmp_path):
    result = _run(tmp_path, "kill,partition", seed=2)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    history = (result.path / "history.jsonl").read_text()
    assert '"start-kill"' in history and '"start-partition"' in history
    again = check_run(Evidence.read(result.path / "history.jsonl", black_box=True))
    assert again["valid"] == result.valid, "check --black-box judged the history differently"
    assert again["delivery"]["once"] is False, "the history's header lost the promise"


@pytest.mark.parametrize("backend", [DOCKER])
def test_a_nats_run_in_docker_partitions_its_routes(tmp_path, backend):
    """The local backend's run is the one above; this is the Docker backend's (slow, DOCKER)."""
    result = _run(tmp_path, "partition,kill", seed=1, backend=backend, time_limit=12)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    history = (result.path / "history.jsonl").read_text()
    assert '"start-partition"' in history


@pytest.mark.slow
@pytest.mark.skipif(no_fuse() is not None, reason=no_fuse() or "")
def test_a_correlated_power_loss_loses_what_jetstream_acknowledged(tmp_path):
    """Jepsen's NATS 2.12.1 finding, on Debian's 2.9.10: every node loses its unsynced writes at
    once, and what JetStream acknowledged but had not synced (streams sync every two minutes) is
    gone — here the streams themselves, with every message in them."""
    # A get of a vanished stream waits out its timeout before asking whether the stream exists:
    # a short one keeps the drain short.
    result = _run(tmp_path, "lose-unsynced-all", seed=1, time_limit=15, timeout=3.0)
    totals = result_of(result.results, "totals")
    assert totals["valid"] is False and totals["counts"].get("lost", 0) > 0, totals


FAKE_SERVERS = {
    "a server that will not start": 'echo "configuration error: unknown field" >&2; exit 1',
    "a stream that cannot be created": 'sed -i \'/^jetstream/d\' "$2"; exec {real} "$@"',
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FAKE_SERVERS))
def test_a_nats_that_cannot_start_is_one_line_and_leaves_nothing_running(tmp_path, case):
    """A nats-server first on the PATH that exits at once, or one with JetStream off (its
    configuration's jetstream block cut), so that no stream can be created."""
    real = require("nats-server")
    fake = tmp_path / "bin" / "nats-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n" + FAKE_SERVERS[case].format(real=real) + "\n")
    fake.chmod(0o755)
    store = tmp_path / "runs"
    command = ["test", "--system", "nats", "--time-limit", "3", "--store", str(store)]
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *command],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not start" in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    left = subprocess.run(["pgrep", "-f", str(store)], capture_output=True, text=True)
    assert left.stdout == "", f"left running: {left.stdout}"
