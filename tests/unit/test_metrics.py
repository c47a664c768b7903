"""METRICS as a pure function: openraft's shape, from the Raft status and the metadata view."""

from pathlib import Path

from walrus.clock import NodeClock
from walrus.config import Address, NodeConfig, Peer
from walrus.metastate import MetaMachine
from walrus.metrics import render


def config() -> NodeConfig:
    peers = {
        n: Peer(n, Address("127.0.0.1", 9000 + n), Address("127.0.0.1", 9100 + n),
                Address("127.0.0.1", 9200 + n))
        for n in (1, 2, 3)
    }  # fmt: skip
    return NodeConfig(node_id=2, data_dir=Path("/nonexistent"), peers=peers)


def status(state: int) -> dict:
    return {
        "term": 7,
        "leader": 2 if state == 2 else 1,
        "state": state,
        "match": {1: 40, 3: None},
        "last_log_index": 42,
        "last_applied": 41,
        "commit_idx": 41,
        "has_quorum": True,
        "connected": {1: True, 3: False},
    }


def test_a_leader_reports_replication_and_openraft_fields():
    lease_state = {"lease_holds": True, "lease_remaining_s": 1.5}
    view = MetaMachine([1, 2, 3]).view()
    out = render(config(), status(2), view, lease_state, NodeClock())
    assert out["state"] == "Leader" and out["current_leader"] == 2 and out["id"] == 2
    assert out["vote"] == {"leader_id": {"term": 7, "node_id": 2}, "committed": True}
    assert out["replication"] == {
        "1": {"leader_id": {"term": 7, "node_id": 2}, "index": 40},
        "3": {"leader_id": {"term": 7, "node_id": 2}, "index": 0},
        "2": {"leader_id": {"term": 7, "node_id": 2}, "index": 42},
    }
    assert out["membership_config"]["membership"]["configs"] == [[1, 2, 3]]
    assert out["membership_config"]["membership"]["nodes"]["3"] == {"addr": "127.0.0.1:9203"}
    ours = out["walrus"]
    assert ours["lease_holds"] is True and ours["lease_remaining_s"] == 1.5
    assert ours["alive"] == [1, 2, 3] and ours["connected"] == {"1": True, "3": False}


def test_a_follower_reports_no_replication():
    view = MetaMachine([1, 2, 3]).view()
    out = render(config(), status(0), view, {}, NodeClock())
    assert out["state"] == "Follower" and out["replication"] is None
    assert out["current_leader"] == 1
