"""The metadata checker catches planted bugs in the node's Raft on real clusters
(``harness/mutants.py``): a follower that applies entries before they are committed, and the
follower as pysyncobj ships it, which deletes entries it applied.

Whether a run reaches the bug depends on timing (which node leads the metadata when a fault
lands), so each test runs seeds in turn until one is caught; measured with campaigns of five
seeds (``docs/metadata.md``), each is caught in 3 to 4 of 5."""

import pytest

from harness.checker.metadata import KINDS
from harness.checker.result import result_of
from harness.runner import TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig


def _caught(seeds: tuple[int, ...], **config) -> dict:
    """The metadata result of the first seed's run found invalid, else of the last."""
    for seed in seeds:
        run = TestConfig(seed=seed, workload=WorkloadConfig(seed=seed), **config)
        metadata = result_of(run_test(run, log=lambda m: None).results, "metadata")
        if metadata["valid"] is False:
            break
    return metadata


@pytest.mark.slow
def test_a_follower_applying_before_commit_is_caught_on_five_nodes(tmp_path):
    # a metadata leader cut off with one follower keeps appending there; the follower applies
    # what the majority side then overwrites
    metadata = _caught(
        (5, 2, 3),  # in this order 132 s here; as (2, 3, 5), 217-220 s in two CI runs
        name="apply-before-commit-partition",
        nodes=5,
        time_limit=30,
        nemesis="partition",
        nemesis_interval=5,
        store=tmp_path,
        system=WalrusPy(NodeSpec(mutant="apply-before-commit")),
    )
    assert metadata["valid"] is False, metadata
    assert set(metadata["counts"]) <= set(KINDS)


@pytest.mark.slow
def test_the_follower_as_shipped_is_caught_deleting_what_it_applied(tmp_path):
    # a killed node restarts behind a new leader, which sends it its entries twice
    metadata = _caught(
        (1, 2, 3),
        name="raft-as-shipped-kill-at-truncate",
        time_limit=30,
        nemesis="kill@meta-truncate,kill",
        nemesis_interval=3,
        store=tmp_path,
        system=WalrusPy(NodeSpec(mutant="raft-as-shipped")),
    )
    assert metadata["valid"] is False, metadata
    assert metadata["counts"].get("applied_truncated", 0) > 0, metadata
