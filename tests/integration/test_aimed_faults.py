"""Faults aimed at events, on real nodes: each fires after its event, on the event's node (the one
that wrote it; for a takeover, the node the segments moved to)."""

import json

import pytest

from harness.runner import TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig


@pytest.mark.slow
def test_aimed_faults_fire_after_their_event_on_its_node(tmp_path):
    config = TestConfig(
        name="aimed",
        time_limit=8,
        nemesis="kill@seal,partition@takeover",
        nemesis_interval=2,
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(rate=300, seed=1),
        system=WalrusPy(NodeSpec(max_segment_entries=50)),
    )
    result = run_test(config, log=lambda m: None)
    fired = [
        json.loads(line)
        for line in (result.path / "history.jsonl").read_text().splitlines()
        if '"trigger"' in line and '"start-' in line
    ]
    assert fired, "no aimed fault fired in 8 s of seals"
    for event in fired:
        value, trigger = event["value"], event["value"]["trigger"]
        assert event["f"].endswith("@" + trigger["event"])
        assert trigger["lag_ms"] >= trigger["delay_ms"]  # never before the event and its delay
        if event["f"] == "start-kill@seal":
            assert value["nodes"] == [trigger["node"]] == [trigger["target"]]
        else:
            assert value["grudge"][str(trigger["target"])]  # the new leader was cut off
    assert "Aimed faults:" in (result.path / "summary.md").read_text()
    assert result.valid is True
