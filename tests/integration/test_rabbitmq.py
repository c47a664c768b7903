"""RabbitMQ under test (``--system rabbitmq``): a real cluster of Debian's rabbitmq-server on the
local backend, its Erlang distribution links through the link proxies."""

import ipaddress
import json
import subprocess

import pytest

from harness.checker.result import result_of
from harness.checker.suite import Evidence, check_run
from harness.runner import TestConfig, run_test
from harness.systems.rabbitmq import Rabbit
from harness.tools import missing_reason
from harness.workload import WorkloadConfig
from tests.integration.conftest import DOCKER

_MISSING = missing_reason("rabbitmq-server") or missing_reason("erlc")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


def _run(
    tmp_path,
    nemesis: str,
    queue_type: str = "quorum",
    seed: int = 1,
    time_limit: float = 10,
    backend: str = "local",
):
    config = TestConfig(
        backend=backend,
        name=f"rabbitmq-{queue_type}-{nemesis}",
        time_limit=time_limit,
        nemesis=nemesis,
        nemesis_interval=time_limit / 4,
        seed=seed,
        store=tmp_path,
        workload=WorkloadConfig(rate=100, seed=seed),
        system=Rabbit(queue_type),
    )
    return run_test(config, log=lambda m: None)


def _left_running(tmp_path) -> str:
    return subprocess.run(["pgrep", "-fa", str(tmp_path)], capture_output=True, text=True).stdout


def test_a_rabbitmq_cluster_without_faults_is_valid_drained_and_linked_through_the_proxies(
    tmp_path,
):
    result = _run(tmp_path, "none")
    assert result.valid is True, json.dumps(result.results, default=str)[:3000]
    assert all(result.results["drained"].values())
    totals = result_of(result.results, "totals")["details"]
    assert totals["acknowledged"] > 100 and totals["lost"] == 0, totals
    links = json.loads((result.path / "links.json").read_text())["links"]
    assert {(t["from"], t["to"]) for t in links if t["carried"]}, "the nodes went around proxies"
    audit = json.loads((result.path / "audit.json").read_text())
    assert {q["name"] for q in audit["queues"]} == {"t0", "t1"}, audit
    assert all(len(q["members"]) == 3 for q in audit["queues"]), audit
    assert _left_running(tmp_path) == ""


def test_a_quorum_queue_run_under_kills_and_partitions_reaches_a_verdict(tmp_path):
    result = _run(tmp_path, "kill,partition", seed=2, time_limit=12)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    history = (result.path / "history.jsonl").read_text()
    assert '"start-kill"' in history and '"start-partition"' in history
    again = check_run(Evidence.read(result.path / "history.jsonl", black_box=True))
    assert again["valid"] == result.valid, "check --black-box judged the history differently"
    assert _left_running(tmp_path) == ""


@pytest.mark.slow
def test_a_mirrored_queue_run_under_partitions_reaches_a_verdict(tmp_path):
    result = _run(tmp_path, "partition", queue_type="mirrored", seed=1, time_limit=20)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    audit = json.loads((result.path / "audit.json").read_text())
    assert all(q["type"] == "rabbit_classic_queue" for q in audit["queues"]), audit
    assert _left_running(tmp_path) == ""


@pytest.mark.parametrize("backend", [DOCKER])
def test_a_rabbitmq_run_in_docker_partitions_its_nodes_with_iptables(tmp_path, backend):
    """Debian's rabbitmq-server in containers of our base, long names at their addresses
    (rabbit@<ip>), cut by iptables."""
    import docker

    result = _run(tmp_path, "partition", seed=1, time_limit=15, backend=backend)
    assert result.valid in (True, False), json.dumps(result.results, default=str)[:3000]
    assert '"start-partition"' in (result.path / "history.jsonl").read_text()
    audit = json.loads((result.path / "audit.json").read_text())
    members = {m for q in audit["queues"] for m in q["members"]}
    assert len(members) == 3, audit
    assert all(ipaddress.ip_address(m.removeprefix("rabbit@")) for m in members), audit
    labelled = docker.from_env().containers.list(all=True, filters={"label": "walrus-harness"})
    assert not [c for c in labelled if str(tmp_path) in c.labels.get("walrus-harness.run", "")]
