"""Replicated segments on real nodes: copies on the followers, acknowledgement by a majority."""

import time

import pytest

from tests.integration.test_node_faults import drain, holder
from walrus.client import IndeterminateError
from walrus.storage import NODE_STORE, Store


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
    cluster = make_cluster(args=["--replicas", "3", "--forward-timeout-ms", "2000"])
    with cluster.client(1) as c:
        c.register("t")
    leader = holder(cluster, "t")
    with cluster.client(leader) as c:
        c.put("t", "before")
        for node in cluster.peers:
            if node != leader:
                cluster.kill(node)
        with pytest.raises(IndeterminateError, match="majority"):
            c.put("t", "alone")
        assert c.get("t") == b"before"
        # "alone" is on the leader's copy only: neither handed out nor reported absent
        with pytest.raises(Exception, match="majority"):
            c.get("t")
