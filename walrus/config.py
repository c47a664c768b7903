"""A node's configuration: its addresses, its peers', and the knobs of the data plane."""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from walrus.lease import LeaseConfig
from walrus.metadata import RaftSettings
from walrus.server import Limits
from walrus.storage import FsyncPolicy

DEFAULT_MAX_SEGMENT_ENTRIES = 1_000_000


class ConfigError(ValueError):
    """A configuration that cannot work; the message says what to change."""


@dataclass(frozen=True)
class Address:
    """host:port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> "Address":
        """Read ``host:port``; ConfigError naming ``what`` if it is not one."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{what} must be host:port with a port in 1-65535, not {text!r}")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Peer:
    """Where a node serves clients, node RPC and Raft."""

    id: int
    client: Address
    rpc: Address
    raft: Address


def default_replicas(nodes: int, compat: bool) -> int:
    """Copies of each segment when none is asked for: three (a majority survives one lost disk)
    on a cluster of three or more, one otherwise and under ``--compat walrus``."""
    return 1 if compat or nodes < 3 else 3


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start. ``peers`` includes this node itself."""

    node_id: int
    data_dir: Path
    peers: dict[int, Peer]
    rpc_routes: dict[int, Address] = field(default_factory=dict)
    raft_routes: dict[int, Address] = field(default_factory=dict)
    max_segment_entries: int = DEFAULT_MAX_SEGMENT_ENTRIES
    fsync: FsyncPolicy = field(default_factory=lambda: FsyncPolicy("each"))
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    compat: bool = False
    replicas: int = 1
    """Copies of each segment (its leader's and R-1 followers'); a PUT is acknowledged once a
    majority of them hold it."""
    raft: RaftSettings = field(default_factory=RaftSettings)
    limits: Limits = field(default_factory=Limits)
    """What one client may cost the node (connections, requests read ahead, idle time)."""
    secret: str | None = None
    """The cluster secret (``walrus.auth``); None only when run ``--insecure``."""
    forward_timeout: float = 5.0
    proposal_timeout: float = 5.0
    monitor_interval: float = 10.0
    exit_with_parent: bool = False

    def __post_init__(self) -> None:
        if self.node_id not in self.peers:
            known = ", ".join(str(i) for i in sorted(self.peers))
            raise ConfigError(f"node id {self.node_id} is not among the cluster's nodes ({known})")
        if self.max_segment_entries < 1:
            raise ConfigError("max segment entries must be at least 1")
        if not 1 <= self.replicas <= len(self.peers):
            raise ConfigError(
                f"--replicas must be between 1 and the {len(self.peers)} nodes, not {self.replicas}"
            )
        if self.compat and self.replicas != 1:
            raise ConfigError("--compat walrus keeps one copy of each segment: --replicas 1")
        for routes, what in ((self.rpc_routes, "RPC"), (self.raft_routes, "Raft")):
            for nid in routes:
                if nid not in self.peers or nid == self.node_id:
                    raise ConfigError(f"{what} route for node {nid}, which is not a peer")
        seen: dict[Address, str] = {}
        for peer in self.peers.values():
            for kind, addr in (("client", peer.client), ("rpc", peer.rpc), ("raft", peer.raft)):
                if addr in seen:
                    raise ConfigError(
                        f"{addr} is used twice ({seen[addr]} and node {peer.id} {kind})"
                    )
                seen[addr] = f"node {peer.id} {kind}"

    @property
    def rpc_key(self) -> bytes | None:
        """The key node RPC links are authenticated with (None: insecure)."""
        from walrus.auth import derive

        return None if self.secret is None else derive(self.secret, "rpc")

    @property
    def me(self) -> Peer:
        """This node's own addresses."""
        return self.peers[self.node_id]

    def rpc_target(self, node: int) -> Address:
        """Where to connect for node RPC to ``node`` (its address, or the route given)."""
        return self.rpc_routes.get(node, self.peers[node].rpc)

    def fingerprint(self) -> str:
        """A short hash of the membership and mode: every node of one cluster has the same."""
        text = ";".join(
            f"{p.id}={p.client},{p.rpc},{p.raft}"
            for p in sorted(self.peers.values(), key=lambda p: p.id)
        )
        text += f";compat={self.compat}"
        if self.replicas != 1:
            text += f";replicas={self.replicas}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def env_int(name: str, default: int, minimum: int) -> int:
    """An integer from the environment (as Walrus reads WALRUS_* variables)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def local_cluster(nodes: int, base_port: int, host: str = "127.0.0.1") -> dict[int, Peer]:
    """Node i (1..nodes) on ``host``: client P+i, RPC P+100+i, Raft P+200+i."""
    if nodes < 1:
        raise ConfigError("a cluster needs at least one node")
    if base_port < 1 or base_port + 200 + nodes > 65535:
        raise ConfigError(
            f"base port {base_port} leaves no room for {nodes} nodes (P+200+N <= 65535)"
        )
    return {
        i: Peer(
            i,
            Address(host, base_port + i),
            Address(host, base_port + 100 + i),
            Address(host, base_port + 200 + i),
        )
        for i in range(1, nodes + 1)
    }
