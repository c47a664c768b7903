"""What the harness needs from an implementation under test, apart from where its nodes run.

``docs/design.md`` §8 splits a test's cluster in two. A *system* (this module's ``System``) is one
implementation: how its node is built and started, what its nodes listen on and what their
clients speak, how to tell that a node is ready and that the cluster has recovered after the
faults, how to skew its clock, and which checkers its histories can feed. A *backend*
(``harness.cluster``) is where the nodes run — local processes or Docker containers — and does
kill, pause and partition the same way whatever runs there. So the backends never reach into a
node's own extensions: readiness, recovery, the drain and the audit belong to the system.
"""

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import trio

from harness.clients import base as clients
from harness.remote.base import Ran, Remote
from nemesis import aim
from nemesis.schedule import base_faults
from walrus.client import Client, WalrusError
from walrus.config import Address
from walrus.protocol import JsonObject

if TYPE_CHECKING:
    from docker import DockerClient

Log = Callable[[str], None]
"""Where a system says what it is doing (``print``, or the run's log)."""


PROCESS_FAULTS = frozenset(
    {
        "partition",
        "kill",
        "pause",
        "lose-unsynced",
        "lose-unsynced-all",
        "lose-unsynced-majority",
        "delay",
        "throttle",
        "loss",
        "duplicate",
        "reorder",
    }
)
"""The nemeses any launched system whose node is an ordinary process takes: cut, kill, pause,
power loss of its data directory, and the link faults (packet ones on Docker)."""


class Unsupported(ValueError):
    """A system asked for something it cannot do here; the message says why."""


@dataclass(frozen=True)
class Member:
    """One node of a cluster under test: its id, where clients reach it, and its node-to-node
    listeners by name (``rpc``, ``raft``...)."""

    id: int
    client: Address
    links: dict[str, Address] = field(default_factory=dict)
    """Its listeners besides the client port: the node-to-node links (``Launched.link_names``)
    and any other (``Launched.listener_names``)."""


