"""NATS JetStream under test (``--system nats``): a real cluster of Debian's nats-server on the
local backend, its routes through the link proxies."""

import json

import pytest

from harness.checker.result import result_of
from harness.runner import TestConfig, run_test
from harness.systems.nats import Nats
from harness.tools import missing_reason
from harness.workload import WorkloadConfig

pytestmark = pytest.mark.skipif(
    missing_reason("nats-server") is not None, reason=str(missing_reason("nats-server"))
)


def _run(tmp_path, nemesis: str, seed: int = 1):
    config = TestConfig(
        name=f"nats-{nemesis}",
        time_limit=8,
        nemesis=nemesis,
        nemesis_interval=2,
        seed=seed,
        store=tmp_path,
        workload=WorkloadConfig(rate=100, seed=seed),
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
