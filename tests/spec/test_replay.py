"""Counterexamples of the compat model replayed on a real local cluster in --compat walrus mode:
the verifier must flag the anomaly the model found."""

import pytest

from harness.checker.result import result_of
from harness.runner import TestConfig, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig
from spec import explore, model
from spec.replay import replay_plan

_runs: dict[str, dict] = {}


def _run(nemesis: str, tmp_path_factory) -> dict:
    """One compat run per fault set: segments of 2 entries, as in the model, under PUT-heavy
    concurrent load so that appends land while a rollover's count is in flight."""
    if nemesis not in _runs:
        config = TestConfig(
            name=f"replay-{nemesis}",
            nodes=3,
            time_limit=10,
            nemesis=nemesis,
            nemesis_interval=3,
            seed=7,
            store=tmp_path_factory.mktemp("replay"),
            workload=WorkloadConfig(concurrency=8, topics=1, rate=400, put_ratio=0.8, seed=7),
            system=WalrusPy(NodeSpec(compat=True, max_segment_entries=2)),
        )
        _runs[nemesis] = run_test(config, log=lambda m: None).results
    return _runs[nemesis]


@pytest.mark.slow
@pytest.mark.parametrize("invariant", ["AckedReadable", "SealedCountExact"])
def test_the_verifier_flags_what_the_model_found(invariant, tmp_path_factory):
    check = [i for i in model.INVARIANTS if i.__name__ == invariant]
    outcome = explore.explore(model.CONFIGS["compat"], check, liveness=False)
    assert outcome.violated == invariant
    plan = replay_plan(outcome)
    results = _run(plan.nemesis, tmp_path_factory)
    found = {checker: set(result_of(results, checker)["counts"]) for checker in plan.anomalies}
    assert any(found[c] & kinds for c, kinds in plan.anomalies.items()), (plan, found)


def test_a_plan_maps_faults_to_harness_nemeses():
    outcome = explore.Outcome(1, 0, 0, 0.0, "SingleWriter", "x", ["t"], ["Crash", "Isolate", "Get"])
    plan = replay_plan(outcome)
    assert plan.nemesis == "kill,partition"
    assert "lease" in plan.anomalies
    with pytest.raises(ValueError):
        replay_plan(explore.Outcome(1, 0, 0, 0.0))
