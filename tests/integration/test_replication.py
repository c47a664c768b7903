"""Replicated segments on real nodes: copies on the followers, acknowledgement by a majority."""

import shutil
import time

import pytest

from tests.integration.test_node_faults import drain, holder, put_until_ok, topic_with_entries
from walrus.client import DefiniteError, IndeterminateError
from walrus.storage import NODE_STORE, Store

REPLICATED = ["--replicas", "3", "--lease-ms", "1000", "--max-segment-entries", "1000"]


def stored(cluster, node: int, topic: str) -> list[bytes]:
    """What a stopped node's store holds of ``topic``, in order."""
    with Store(cluster.data_dir(node) / NODE_STORE) as store:
        return [payload for _, _, payload in store.scan(topic)]


def test_every_copy_holds_what_was_acknowledged(make_cluster):
    cluster = make_cluster(args=["--replicas", "3", "--max-segment-entries", "40"])
    with cluster.client(1) as c:
        c.register("t")
        leader = holder(cluster, "t")
        values = [f"v{i}" for i in range(100)]
        for v in values:
            c.put("t", v)
        state = c.state("t")
        assert all(sorted(r) == [1, 2, 3] for r in state["segment_replicas"].values()), state
        assert drain(c, "t")[:10] == values[:10]
    time.sleep(1.0)  # the last entries reach the follower the acknowledgement did not wait for
    for node in cluster.peers:
        assert cluster.stop(node) == 0
    copies = {node: stored(cluster, node, "t") for node in cluster.peers}
    for node, copy in copies.items():
        assert copy == [v.encode() for v in values], (node, leader, len(copy))


@pytest.mark.slow
def test_a_put_without_a_majority_of_copies_is_not_acknowledged_nor_read(make_cluster):
    # Five nodes, so that Raft keeps a quorum when the segment's two followers die.
    cluster = make_cluster(5, args=["--replicas", "3", "--forward-timeout-ms", "2000"])
    with cluster.client(1) as c:
        c.register("t")
    leader = holder(cluster, "t")
    with cluster.client(leader) as c:
        c.put("t", "before")
        for node in c.state("t")["segment_replicas"]["1"][1:]:
            cluster.kill(node)
        with pytest.raises(IndeterminateError, match="majority"):
            c.put("t", "alone")
        assert c.get("t") == b"before"
        # "alone" is on the leader's copy only: neither handed out nor reported absent
        with pytest.raises(Exception, match="majority"):
            c.get("t")


def get_when_served(client, topic: str, timeout: float = 20) -> bytes | None:
    """GET, retrying definite failures (the segment not yet sealed from its replicas)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.get(topic)
        except DefiniteError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.slow
def test_the_dead_leaders_entries_are_read_from_a_replica(make_cluster):
    """Issue 16's acceptance: kill the leader of an open segment; what it acknowledged is read
    from a replica within 5 s, without the node coming back."""
    cluster = make_cluster(args=REPLICATED)
    h, other, acked = topic_with_entries(cluster, 20, via_holder=False)
    with cluster.client(other) as c:
        assert c.get("t") == b"a0"  # the read position moves in the metadata
        cluster.kill(h)
        killed = time.monotonic()
        assert get_when_served(c, "t") == b"a1"
        served_after = time.monotonic() - killed
        state = c.state("t")
        assert state["sealed_segments"]["1"] == 20 and state["leader_node"] != h
        for i in range(10):
            put_until_ok(c, "t", f"b{i}")
        rest = [get_when_served(c, "t").decode() for _ in range(28)]
        assert rest == acked[2:] + [f"b{i}" for i in range(10)]
        assert c.get("t") is None
    assert served_after < 5, served_after


@pytest.mark.slow
def test_a_wiped_leader_loses_nothing_with_three_copies(make_cluster):
    cluster = make_cluster(args=[*REPLICATED[:4], "--max-segment-entries", "15"])
    h, other, acked = topic_with_entries(cluster, 40, via_holder=False)
    cluster.kill(h)
    shutil.rmtree(cluster.data_dir(h) / NODE_STORE)
    cluster.start(h)
    cluster.wait_ready([h])
    with cluster.client(other) as c:
        for i in range(10):
            put_until_ok(c, "t", f"b{i}")
            acked.append(f"b{i}")
        got = [get_when_served(c, "t").decode() for _ in range(len(acked))]
        assert got == acked
        assert c.get("t") is None
        deadline = time.monotonic() + 20
        while c.state("t").get("lost_copies") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not c.state("t").get("lost_copies"), c.state("t")  # repaired
    assert '"kind":"disk-lost"' in (cluster.data_dir(h) / "events.jsonl").read_text()