@dataclass(frozen=True)
class Command:
    """A node's command line and the environment variables it needs besides the inherited."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Boot:
    """How a cluster comes up: groups of nodes started in turn, each group ready before the
    next starts (Walrus's node 1 bootstraps the metadata group, the others then join)."""

    stages: list[list[int]]


class Nodes(Protocol):
    """A running cluster as its system sees it (``harness.cluster.Cluster`` has this shape), so
    that systems depend on no backend."""

    nodes: list[int]
    members: dict[int, Member]

    def client_address(self, node: int) -> tuple[str, int]:
        """Where the node serves clients."""
        ...

    async def alive(self, node: int) -> bool:
        """Whether the node's process runs."""
        ...

    async def wait_ready(self, nodes: list[int], timeout: float) -> None:
        """Wait until each node is ready; RuntimeError if one is not."""
        ...

    async def kill(self, node: int) -> None:
        """Kill the node (a recovery that the system documents as needing a restart)."""
        ...

    async def restart(self, node: int) -> None:
        """Start a killed node again."""
        ...

    async def run(self, node: int, argv: list[str], timeout: float) -> Ran:
        """Run ``argv`` where node ``node`` runs (this host for a local process, inside its
        container on Docker); RuntimeError if it does not end within ``timeout``."""
        ...


class System(ABC):
    """An implementation under test. Subclasses are frozen dataclasses: their fields are the
    system's options, as written to test.json."""

    name: ClassVar[str]
    faults: ClassVar[frozenset[str]]
    """The nemeses that apply to this system."""
    why_not: ClassVar[dict[str, str]] = {}
    """Why a nemesis that does not apply does not, for the line that refuses it."""

    @property
    @abstractmethod
    def client(self) -> clients.Client:
        """Its clients: how topics are made, and how puts and gets go and end."""

    @property
    def black_box(self) -> bool:
        """True if its histories carry no positions, node events or audit."""
        return self.client.black_box

    @property
    def keeps_event_logs(self) -> bool:
        """True if its nodes write the event logs aimed faults watch (``docs/events.md``)."""
        return not self.black_box

    @property
    def lease_s(self) -> float | None:
        """Its lease duration, for the lease checker (None: it has no leases we can check)."""
        return None

    @property
    def drift_bound(self) -> float:
        """The clock drift its design tolerates (the clock nemesis stays within it)."""
        return 0.1

    def describe(self) -> str:
        """A few words for summaries: the system and its notable options."""
        return self.name

    def for_faults(self, faults: list[str]) -> "System":
        """This system as it must run under these nemeses (unchanged here)."""
        return self

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """Raise (Unsupported, ToolMissing...) with one line if this cannot run; make nothing."""
        refused = sorted(base_faults(faults) - self.faults)
        aimed = sorted(f for f in faults if aim.split(f)[1] is not None)
        if aimed and not self.keeps_event_logs:
            raise Unsupported(
                f"{', '.join(aimed)}: aimed faults watch the nodes' event logs, which "
                f"{self.name} does not write"
            )
        if refused:
            named = ", ".join(
                f"{f} ({self.why_not[f]})" if f in self.why_not else f for f in refused
            )
            raise Unsupported(
                f"{self.name} does not support the nemesis {named}; "
                f"it supports {', '.join(sorted(self.faults)) or 'none'}"
            )

    def build(self, log: Log) -> None:
        """Make what the nodes run (binaries, caches) before any cluster starts; no-op here."""
        return None

    @abstractmethod
    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """The file (name in the node's data directory, contents) that sets a node's clock
        ``offset`` seconds off true time, running at ``rate``; None when true time is asked of a
        node without clock control; Unsupported when skew is. The cluster writes it, on whatever
        machine the node runs."""

    @abstractmethod
    def ready(self, member: Member) -> bool:
        """True once the node can take part in the cluster (blocking; called from a thread)."""

    async def settle(self, cluster: Nodes, timeout: float) -> None:
        """After every node is ready: anything the cluster as a whole still needs before a test
        can rely on it; RuntimeError saying what did not happen. No-op here."""
        return None

    @abstractmethod
    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """After the faults are healed: wait until the cluster serves again; False (logged) if
        it does not within ``timeout``."""

    async def audit(self, cluster: Nodes, topics: list[str]) -> JsonObject:
        """What the cluster says of every topic at the end: ``states`` (STATE, which every
        Walrus answers) and, where the system can list what it stores, ``segments`` (for the
        storage checker); ``errors`` for what could not be read."""
        states: dict[str, JsonObject] = {}
        for topic in topics:
            answer = await self.state(cluster, topic)
            if answer is not None:
                states[topic] = answer[1]
        return {"states": states, "errors": []}

    async def state(
        self, cluster: Nodes, topic: str, timeout: float = 10.0, errors: list[str] | None = None
    ) -> tuple[int, JsonObject] | None:
        """STATE of ``topic`` from the first running node that answers it, with that node; None
        if none does (what each node that failed said is added to ``errors``)."""
        for node in cluster.nodes:
            if not await cluster.alive(node):
                continue
            host, port = cluster.client_address(node)
            try:
                return node, await trio.to_thread.run_sync(topic_state, host, port, topic, timeout)
            except (WalrusError, OSError, ValueError) as exc:
                if errors is not None:
                    errors.append(f"STATE {topic} via node {node}: {exc}")
        return None

    async def leader(self, cluster: Nodes, topic: str) -> int | None:
        """The node leading ``topic``'s open segment, as STATE says; None if no node answers."""
        answer = await self.state(cluster, topic, timeout=3.0)
        leader: int | None = answer[1].get("leader_node") if answer else None
        return leader

    def rot(self, data_dir: Path, rng: random.Random) -> JsonObject:
        """Flip a bit in data a stopped node stored under ``data_dir`` (``bitrot``); what was
        done. Refused unless the system knows its files."""
        raise Unsupported(f"{self.name} has no bit rot: the harness does not know its files")

    def node_files(self) -> tuple[str, ...]:
        """Files in a node's data directory worth keeping with the run (its logs)."""
        return ("node.log",)


class Launched(System):
    """A system whose nodes the harness starts itself, on a backend (local or docker)."""

    link_names: ClassVar[tuple[str, ...]]
    """The node-to-node listeners every node has, besides its client port."""
    listener_names: ClassVar[tuple[str, ...]] = ()
    """Listeners besides the client port that are not links between nodes (nats-server's
    monitoring port): the harness reaches them directly, never through a link proxy."""
    link_transport: ClassVar[str] = "tcp"
    """``tcp`` (the local backend's link proxies can cut it) or ``udp`` (they cannot)."""
    shared_links: ClassVar[bool] = False
    """True if its nodes tell each other where they are (so cannot be given a route per peer):
    on the local backend each node is then reached at one proxy per link, shared by all, that
    knows the sender by its source address (``source_host``), and ``routes`` name every node,
    itself included."""

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """Also refuses partitions the backend cannot make."""
        super().preflight(backend, faults, nodes)
        if backend == "local" and "partition" in faults and self.link_transport != "tcp":
            raise Unsupported(
                f"{self.name} links its nodes over {self.link_transport.upper()}, which the local "
                "backend's TCP link proxies cannot cut: use --backend docker for partitions"
            )

    def boot(self, nodes: list[int]) -> Boot:
        """Start every node at once."""
        return Boot([list(nodes)])

    @abstractmethod
    def local_command(
        self,
        member: Member,
        members: dict[int, Member],
        data_dir: Path,
        routes: dict[int, dict[str, Address]],
    ) -> Command:
        """The command line of a node run as a local process. ``routes`` maps each peer to the
        addresses (by link name) this node must use to reach it (the link proxies)."""

    def local_ports(self, base: int, node: int) -> dict[str, int]:
        """Ports of node ``node`` as a local process, given a free base port (a multiple of
        10): client P+i, then P+100+i, P+200+i... for the links, then the other listeners, in
        order."""
        ports = {"client": base + node}
        for k, name in enumerate((*self.link_names, *self.listener_names), 1):
            ports[name] = base + 100 * k + node
        return ports

    @abstractmethod
    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """The tag of a Docker image that runs this system's node (built if missing)."""

    @abstractmethod
    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """The command of a node's container; its data directory is mounted at /data."""

    def container_options(self) -> dict[str, Any]:
        """Extra docker-py ``containers.create`` options a node container needs (keyword
        arguments, of whatever type each takes)."""
        return {}

    def container_mounts(self, root: Path) -> dict[str, str]:
        """Host files to mount read-only into every node container (host path: container
        path), besides its data directory; made under the cluster's ``root`` if needed."""
        return {}

    @abstractmethod
    def container_ports(self, node: int) -> dict[str, int]:
        """The ports node ``node``'s container listens on, by listener (``client`` included)."""

    host_needs: ClassVar[tuple[str, ...]] = ()
    """What a host of the SSH backend must have for this system's node (``harness.remote.needs``
    names)."""

    def host_command(self, member: Member, members: dict[int, Member], data_dir: str) -> Command:
        """The node's command on a host of the SSH backend (which listens on
        ``container_ports``), its data in ``data_dir`` there; refused unless the system says."""
        raise Unsupported(f"{self.name} does not run on the ssh backend yet")

    def host_files(self, member: Member, members: dict[int, Member]) -> dict[str, bytes]:
        """Files to write into the node's data directory on its host before it starts."""
        return {}

    async def install(self, remote: "Remote", home: str, root: Path, log: Log) -> None:
        """Put what the node runs into ``home``, the run's directory on a host of the SSH
        backend (removed with it when the run ends); ``root`` is the run's data directory
        here. Nothing here: the host's own packages (``host_needs``) serve."""
        return None


def source_host(node: int) -> str:
    """The loopback address node ``node`` sends from when its links are shared (127.0.0.1 is
    for everything else: the harness and its clients)."""
    return f"127.0.0.{20 + node}"


def topic_state(host: str, port: int, topic: str, timeout: float = 10.0) -> JsonObject:
    """STATE of a topic at a node (blocking)."""
    with Client(host, port, timeout=timeout) as c:
        return c.state(topic)


def metrics_of(member: Member) -> JsonObject | None:
    """A node's METRICS as a JSON object, or None if it does not answer with one (blocking)."""
    try:
        with Client(member.client.host, member.client.port, timeout=2) as client:
            metrics: object = json.loads(client.request(b"METRICS"))
    except (WalrusError, OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


async def all_ready(cluster: Nodes, timeout: float, log: Log) -> bool:
    """Every node ready within ``timeout``; False (logged) if not."""
    try:
        await cluster.wait_ready(cluster.nodes, timeout)
    except RuntimeError as exc:
        log(f"recovery: {exc}")
        return False
    return True
