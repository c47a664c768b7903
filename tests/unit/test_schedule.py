"""Schedules as data: planned from a seed, the same seed the same bytes; faults coordinated; and
the nemesis a layer of its own that imports nothing from the harness."""

import ast
import itertools
import json
from pathlib import Path

import pytest

from harness.workload import WorkloadConfig, operation_plan
from nemesis.aim import EventWatch, NodeEvent, delay_range
from nemesis.catalogue import FAULTS
from nemesis.schedule import Step, UnknownFault, admit, dumps, fault_names, plan

NODES, TOPICS = [1, 2, 3], ["t0", "t1"]
EVERY = (
    "partition,kill,pause,clock,disk,drift-unsafe,bitrot,delay,throttle,lose-unsynced,"
    "lose-unsynced-all,lose-unsynced-majority,"
    "kill@seal,partition@takeover,pause@lease-renew"
)


def schedule(seed: int, spec: str = EVERY, seconds: float = 60.0) -> list[Step]:
    return plan(fault_names(spec), 2.0, seconds, seed, NODES, TOPICS)


@pytest.mark.parametrize("seed", range(5))
def test_the_same_seed_plans_the_same_schedule_byte_for_byte(seed):
    first, second = dumps(schedule(seed)), dumps(schedule(seed))
    assert first == second
    assert first != dumps(schedule(seed + 100))


@pytest.mark.parametrize("seed", range(5))
def test_the_same_seed_plans_the_same_operations_byte_for_byte(seed):
    config = WorkloadConfig(concurrency=4, topics=3, rate=100.0, seed=seed)

    def planned(c: WorkloadConfig) -> str:
        ops = [list(itertools.islice(operation_plan(c, slot), 500)) for slot in range(4)]
        return json.dumps(ops)

    assert planned(config) == planned(config)
    other = WorkloadConfig(concurrency=4, topics=3, rate=100.0, seed=seed + 100)
    assert planned(config) != planned(other)


@pytest.mark.parametrize("seed", range(10))
def test_a_plan_alternates_start_and_stop_per_fault_within_the_time(seed):
    steps = schedule(seed)
    assert steps and all(0 < s.time < 60 for s in steps)
    assert [s.time for s in steps] == sorted(s.time for s in steps)
    for name in {s.fault for s in steps}:
        actions = [s.action for s in steps if s.fault == name]
        assert actions[::2] == ["start"] * len(actions[::2])
        assert actions[1::2] == ["stop"] * len(actions[1::2])
    for s in steps:
        if s.action == "start" and "nodes" in s.params:
            assert set(s.params["nodes"]) <= set(NODES) and s.params["nodes"]
        if s.fault == "partition" and "grudge" in s.params:
            assert any(s.params["grudge"].values()), "a planned partition cuts something"


def test_steps_round_trip_through_test_json():
    steps = schedule(3)
    again = [Step.from_json(json.loads(json.dumps(s.to_json()))) for s in steps]
    assert again == steps
    with pytest.raises(ValueError):
        Step.from_json({"time": 1, "fault": "meteor", "action": "start"})
    with pytest.raises(ValueError):
        Step.from_json({"time": 1, "fault": "kill@meteor", "action": "start"})


def test_aimed_faults_are_planned_with_a_trigger_and_refused_where_they_cannot_aim():
    steps = schedule(4, "kill@seal,pause@lease-renew")
    starts = [s for s in steps if s.action == "start"]
    assert starts and all(s.fault in ("kill@seal", "pause@lease-renew") for s in starts)
    for s in starts:
        assert s.params["trigger"]["event"] == s.fault.split("@")[1]
        assert 0 <= s.params["trigger"]["delay_ms"] <= 50
    for bad, words in (
        ("clock@seal", "cannot be aimed"),
        ("kill@lunch", "no event 'lunch'"),
        ("meteor@seal", "unknown nemesis"),
        ("kill@seal+soon", "MS or LOW-HIGH"),
        ("kill@seal+20-5", "LOW <= HIGH"),
    ):
        with pytest.raises(UnknownFault, match=words):
            fault_names(bad)


