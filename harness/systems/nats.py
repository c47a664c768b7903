"""``nats``: NATS JetStream, Debian's nats-server, clustered, with file storage.

Each node is one ``nats-server`` with JetStream on, its store in the node's data directory, and a
route to every other node through the local backend's link proxies, so that a partition cuts
real routes. Servers learn of each other's route ports by gossip and would otherwise dial one
another directly, around the proxies (nats-server v2.9.10 route.go: a server forwards each new
route's INFO to its other routes, whose receivers connect to the address in it); every node
therefore advertises a route address where nothing listens, and the gossiped connections fail
while the configured ones, through the proxies, stand. ``no_advertise`` keeps clients on the one
server they were given. Routes are pinged every second, so a cut link is noticed in seconds
rather than the default minutes.

Topics are streams with ``replicas`` copies, read through one durable pull consumer each
(``harness.clients.nats``). A node is ready when its monitoring port's ``/healthz`` says so: a
JetStream meta leader known and every stream and consumer copy on the node current
(nats-server v2.9.10 monitor.go, ``/healthz``); the cluster has recovered when every node is.

Faults: partitions (the link proxies), kill, pause, and power loss of one node, a majority or all
of them (``lose-unsynced``, ``-majority``, ``-all``: the store seen through losefs; nats-server
v2.9.10 has no setting to sync each write — its options have none, and every stream's file store
syncs on a timer set to 2 minutes (stream.go:493, ``fsCfg.SyncInterval = 2 * time.Minute``; the
Raft logs every 5, jetstream_cluster.go:1662) — so what it acknowledged in the last two minutes
may be only in the page cache of every copy), and bit rot (``bitrot``: a killed node's stream
message block gets a flipped bit, ``rot``). Not clock skew: nats-server reads the time
through Go's runtime, from the vDSO, which libfaketime's preloaded library never sees (tried
here: ``FAKETIME=+1h`` moved ``date`` and left nats-server's log and ``/varz`` on true time).
On the Docker backend each node is a container of this host's nats-server (Debian's build links
only the C library) on the test's bridge network, partitioned by iptables on the nodes' addresses
— which cut gossiped routes as well, so the dead advertised address is not needed there — with
the link faults of that backend (delay, throttle, loss, duplicate, reorder); the local backend's
link proxies give delay and throttle.
"""

import json
import random
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from harness.clients.nats import NatsJetStream
from harness.systems.base import PROCESS_FAULTS, Command, Launched, Log, Member, Nodes, Unsupported
from harness.tools import require
from nemesis.disk import flip
from walrus.config import Address
from walrus.protocol import JsonObject

if TYPE_CHECKING:
    from docker import DockerClient

IMAGE_BINARY = "/usr/local/bin/nats-server"
"""Where a node container's nats-server is (the image's entry point)."""
CONTAINER_CONFIG = "/etc/nats-harness.conf"
"""Where a node container reads the configuration every node shares."""

SHARED_CONFIG = (
    'ping_interval: "1s"\nping_max: 3\njetstream { max_file_store: 1G, max_memory_store: 64M }\n'
)
"""What every node in a container or on a host shares: route pings every second, store limits."""
HOST_CONFIG = "shared.conf"
"""That configuration's name in a node's directory on a host (the SSH backend)."""

DEAD_ROUTE = "127.0.0.1:1"
"""The route address every node advertises: nothing listens there, so a route learnt by gossip
is refused and only the configured routes, through the link proxies, exist."""


