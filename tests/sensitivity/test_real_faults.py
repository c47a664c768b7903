"""The checkers against real faults that break the node's assumptions on purpose."""

import pytest

from harness.checker.result import result_of
from harness.runner import TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig
from tests.integration.conftest import DOCKER, no_fuse


@pytest.mark.slow
def test_a_clock_beyond_the_drift_bound_is_caught_by_the_lease_checker(tmp_path):
    config = TestConfig(
        name="drift-unsafe",
        time_limit=20,
        nemesis="drift-unsafe",
        nemesis_interval=5,
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(rate=300, seed=1),
        system=WalrusPy(NodeSpec(lease_ms=1000)),
    )
    result = run_test(config, log=lambda m: None)
    lease = result_of(result.results, "lease")
    assert lease["valid"] is False, lease
    assert set(lease["counts"]) & {"append_after_expiry_true_time", "overlapping_writers"}


@pytest.mark.slow
def test_bit_rot_in_synced_data_makes_the_node_refuse_to_start(tmp_path):
    config = TestConfig(
        name="bitrot",
        time_limit=12,
        nemesis="bitrot",
        nemesis_interval=6,
        seed=2,
        store=tmp_path,
        recovery_timeout=15,
        drain_timeout=15,
        workload=WorkloadConfig(rate=300, seed=2),
    )
    result = run_test(config, log=lambda m: None)
    history = (result.path / "history.jsonl").read_text()
    assert "flipped a bit in synced data" in history
    logs = "".join(p.read_text() for p in (result.path / "nodes").glob("*/node.log"))
    assert "bit rot, not a torn write" in logs
    # The damaged node never served the corrupt entry: nothing stored was read back changed.
    assert result_of(result.results, "queue")["counts"].get("VFresh", 0) == 0


@pytest.mark.slow
@pytest.mark.skipif(no_fuse() is not None, reason=no_fuse() or "")
@pytest.mark.parametrize("backend", ["local", DOCKER])
def test_a_node_that_acknowledges_before_syncing_loses_writes_to_a_power_loss(tmp_path, backend):
    # The default node's power-loss run, which must be valid, is the gate's.
    config = TestConfig(
        name="lose-unsynced-fsync-none",
        backend=backend,
        time_limit=10,
        nemesis="lose-unsynced",
        nemesis_interval=3,
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(rate=300, seed=1),
        system=WalrusPy(NodeSpec(fsync="none", replicas=1)),
    )
    result = run_test(config, log=lambda m: None)
    history = (result.path / "history.jsonl").read_text()
    assert '"f":"start-lose-unsynced"' in history.replace(" ", "")
    totals = result_of(result.results, "totals")
    assert totals["counts"].get("lost", 0) > 0, totals


@pytest.mark.slow
def test_a_lost_disk_loses_the_writes_of_a_node_keeping_one_copy(tmp_path):
    """``wipe`` deletes a leader's store: with one copy per segment its acknowledged entries are
    gone; the node says so (``disk-lost``, segments marked lost) and the verifier finds them
    lost once readers pass over the lost segments."""
    config = TestConfig(
        name="wipe-one-copy",
        time_limit=20,
        nemesis="wipe",
        nemesis_interval=5,
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(rate=200, seed=1),
        system=WalrusPy(NodeSpec(max_segment_entries=200, replicas=1)),
    )
    result = run_test(config, log=lambda m: None)
    totals = result_of(result.results, "totals")
    assert totals["valid"] is False, totals
    assert totals["counts"].get("lost", 0) > 0, totals
    assert result.results["drained"] and all(result.results["drained"].values())
    events = "".join(p.read_text() for p in (result.path / "nodes").glob("*/events.jsonl"))
    assert '"kind":"disk-lost"' in events


@pytest.mark.slow
@pytest.mark.skipif(no_fuse() is not None, reason=no_fuse() or "")
@pytest.mark.parametrize("fsync", ["none"])
def test_a_correlated_power_loss_is_survived_only_by_a_node_that_syncs(tmp_path, fsync):
    """Every node loses its unsynced writes at one instant: three copies no longer save a node
    that acknowledges before fsync, while the default node (fsync each) loses nothing — the
    gate runs that one (``harness/gate.py``), so this file holds only the control."""
    config = TestConfig(
        name=f"lose-unsynced-all-fsync-{fsync}",
        time_limit=12,
        nemesis="lose-unsynced-all",
        nemesis_interval=4,
        seed=1,
        store=tmp_path,
        workload=WorkloadConfig(rate=300, seed=1),
        system=WalrusPy(NodeSpec(fsync=fsync)),
    )
    result = run_test(config, log=lambda m: None)
    history = (result.path / "history.jsonl").read_text()
    assert '"start-lose-unsynced-all"' in history
    totals = result_of(result.results, "totals")
    if fsync == "each":
        assert result.valid is True, result.results
    else:
        assert totals["counts"].get("lost", 0) > 0, totals
