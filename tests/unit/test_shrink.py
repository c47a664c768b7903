"""The shrinker's search, on its own: fault windows from steps, delta debugging to a 1-minimal
set, the windows an anomaly's witnesses point at, windows moved earlier, the nodes a step names.
(``tests/integration/test_replay_shrink.py`` runs it on clusters.)"""

import itertools

import pytest

from harness.shrink import (
    anomaly_spans,
    ddmin,
    flatten,
    moved_earlier,
    named_nodes,
    suspects,
    windows,
)
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


def _results(anomalies: list[dict], witnesses: dict, t0_ns: int | None = None) -> dict:
    out = {"lease": {"valid": False, "counts": {"x": 1}, "anomalies": anomalies}}
    out["witnesses"] = witnesses
    if t0_ns is not None:
        out["t0_ns"] = t0_ns
    return out


def test_anomaly_spans_read_operations_and_node_events_on_the_run_clock():
    results = _results(
        [
            {"kind": "x", "ops": [4, 9], "times_ns": []},
            {"kind": "x", "ops": [], "times_ns": [107_000_000_000, 105_500_000_000]},
            {"kind": "y", "ops": [4], "times_ns": []},
        ],
        {"4": {"inv_ns": 2_000_000_000, "ret_ns": None}, "9": {"inv_ns": 3e9, "ret_ns": 3.5e9}},
        t0_ns=100_000_000_000,
    )
    assert anomaly_spans(results, "x") == [(2.0, 3.5), (5.5, 7.0)]
    assert anomaly_spans(results, "y") == [(2.0, 2.0)]
    assert anomaly_spans(results, "z") == []
    del results["t0_ns"]  # node events cannot be placed without the run's clock
    assert anomaly_spans(results, "x") == [(2.0, 3.5)]


def test_suspects_are_the_windows_open_around_a_witness():
    steps = (
        Step(1, "partition", "start", {"shape": "leader"}),
        Step(2, "partition", "stop"),
        Step(4, "kill", "start", {"target": "leader"}),
        Step(6, "kill", "stop"),
        Step(8, "pause", "start", {"target": "leader"}),
        Step(20, "clock", "start", {"target": "leader"}),
    )
    ws = windows(steps)
    assert suspects(ws, [(6.5, 7.0)], slack=1) == [ws[1]]  # stopped 0.5 s before
    assert suspects(ws, [(6.5, 7.0)], slack=0) == []
    assert suspects(ws, [(9, 9.5)], slack=0) == [ws[2]]  # never stopped: open to the end
    assert suspects(ws, [(1.5, 1.5), (25, 30)], slack=0) == [ws[0], ws[2], ws[3]]


def test_moved_earlier_keeps_the_gaps_between_windows():
    ws = windows(
        (
            Step(30, "kill", "start", {"target": "leader"}),
            Step(33, "kill", "stop"),
            Step(40, "pause", "start", {"target": "leader"}),
        )
    )
    moved = moved_earlier(ws, 1.0)
    assert [[s.time for s in w] for w in moved] == [[1.0, 4.0], [11.0]]
    assert [[(s.fault, s.action, s.params) for s in w] for w in moved] == [
        [(s.fault, s.action, s.params) for s in w] for w in ws
    ]
    assert moved_earlier(moved, 5.0) == moved  # never later
    assert moved_earlier([], 1.0) == []


def test_named_nodes_reads_targets_nodes_and_grudges():
    assert named_nodes({"target": "leader"}) == set()
    assert named_nodes({"target": "one", "nodes": [3]}) == {3}
    assert named_nodes({"node": 2}) == {2}
    assert named_nodes({"shape": "halves", "grudge": {"1": [3], "3": [1]}}) == {1, 3}
