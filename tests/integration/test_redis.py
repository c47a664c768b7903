"""Redis under test (``--system redis``): a real primary, two replicas and three Sentinels of
Debian's redis-server on the local backend, every link between nodes through the shared link
proxies."""

import json
import subprocess

import pytest

from harness.checker.result import result_of
from harness.checker.suite import Evidence, check_run
from harness.runner import TestConfig, run_test
from harness.systems.redis import Redis
from harness.tools import missing_reason
from harness.workload import WorkloadConfig
from tests.integration.conftest import DOCKER

_MISSING = missing_reason("redis-server")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


def _run(
    tmp_path,
    nemesis: str,
    seed: int = 1,
    time_limit: float = 10,
    wait: int = 0,
    backend: str = "local",
):
    config = TestConfig(
        backend=backend,
        name=f"redis-{nemesis}",
        time_limit=time_limit,
        nemesis=nemesis,
        nemesis_interval=time_limit / 3,
        seed=seed,
        store=tmp_path,
        workload=WorkloadConfig(rate=100, seed=seed),
        system=Redis(wait=wait),
    )
    return run_test(config, log=lambda m: None)


def _left_running(tmp_path) -> str:
    return subprocess.run(["pgrep", "-fa", str(tmp_path)], capture_output=True, text=True).stdout


def test_a_redis_cluster_without_faults_is_valid_drained_and_linked_through_the_proxies(
    tmp_path,
):
    result = _run(tmp_path, "none", wait=1)
    assert result.valid is True, json.dumps(result.results, default=str)[:3000]
    assert all(result.results["drained"].values())
    totals = result_of(result.results, "totals")["details"]
    assert totals["acknowledged"] > 100 and totals["lost"] == 0, totals
    links = json.loads((result.path / "links.json").read_text())["links"]
    pairs = {(t["from"], t["to"]) for t in links if t["carried"]}
    assert {(2, 1), (3, 1)} <= pairs, "the replicas reached the primary around the proxies"
    audit = json.loads((result.path / "audit.json").read_text())
    roles = sorted(v["role"] for v in audit["nodes"].values())
    assert roles == ["master", "slave", "slave"], audit
    lengths = {n: s["length"] for n, s in audit["streams"]["t0"].items()}
    assert len(set(lengths.values())) == 1, f"the copies of t0 differ: {lengths}"
    assert _left_running(tmp_path) == ""


def test_a_partitioned_primary_is_replaced_and_the_run_reaches_a_verdict(tmp_path):
    result = _run(tmp_path, "partition", seed=2, time_limit=16)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    history = (result.path / "history.jsonl").read_text()
    assert '"start-partition"' in history
    again = check_run(Evidence.read(result.path / "history.jsonl", black_box=True))
    assert again["valid"] == result.valid, "check --black-box judged the history differently"
    assert _left_running(tmp_path) == ""


@pytest.mark.parametrize("backend", [DOCKER])
def test_a_redis_run_in_docker_fails_over_under_iptables_partitions(tmp_path, backend):
    """Debian's redis-server in containers of our base, announcing their own addresses."""
    result = _run(tmp_path, "partition", seed=2, time_limit=16, backend=backend)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    audit = json.loads((result.path / "audit.json").read_text())
    roles = sorted(v["role"] for v in audit["nodes"].values())
    assert roles == ["master", "slave", "slave"], audit
    primaries = {v["sentinel_primary"] for v in audit["nodes"].values()}
    assert len(primaries) == 1 and not primaries.pop().startswith("127."), audit
