"""Bugs that live in narrow windows (``harness/mutants.py``) are caught by faults aimed there: a
PUT acknowledged while its segment rolls over, before it is written, by a kill aimed at the seal;
a lease stamped when the node next looks instead of when its renewal was sent, by a pause aimed
at the renewal.

The kill must land inside a rollover's Raft commit, a few milliseconds: a run of 20 s catches it
most times, not every time (seed 1 missed it once in four runs here on 2026-12-07), so that test
tries a second seed when the first catches nothing."""

from dataclasses import replace

import pytest

from harness.checker.result import result_of
from harness.runner import RunResult, TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig


def _aimed_run(config: TestConfig) -> RunResult:
    """Run ``config``; its results, once its history shows an aimed fault fired."""
    result = run_test(config, log=lambda m: None)
    history = (result.path / "history.jsonl").read_text()
    assert '"trigger"' in history  # the fault was the aimed one
    return result


@pytest.mark.slow
def test_a_kill_aimed_at_the_seal_loses_what_was_acknowledged_during_the_rollover(tmp_path):
    config = TestConfig(
        name="ack-during-rollover-kill-at-seal",
        time_limit=20,
        nemesis="kill@seal+0-10",
        nemesis_interval=2,
        seed=1,
        store=tmp_path,
        # PUTs only until the drain: a black box cannot rule out that a GET whose reply was
        # lost took a missing value, so GETs under kills would make "lost" merely unknown.
        workload=WorkloadConfig(rate=300, put_ratio=1.0, seed=1),
        system=WalrusPy(NodeSpec(max_segment_entries=50, mutant="ack-during-rollover"), plain=True),
    )
    for seed in (1, 2):
        run = replace(config, seed=seed, workload=replace(config.workload, seed=seed))
        totals = result_of(_aimed_run(run).results, "totals")
        if totals["valid"] is False:
            break
    assert totals["valid"] is False and totals["counts"].get("lost", 0) > 0, totals


@pytest.mark.slow
def test_a_pause_aimed_at_a_renewal_shows_a_lease_stamped_late(tmp_path):
    """The pause must catch a node between sending a renewal and stamping it; seed 2 did here
    alone, and missed in a full test session after the NATS and RabbitMQ runs (2026-12-07, cause
    not found: no task or thread of theirs was left running), so a second seed is tried when the
    first catches nothing, as for the kill above."""
    config = TestConfig(
        name="lease-stamped-late-pause-at-renew",
        time_limit=30,
        nemesis="pause@lease-renew+0-10",
        nemesis_interval=6,
        seed=2,
        store=tmp_path,
        # three topics, so that every node likely leads one and any paused node was writing
        workload=WorkloadConfig(rate=800, topics=3, seed=2),
        system=WalrusPy(NodeSpec(mutant="lease-stamped-late")),
    )
    for seed in (2, 3):
        run = replace(config, seed=seed, workload=replace(config.workload, seed=seed))
        lease = result_of(_aimed_run(run).results, "lease")
        if lease["valid"] is False:
            break
    assert lease["valid"] is False, lease
    assert set(lease["counts"]) <= {
        "append_after_expiry_node_clock",
        "append_after_expiry_true_time",
        "overlapping_writers",
    }, lease