@dataclass(frozen=True)
class Nats(Launched):
    """A NATS JetStream cluster of Debian's nats-server."""

    replicas: int = 3
    """Copies of each topic's stream."""

    name: ClassVar[str] = "nats"
    faults: ClassVar[frozenset[str]] = PROCESS_FAULTS | {"bitrot"}
    why_not: ClassVar[dict[str, str]] = {
        "clock": "nats-server reads the time through Go's runtime, from the vDSO, which "
        "libfaketime cannot reach",
    }
    link_names: ClassVar[tuple[str, ...]] = ("route",)
    listener_names: ClassVar[tuple[str, ...]] = ("monitor",)
    host_needs: ClassVar[tuple[str, ...]] = ("nats-server",)

    @property
    def client(self) -> NatsJetStream:
        """A JetStream publisher and a durable pull consumer per topic."""
        return NatsJetStream(self.replicas)

    def describe(self) -> str:
        """nats and its replication."""
        return f"nats (JetStream, R{self.replicas})"

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """nats-server installed and no more copies than nodes."""
        super().preflight(backend, faults, nodes)
        if not 1 <= self.replicas <= min(nodes, 5):
            raise Unsupported(
                f"--replicas {self.replicas}: JetStream keeps 1 to 5 copies, at most one per "
                f"node ({nodes} nodes)"
            )
        if backend in ("local", "docker"):
            require("nats-server")

    def local_command(
        self,
        member: Member,
        members: dict[int, Member],
        data_dir: Path,
        routes: dict[int, dict[str, Address]],
    ) -> Command:
        """``nats-server -c nats.conf``, the configuration written into the data directory."""
        conf = data_dir / "nats.conf"
        conf.write_text(self.config(member, data_dir, [via["route"] for via in routes.values()]))
        server = require("nats-server")
        return Command([server, "-c", str(conf)])

    def config(self, member: Member, data_dir: Path, routes: list[Address]) -> str:
        """A node's nats-server configuration."""
        monitor = member.links["monitor"]
        route = member.links["route"]
        urls = ", ".join(f'"nats-route://{r.host}:{r.port}"' for r in routes)
        return (
            f"server_name: n{member.id}\n"
            f"listen: {member.client.host}:{member.client.port}\n"
            f"http: {monitor.host}:{monitor.port}\n"
            'ping_interval: "1s"\nping_max: 3\n'
            f'jetstream {{ store_dir: "{data_dir / "jetstream"}", max_file_store: 1G, '
            "max_memory_store: 64M }\n"
            "cluster {\n  name: harness\n"
            f"  listen: {route.host}:{route.port}\n"
            f'  advertise: "{DEAD_ROUTE}"\n  no_advertise: true\n'
            f"  routes: [{urls}]\n}}\n"
        )

    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """The base image with this host's nats-server copied in (it links only the C
        library)."""
        from harness.images import binary_image

        return binary_image(client, base, Path(require("nats-server")), IMAGE_BINARY, log).tag

    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """The shared configuration (``container_mounts``) and this node's name, ports and
        routes on the command line. Partitions are iptables rules on the nodes' addresses, so
        routes learnt by gossip are cut like the configured ones."""
        return Command(self._args(member, members, CONTAINER_CONFIG, "/data/jetstream"))

    def host_command(self, member: Member, members: dict[int, Member], data_dir: str) -> Command:
        """As in a container, with the host's nats-server and the shared configuration written
        into the node's directory (``host_files``)."""
        args = self._args(member, members, f"{data_dir}/{HOST_CONFIG}", f"{data_dir}/jetstream")
        return Command(["nats-server", *args])

    def host_files(self, member: Member, members: dict[int, Member]) -> dict[str, bytes]:
        """The configuration every node shares."""
        return {HOST_CONFIG: SHARED_CONFIG.encode()}

    def _args(
        self, member: Member, members: dict[int, Member], config: str, store: str
    ) -> list[str]:
        routes = ",".join(
            f"nats-route://{m.links['route'].host}:{m.links['route'].port}"
            for n, m in sorted(members.items())
            if n != member.id
        )
        ports = self.container_ports(member.id)
        return [
            "-c",
            config,
            "--server_name",
            f"n{member.id}",
            "-p",
            str(ports["client"]),
            "-m",
            str(ports["monitor"]),
            "-js",
            "-sd",
            store,
            "--cluster_name",
            "harness",
            "--cluster",
            f"nats://0.0.0.0:{ports['route']}",
            "--routes",
            routes,
            "--no_advertise=true",
        ]

    def container_mounts(self, root: Path) -> dict[str, str]:
        """The configuration every node shares: route pings every second, store limits."""
        path = root / "nats-container.conf"
        path.write_text(SHARED_CONFIG)
        return {str(path.resolve()): CONTAINER_CONFIG}

    def container_ports(self, node: int) -> dict[str, int]:
        """nats-server's defaults: clients 4222, routes 6222, monitoring 8222."""
        return {"client": 4222, "route": 6222, "monitor": 8222}

    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """Refused unless it asks for true time: libfaketime cannot reach a Go program's clock."""
        if (offset, rate) == (0.0, 1.0):
            return None
        raise Unsupported(
            "nats-server reads its clock through Go's runtime (the vDSO), which libfaketime "
            "cannot reach"
        )

    def ready(self, member: Member) -> bool:
        """``/healthz`` answers 200: a meta leader known, every copy on the node current."""
        return _healthy(member.links["monitor"])

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """Every node healthy again (streams and consumers current)."""
        members = cluster.members
        deadline = trio.current_time() + timeout
        sick: list[int] = []
        while trio.current_time() < deadline:
            sick = [
                n
                for n in cluster.nodes
                if not await trio.to_thread.run_sync(_healthy, members[n].links["monitor"])
            ]
            if not sick:
                return True
            await trio.sleep(0.5)
        log(f"recovery incomplete after {timeout:g} s: nodes {sick} not healthy (/healthz)")
        return False

    async def audit(self, cluster: Nodes, topics: list[str]) -> JsonObject:
        """Each topic's stream as a node's ``/jsz`` reports it (messages, sequences, leader)."""
        streams: dict[str, Any] = {}
        errors: list[str] = []
        for node in cluster.nodes:
            for name, stream in (await _streams_at(cluster, node, errors)).items():
                streams.setdefault(name, {"via": node, **stream})
        return {"states": {}, "streams": streams, "errors": errors}

    async def leader(self, cluster: Nodes, topic: str) -> int | None:
        """The node leading the topic's stream, as the first node's ``/jsz`` that knows says."""
        for node in cluster.nodes:
            name = ((await _streams_at(cluster, node, [])).get(topic) or {}).get("leader") or ""
            if name.startswith("n") and name[1:].isdigit():
                return int(name[1:])
        return None

    def rot(self, data_dir: Path, rng: random.Random) -> JsonObject:
        """One bit flipped at a random byte of one of the node's stream message blocks
        (``<store>/jetstream/<account>/streams/<stream>/msgs/<n>.blk``, the system account's
        own streams left alone): the single-bit errors in ``.blk`` files of Jepsen's NATS
        2.12.1 analysis (nats-server issue #7549)."""
        blocks = sorted(
            path
            for path in (data_dir / "jetstream").glob("*/*/streams/*/msgs/*.blk")
            if "$SYS" not in path.parts and path.stat().st_size > 0
        )
        if not blocks:
            return {"damage": "none", "why": "no message block with data on this node"}
        path = rng.choice(blocks)
        byte, bit = rng.randrange(path.stat().st_size), rng.randrange(8)
        flip(path, byte, bit)
        return {
            "damage": "flipped a bit in a message block",
            "stream": path.parent.parent.name,
            "file": str(path),
            "at": byte,
            "bit": bit,
        }

    def node_files(self) -> tuple[str, ...]:
        """The server's log and its configuration."""
        return ("node.log", "nats.conf")