def test_an_event_watch_sees_only_new_events_and_waits_for_whole_lines(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text('{"kind": "seal", "node": 1, "true_ns": 5}\n')
    watch = EventWatch({1: log, 2: tmp_path / "missing.jsonl"})
    assert watch.poll() == []
    with open(log, "a") as f:
        f.write('{"kind": "lease-renew", "node": 1, "true_ns": 7}\n{"kind": "se')
    assert watch.poll() == [NodeEvent("lease-renew", 1, 7, 1)]
    with open(log, "a") as f:
        f.write('al", "node": 1, "true_ns": 9}\n')
        f.write('{"kind": "takeover", "node": 1, "true_ns": 11, "moved_to": [3]}\n')
    assert watch.poll() == [NodeEvent("seal", 1, 9, 1), NodeEvent("takeover", 1, 11, 3)]
    with open(log, "a") as f:
        f.write('{"kind": "takeover", "node": 1, "true_ns": 12, "moved_to": []}\n')
    assert watch.poll() == [NodeEvent("takeover", 1, 12, None)], "it moved nothing: no target"
    with open(log, "a") as f:
        f.write('{"kind": "meta-truncate", "node": 1, "true_ns": 13, "leader": 2}\n')
    assert watch.poll() == [NodeEvent("meta-truncate", 1, 13, 2)], "the leader that made it"


def test_an_aimed_name_may_choose_its_delay():
    assert delay_range("kill@seal") == (0.0, 50.0)
    assert delay_range("kill@seal+5") == (5.0, 5.0)
    assert delay_range("partition@takeover+0-20") == (0.0, 20.0)
    assert fault_names("kill@seal+5") == ["kill@seal+5"]
    steps = plan(["kill@seal+5"], 2, 10, 1, [1, 2, 3], ["t"])
    starts = [s for s in steps if s.action == "start"]
    for s in starts:
        assert {k: s.params["trigger"][k] for k in ("event", "delay_ms")} == {
            "event": "seal",
            "delay_ms": 5.0,
        }
        assert 1 <= s.params["trigger"]["hold_s"] <= 3, "held for half to 1.5 intervals"
    assert starts


@pytest.mark.parametrize("seed", range(20))
def test_a_correlated_power_loss_is_planned_for_all_nodes_or_a_majority(seed):
    import random

    five = [1, 2, 3, 4, 5]
    everyone = FAULTS["lose-unsynced-all"].plan(random.Random(seed), five, TOPICS)
    assert everyone == {"target": "all", "nodes": five}
    most = FAULTS["lose-unsynced-majority"].plan(random.Random(seed), five, TOPICS)
    assert most["target"] == "majority"
    assert len(most["nodes"]) == 3 and set(most["nodes"]) <= set(five)


def test_faults_that_share_a_node_never_act_on_it_together():
    known = FAULTS
    kill, pause, disk, clock = (known[n]() for n in ("kill", "pause", "disk", "clock"))
    held: dict = {}
    assert admit(held, kill, [1, 2]) == [1, 2]
    assert admit(held, pause, [2, 3]) == [3], "node 2's process is the kill's"
    assert admit(held, disk, [1]) is None, "every node it names is held: skipped"
    assert admit(held, clock, [1, 2]) == [1, 2], "clocks are another resource"
    partition = known["partition"]()
    assert admit(held, partition, []) == []


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_nemesis_imports_nothing_from_the_harness():
    root = Path(__file__).resolve().parents[2]
    offenders = {
        str(p.relative_to(root))
        for p in (root / "nemesis").glob("*.py")
        if "harness" in imports_of(p)
    }
    assert not offenders, f"nemesis/ must not import harness/: {sorted(offenders)}"
    assert any("nemesis" in imports_of(p) for p in (root / "harness").rglob("*.py"))


def test_a_test_configuration_round_trips_through_test_json(tmp_path):
    from harness.runner import TestConfig
    from harness.systems import NodeSpec, WalrusPy
    from harness.systems.external import External
    from harness.systems.walrus_rs import WalrusRs

    systems = [
        WalrusPy(NodeSpec(compat=True, max_segment_entries=5, extra_args=("--x",)), plain=True),
        WalrusRs(str(tmp_path), 20, (("WALRUS_A", "1"),), faketime=True),
        External(("127.0.0.1:1", "127.0.0.1:2"), "kill {node}", "start {node}"),
    ]
    for system in systems:
        config = TestConfig(
            nemesis="partition,kill", seed=3, system=system, schedule=tuple(schedule(3))
        )
        assert TestConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ValueError):
        TestConfig.from_json({"name": "x"})
