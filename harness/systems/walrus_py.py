"""``walrus-py``: this repository's node, with every checker (or black-box, on request).

Its clients speak the extended dialect (positions, epochs, tagged gets), its nodes keep event logs
for the lease checker, ``SCAN`` lets the harness audit every stored entry, and ``clock.ctl`` in
the data directory bends its clock. With ``black_box`` it is driven like any foreign Walrus —
plain PUT and GET, no events, no audit — which is how the black-box checkers are tested on a
system whose correct answers we know.
"""

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import trio

from harness.clients.walrus import WALRUS_PY, Extended, Plain, Walrus
from harness.images import NODE_REQUIREMENTS, host_bundle
from harness.remote.base import Remote
from harness.remote.install import install_bundle
from harness.systems.base import (
    Command,
    Launched,
    Log,
    Member,
    Nodes,
    Unsupported,
    all_ready,
)
from nemesis.disk import flip
from walrus import codec
from walrus.auth import SECRET_FILE, secret_args
from walrus.client import Client, WalrusError
from walrus.clock import control_text
from walrus.cluster import node_command, node_ready
from walrus.config import Address, Peer
from walrus.events import EVENT_LOG
from walrus.protocol import JsonObject
from walrus.storage import NODE_STORE, segment_files

if TYPE_CHECKING:
    from docker import DockerClient


@dataclass(frozen=True)
class NodeSpec:
    """What every node of a test is started with (besides its identity and addresses)."""

    compat: bool = False
    max_segment_entries: int | None = None
    fsync: str = "each"
    lease_ms: int = 2000
    drift: float = 0.1
    replicas: int | None = None
    """Copies of each segment; None: the node's default."""
    extra_args: tuple[str, ...] = ()
    mutant: str | None = None
    """A planted bug (``harness.mutants``) to run the nodes with; local backend only."""

    def args(self) -> list[str]:
        """The ``walrus node`` options for this spec."""
        out = ["--fsync", self.fsync, "--lease-ms", str(self.lease_ms), "--drift", str(self.drift)]
        if self.compat:
            out += ["--compat", "walrus"]
        if self.max_segment_entries is not None:
            out += ["--max-segment-entries", str(self.max_segment_entries)]
        if self.replicas is not None:
            out += ["--replicas", str(self.replicas)]
        return out + list(self.extra_args)


CONTAINER_SECRET = "/run/walrus/cluster.secret"
"""Where a node container finds the cluster secret (bind-mounted from the cluster's root)."""


def peers_of(members: dict[int, Member]) -> dict[int, Peer]:
    """The ``walrus node`` view of a cluster's members."""
    return {m.id: Peer(m.id, m.client, m.links["rpc"], m.links["raft"]) for m in members.values()}