def _healthy(monitor: Address) -> bool:
    try:
        with urllib.request.urlopen(f"http://{monitor.host}:{monitor.port}/healthz", timeout=2):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _jsz(monitor: Address) -> JsonObject:
    url = f"http://{monitor.host}:{monitor.port}/jsz?accounts=true&streams=true"
    with urllib.request.urlopen(url, timeout=3) as reply:
        document = json.loads(reply.read())
    return document if isinstance(document, dict) else {}


async def _streams_at(cluster: Nodes, node: int, errors: list[str]) -> dict[str, JsonObject]:
    """Node ``node``'s view of every stream (messages, first and last sequence, leader); none
    if it is not running or does not answer (said in ``errors``)."""
    if not await cluster.alive(node):
        return {}
    try:
        document = await trio.to_thread.run_sync(_jsz, cluster.members[node].links["monitor"])
    except (urllib.error.URLError, OSError, ValueError) as exc:
        errors.append(f"/jsz via node {node}: {exc}")
        return {}
    streams: dict[str, JsonObject] = {}
    for account in document.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            state = stream.get("state") or {}
            streams[stream.get("name", "")] = {
                "messages": state.get("messages"),
                "first_seq": state.get("first_seq"),
                "last_seq": state.get("last_seq"),
                "leader": (stream.get("cluster") or {}).get("leader"),
            }
    return streams
