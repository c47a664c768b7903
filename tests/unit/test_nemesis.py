"""Nemesis pieces that need no cluster: target sets, disk damage on real store files."""

import io
import random

from harness.history import Recorder
from nemesis.context import FaultContext, pick
from nemesis.disk import damage_tail
from nemesis.schedule import fault_names
from walrus.storage import Store


class Nodes:
    """Just enough of a cluster for choosing targets: its node list."""

    def __init__(self, n: int) -> None:
        self.nodes = list(range(1, n + 1))


def context(recorder=None, n=5, seed=0) -> FaultContext:
    recorder = recorder or Recorder(io.StringIO(), lambda: 0)
    return FaultContext(Nodes(n), random.Random(seed), recorder, ["t"], None)


def test_target_sets():
    nodes, rng = [1, 2, 3, 4, 5], random.Random(0)
    assert len(pick("one", nodes, rng)) == 1
    assert len(pick("minority", nodes, rng)) == 2
    assert len(pick("majority", nodes, rng)) == 3
    assert sorted(pick("all", nodes, rng)) == [1, 2, 3, 4, 5]


def test_all_is_the_survivable_faults():
    assert fault_names("all") == ["partition", "kill", "pause", "clock", "disk"]
    assert fault_names("drift-unsafe,partition,partition") == [
        "drift-unsafe",
        "partition",
    ]


def store_with(tmp_path, n):
    with Store(tmp_path / "store") as store:
        store.create_segment("t", 1)
        for i in range(n):
            store.append("t", 1, f"v{i}".encode())


def test_disk_damage_spares_what_clients_saw(tmp_path):
    for seed in range(20):
        root = tmp_path / f"s{seed}"
        store_with(root, 10)
        recorder = Recorder(io.StringIO(), lambda: 0)
        for i in range(6):  # offsets 0..5 acknowledged
            recorder.record(1, "ok", "put", "t", f"v{i}", pos=[1, i])
        done = damage_tail(context(recorder, seed=seed), root)
        assert done["segment"] == 1
        with Store(root / "store") as store:
            kept = store.read("t", 1, 0, 100)
        assert kept[:6] == [f"v{i}".encode() for i in range(6)], done
        assert len(kept) < 10 or "appended" in done["damage"]


def test_disk_damage_appends_when_everything_was_seen(tmp_path):
    store_with(tmp_path, 3)
    recorder = Recorder(io.StringIO(), lambda: 0)
    for i in range(3):
        recorder.record(1, "ok", "put", "t", f"v{i}", pos=[1, i])
    done = damage_tail(context(recorder, seed=1), tmp_path)
    assert done["damage"].startswith("appended")
    with Store(tmp_path / "store") as store:
        assert store.read("t", 1, 0, 10) == [b"v0", b"v1", b"v2"]
        assert store.recovery_notes