@dataclass(frozen=True)
class WalrusPy(Launched):
    """This repository's node."""

    spec: NodeSpec = field(default_factory=NodeSpec)
    plain: bool = False
    """Black-box mode: plain PUT/GET, no events or audit."""

    name: ClassVar[str] = "walrus-py"
    link_names: ClassVar[tuple[str, ...]] = ("rpc", "raft")
    faults: ClassVar[frozenset[str]] = frozenset(
        {
            "partition",
            "kill",
            "pause",
            "clock",
            "disk",
            "drift-unsafe",
            "bitrot",
            "lose-unsynced",
            "lose-unsynced-all",
            "lose-unsynced-majority",
            "wipe",
            "delay",
            "throttle",
            "loss",
            "duplicate",
            "reorder",
        }
    )

    @property
    def client(self) -> Walrus:
        """Extended, or plain with our node's own error contract."""
        return Plain(WALRUS_PY) if self.plain else Extended()

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """The base checks, and a planted bug only on the local backend."""
        super().preflight(backend, faults, nodes)
        if self.spec.mutant and backend != "local":
            raise Unsupported(
                f"planted bugs run on the local backend only (the {backend} node image "
                "holds only the walrus package)"
            )

    @property
    def keeps_event_logs(self) -> bool:
        """Always: black-box only means the checkers do not read them."""
        return True

    @property
    def lease_s(self) -> float | None:
        """L, unless black-box (no events to check leases with)."""
        return None if self.plain else self.spec.lease_ms / 1000

    @property
    def drift_bound(self) -> float:
        """The nodes' rho."""
        return self.spec.drift

    def describe(self) -> str:
        """walrus-py, with compat mode, black-box mode and segment size noted."""
        notes = [
            n for n, on in (("compat walrus", self.spec.compat), ("black-box", self.plain)) if on
        ]
        if self.spec.max_segment_entries:
            notes.append(f"{self.spec.max_segment_entries} entries per segment")
        if self.spec.replicas is not None:
            notes.append(f"{self.spec.replicas} replicas")
        if self.spec.mutant:
            notes.append(f"planted bug {self.spec.mutant}")
        return self.name + (f" ({', '.join(notes)})" if notes else "")

    def local_command(
        self,
        member: Member,
        members: dict[int, Member],
        data_dir: Path,
        routes: dict[int, dict[str, Address]],
    ) -> Command:
        """``walrus node`` with a ``--route`` through the proxies for every peer; it stops if the
        harness dies."""
        # The backend keeps every node's data directory in the cluster's root, the secret too.
        extra = [*self.spec.args(), "--exit-with-parent", *secret_args(data_dir.parent)]
        for peer, via in sorted(routes.items()):
            extra += ["--route", f"{peer}={via['rpc']},{via['raft']}"]
        argv = node_command(member.id, peers_of(members), data_dir, extra)
        if self.spec.mutant:  # python -m walrus ... -> python -m harness.mutants NAME ...
            argv[1:3] = ["-m", "harness.mutants", self.spec.mutant]
        return Command(argv)

    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """The node image built from this checkout's ``walrus`` package."""
        from harness.images import node_image

        built, _ = node_image(client, base, log)
        return built.tag

    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """``walrus node`` arguments (the image's entry point is ``python -m walrus``)."""
        argv = node_command(member.id, peers_of(members), Path("/data"), self.spec.args())
        return Command([*argv[3:], "--cluster-secret-file", CONTAINER_SECRET])

    def container_mounts(self, root: Path) -> dict[str, str]:
        """The cluster secret (made in the cluster's root if missing), read-only."""
        secret_args(root)
        return {str((root / SECRET_FILE).resolve()): CONTAINER_SECRET}

    def container_ports(self, node: int) -> dict[str, int]:
        """The same ports in every container (each has its own address)."""
        return {"client": 9091, "rpc": 9191, "raft": 9291}

    host_needs: ClassVar[tuple[str, ...]] = ("python3",)

    async def install(self, remote: Remote, home: str, root: Path, log: Log) -> None:
        """A venv in ``home`` with the node's dependencies from this host's wheelhouse (pinned
        to what runs here), the ``walrus`` sources beside it, the cluster's secret, and the
        node's kernels compiled into its numba cache (as the node image does at build: a node
        that compiled them at its first requests would answer nothing for seconds)."""
        bundle = await trio.to_thread.run_sync(lambda: host_bundle(log))
        secret = Path(secret_args(root)[1]).read_bytes()
        await remote.write(f"{home}/{SECRET_FILE}", secret, mode=0o600)
        log(f"installing the node on {remote.name}")
        await install_bundle(remote, bundle, home, NODE_REQUIREMENTS)
        env = [f"PYTHONPATH={home}/src", f"WALRUS_NUMBA_CACHE={home}/numba-cache"]
        warm = "from walrus import codec; codec.warm_up()"
        await remote.check(["env", *env, f"{home}/venv/bin/python", "-c", warm], timeout=600.0)

    def host_command(self, member: Member, members: dict[int, Member], data_dir: str) -> Command:
        """``walrus node`` from the venv ``install`` made in the run's directory."""
        home = data_dir.rsplit("/", 1)[0]
        argv = node_command(member.id, peers_of(members), Path(data_dir), self.spec.args())
        argv = [f"{home}/venv/bin/python", *argv[1:]]
        argv += ["--cluster-secret-file", f"{home}/{SECRET_FILE}"]
        env = {"PYTHONPATH": f"{home}/src", "WALRUS_NUMBA_CACHE": f"{home}/numba-cache"}
        return Command(argv, env)

    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """The node's clock.ctl."""
        return "clock.ctl", control_text(offset, rate).encode()

    def ready(self, member: Member) -> bool:
        """METRICS: a Raft leader known and (unless compat) a lease held."""
        return node_ready(peers_of({member.id: member})[member.id])

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """Every node ready and no segment awaiting its count (STATE ``pending_seals``)."""
        deadline = trio.current_time() + timeout
        if not await all_ready(cluster, timeout, log):
            return False
        pending: list[str] = []
        while trio.current_time() < deadline:
            pending = []
            for topic in topics:
                answer = await self.state(cluster, topic, errors=pending)
                if answer is None:
                    continue
                state = answer[1]
                if state["pending_seals"]:
                    pending.append(f"{topic}: segments {state['pending_seals']} await their counts")
            if not pending:
                return True
            await trio.sleep(0.5)
        log(f"recovery incomplete after {timeout:g} s: {'; '.join(pending)}")
        return False

    async def audit(self, cluster: Nodes, topics: list[str]) -> JsonObject:
        """STATE of each topic and, unless black-box, a SCAN of every segment."""
        if self.plain:
            return await super().audit(cluster, topics)
        return await self.audit_stores(cluster, topics)

    async def audit_stores(
        self, cluster: Nodes, topics: list[str], page: int = 10_000
    ) -> JsonObject:
        """STATE of each topic and a non-destructive SCAN of every segment it has."""
        out: JsonObject = {"states": {}, "segments": {}, "errors": []}
        for topic in topics:
            answer = await self.state(cluster, topic, errors=out["errors"])
            if answer is None:
                continue
            via, state = answer
            out["states"][topic] = state
            host, port = cluster.client_address(via)
            segments: dict[str, JsonObject] = {}
            for segment in range(1, state["current_segment"] + 1):
                try:
                    segments[str(segment)] = await trio.to_thread.run_sync(
                        _scan_all, host, port, topic, segment, page
                    )
                except (WalrusError, OSError, ValueError) as exc:
                    out["errors"].append(f"SCAN {topic} segment {segment}: {exc}")
            out["segments"][topic] = segments
        return out

    def rot(self, data_dir: Path, rng: random.Random) -> JsonObject:
        """A flipped bit in a segment record clients have seen (``rot_segment``)."""
        return rot_segment(data_dir, rng)

    def node_files(self) -> tuple[str, ...]:
        """The log and, unless black-box, the event log."""
        return ("node.log",) if self.plain else ("node.log", EVENT_LOG)


