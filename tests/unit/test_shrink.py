"""The shrinker's search, on its own: fault windows from steps, delta debugging to a 1-minimal
set, a candidate asked once. (``tests/integration/test_replay_shrink.py`` runs it on clusters.)"""

import itertools

import pytest

from harness.shrink import ddmin, flatten, windows
from nemesis.schedule import Step


def test_windows_pair_each_start_with_its_stop():
    steps = (
        Step(1, "partition", "start", {"shape": "leader"}),
        Step(2, "kill", "start", {"target": "one", "nodes": [1]}),
        Step(3, "partition", "stop"),
        Step(4, "kill", "stop"),
        Step(5, "kill", "start", {"target": "one", "nodes": [2]}),
    )
    ws = windows(steps)
    assert [[(s.time, s.action) for s in w] for w in ws] == [
        [(1, "start"), (3, "stop")],
        [(2, "start"), (4, "stop")],
        [(5, "start")],
    ]
    assert flatten(ws) == steps
    assert flatten([ws[1]]) == (steps[1], steps[3])


@pytest.mark.parametrize("needed", [(), (3,), (0, 7), (2, 5, 9), tuple(range(10))])
def test_ddmin_finds_exactly_the_units_a_failure_needs(needed):
    asked: list[tuple] = []

    def fails(subset):
        asked.append(tuple(subset))
        return set(needed) <= set(subset)

    found = ddmin(list(range(10)), fails)
    assert sorted(found) == sorted(needed)
    for k in range(len(found)):  # 1-minimal: without any one of them it passes
        assert not fails(found[:k] + found[k + 1 :])


def test_ddmin_result_is_one_minimal_for_any_monotone_failure():
    for needed in itertools.combinations(range(6), 2):
        found = ddmin(list(range(6)), lambda s, n=needed: set(n) <= set(s))
        assert sorted(found) == list(needed)
