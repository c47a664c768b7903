"""Degraded links on both backends — delay with jitter and throttling through the local link
proxies; delay (NFQUEUE and harness.netq), packet loss (iptables statistic) and throttling (tc
htb) on Docker — end in a verdict, with each fault's parameters in the history; the default
node stays valid."""

import json

import pytest

from harness.runner import TestConfig, run_test
from harness.workload import WorkloadConfig
from tests.integration.conftest import DOCKER

NEMESIS = {"local": "delay,throttle", "docker": "delay,loss,throttle"}
SEED = {"local": 1, "docker": 2}
"""Seeds whose 8 s schedules start every fault of the backend's list."""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", DOCKER])
def test_the_default_node_is_valid_on_degraded_links(tmp_path, backend):
    config = TestConfig(
        name="degraded-links",
        time_limit=8,
        nemesis=NEMESIS[backend],
        nemesis_interval=1.5,
        seed=SEED[backend],
        store=tmp_path,
        backend=backend,
        workload=WorkloadConfig(rate=200, seed=SEED[backend]),
    )
    result = run_test(config, log=lambda m: None)
    starts = [
        json.loads(line)
        for line in (result.path / "history.jsonl").read_text().splitlines()
        if '"process":"nemesis"' in line.replace(" ", "") and '"start-' in line
    ]
    assert {e["f"] for e in starts} == {f"start-{f}" for f in NEMESIS[backend].split(",")}
    for event in starts:
        assert event["value"]["nodes"]
        assert {"delay", "rate", "loss"} & set(event["value"]), event
    found = {k: v.get("counts") for k, v in result.results.items() if isinstance(v, dict)}
    assert result.valid is True, found


@pytest.mark.slow
@pytest.mark.parametrize("backend", [DOCKER])
def test_duplicated_and_reordered_packets_reach_the_nodes_tcp_and_the_node_stays_valid(
    tmp_path, backend
):
    config = TestConfig(
        name="repeated-packets",
        time_limit=8,
        nemesis="duplicate,reorder",
        nemesis_interval=1.5,
        seed=2,
        store=tmp_path,
        backend=backend,
        workload=WorkloadConfig(rate=200, seed=2),
    )
    result = run_test(config, log=lambda m: None)
    history = (result.path / "history.jsonl").read_text().replace(" ", "")
    assert '"f":"start-duplicate"' in history and '"f":"start-reorder"' in history
    tcp = json.loads((result.path / "links.json").read_text())["tcp"]
    assert sum(c["duplicates_in"] for c in tcp.values()) > 0, tcp
    assert sum(c["out_of_order_in"] for c in tcp.values()) > 0, tcp
    assert "arrived twice" in (result.path / "summary.md").read_text()
    assert result.valid is True
