"""METRICS: the node's state rendered in the shape of openraft's metrics, which Walrus's clients
and scripts read (``current_leader``, ``state``, ``membership_config``...), plus our own under
``walrus``. A pure function of what the node knows, so it is tested without a running node."""

from collections.abc import Mapping

from walrus.clock import NodeClock
from walrus.config import NodeConfig
from walrus.metadata import RaftStatus
from walrus.metastate import MetaView

RAFT_STATES = {0: "Follower", 1: "Candidate", 2: "Leader"}
"""pysyncobj's state numbers, by openraft's names."""


def render(
    config: NodeConfig,
    status: RaftStatus,
    view: MetaView,
    lease_state: Mapping[str, object],
    clock: NodeClock,
) -> dict[str, object]:
    """METRICS from the Raft thread's ``status``, the metadata ``view``, the lease's state
    (``lease_holds``, ``lease_remaining_s``) and the node's clock settings."""
    term, leader = status["term"], status["leader"]
    leader_id = None if leader is None else {"term": term, "node_id": leader}
    replication = None
    if status["state"] == 2:
        replication = {
            str(nid): {"leader_id": leader_id, "index": index or 0}
            for nid, index in status["match"].items()
        }
        replication[str(config.node_id)] = {
            "leader_id": leader_id,
            "index": status["last_log_index"],
        }
    return {
        "running_state": {"Ok": None},
        "id": config.node_id,
        "current_term": term,
        "vote": {"leader_id": leader_id, "committed": leader is not None},
        "last_log_index": status["last_log_index"],
        "last_applied": {"leader_id": leader_id, "index": status["last_applied"]},
        "snapshot": None,
        "purged": None,
        "state": RAFT_STATES.get(status["state"], "Follower"),
        "current_leader": leader,
        "millis_since_quorum_ack": None,
        "last_quorum_acked": None,
        "membership_config": {
            "log_id": None,
            "membership": {
                "configs": [sorted(config.peers)],
                "nodes": {str(p.id): {"addr": str(p.raft)} for p in config.peers.values()},
            },
        },
        "heartbeat": None,
        "replication": replication,
        "walrus": {
            "compat": config.compat,
            "client_addr": str(config.me.client),
            "commit_index": status["commit_idx"],
            "has_quorum": status["has_quorum"],
            "connected": {str(k): v for k, v in status["connected"].items()},
            "alive": sorted(view.alive),
            **lease_state,
            "topics": len(view.topics),
            "applied_commands": view.applied,
            "clock": {"offset": clock.offset, "rate": clock.rate},
        },
    }