def _scan_all(host: str, port: int, topic: str, segment: int, page: int) -> JsonObject:
    values: list[str] = []
    with Client(host, port, timeout=30) as c:
        while True:
            chunk = c.scan(topic, segment, len(values), page)
            values += chunk["entries"]
            if len(values) >= chunk["stored"] or not chunk["entries"]:
                return {
                    "node": chunk["node"],
                    "stored": chunk["stored"],
                    "state": chunk["state"],
                    "count": chunk["count"],
                    "values": values,
                }


def rot_segment(data_dir: Path, rng: random.Random) -> dict[str, object]:
    """Flip a bit inside a record of a Walrus segment under ``data_dir`` that intact records
    follow (so that clients have seen it): damage to synced data, not a torn tail."""
    for topic, segment, path in segment_files(data_dir / NODE_STORE):
        data = np.fromfile(path, dtype=np.uint8)
        positions, _, _ = codec.scan_records(data, 0)
        if len(positions) >= 2:
            k = rng.randrange(len(positions) - 1)
            byte = rng.randint(int(positions[k]), int(positions[k + 1]) - 1)
            flip(path, byte, rng.randrange(8))
            return {
                "damage": "flipped a bit in synced data",
                "topic": topic,
                "segment": segment,
                "file": str(path),
                "at": byte,
            }
    return {"damage": "none", "why": "no segment with two records"}
