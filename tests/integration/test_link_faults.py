"""Slow links on the local backend: a run under delay, jitter and throttling ends in a verdict,
with each fault's parameters in the history; the default node stays valid."""

import json

import pytest

from harness.runner import TestConfig, run_test
from harness.workload import WorkloadConfig


@pytest.mark.slow
def test_the_default_node_is_valid_on_slow_links(tmp_path):
    config = TestConfig(
        name="slow-links",
        time_limit=10,
        nemesis="delay,throttle",
        nemesis_interval=2,
        seed=3,
        store=tmp_path,
        workload=WorkloadConfig(rate=200, seed=3),
    )
    result = run_test(config, log=lambda m: None)
    starts = [
        json.loads(line)
        for line in (result.path / "history.jsonl").read_text().splitlines()
        if '"start-delay"' in line or '"start-throttle"' in line
    ]
    assert {e["f"] for e in starts} == {"start-delay", "start-throttle"}, starts
    for event in starts:
        assert event["value"]["nodes"] and ("delay" in event["value"] or "rate" in event["value"])
    assert result.valid is True, {
        k: v.get("counts") for k, v in result.results.items() if isinstance(v, dict)
    }
