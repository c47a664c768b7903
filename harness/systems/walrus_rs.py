"""``walrus-rs``: the original Walrus (github.com/nubskr/walrus, ``distributed-walrus``), tested as
a black box.

Built with cargo from a source tree the user gives (``harness.systems.rust_build``) and run the
way its docker-compose.yml runs it: node 1 bootstraps the metadata group, the others ``--join``
node 1's Raft address; its knobs (``WALRUS_MAX_SEGMENT_ENTRIES``, ``WALRUS_MONITOR_CHECK_MS``,
``WALRUS_DISABLE_IO_URING``, ``RUST_LOG``...) are passed through as environment variables.

What the harness relies on, read from its sources (paths relative to the Walrus tree):

- node-to-node traffic — Raft and the forwarded PUT/GET alike — is QUIC over UDP on the Raft port
  (``octopii/src/transport/mod.rs``), so only the Docker backend's iptables rules can cut it;
- octopii takes a joining peer's node id from its Raft port modulo 10
  (``octopii/src/openraft/node.rs``), so node i's Raft port ends in i and a cluster has at most
  9 nodes;
- node 1 sleeps 20 s after bootstrapping before its lease loop runs (``distributed-walrus/src/
  main.rs``), and its client port opens at once: readiness is METRICS for the metadata group and
  then a probe PUT through every node to a topic led by every node (``settle``);
- its clock: Raft and every timeout run on the monotonic clock, its leases have no time at all;
  the wall clock names its WAL files. The clock nemesis reaches it through libfaketime
  (``harness.systems.faketime``), which moves its wall clock only;
- no disk faults: its data files are preallocated 1 GiB files shared by every segment of every
  topic, fsynced before a PUT is answered, so "the unsynced tail of a segment" that our disk fault
  damages does not exist there.

The error replies it sends, and which of them prove the operation did not happen, are the
``ERRORS`` table below.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from harness.clients.walrus import ErrorTable, Plain, Rule
from harness.systems import faketime, rust_build
from harness.systems.base import (
    Boot,
    Command,
    Launched,
    Log,
    Member,
    Nodes,
    Unsupported,
    all_ready,
    metrics_of,
)
from harness.tools import TOOLS, require
from walrus.client import AsyncClient, WalrusError
from walrus.config import Address

if TYPE_CHECKING:
    from docker import DockerClient

    from harness.remote.base import Remote

ERRORS = ErrorTable(
    "walrus-rs",
    (
        Rule(
            "*",
            "ERR unknown topic",
            "distributed-walrus/src/controller/mod.rs:166-168 (PUT) and 205-207 (GET): the "
            "topic is looked up in local metadata before anything else",
        ),
        Rule(
            "*",
            "ERR PUT requires",
            "distributed-walrus/src/client.rs:80-85: a parse error, nothing runs",
        ),
        Rule("*", "ERR GET requires", "distributed-walrus/src/client.rs:92-94: a parse error"),
        Rule(
            "*",
            "ERR unknown addr for node",
            "controller/mod.rs:327-329 (PUT) and 499-501 (GET): no address, nothing sent",
        ),
        Rule(
            "*",
            "ERR could not resolve addr",
            "controller/mod.rs:339-345 and 508-514: name resolution failed, nothing sent",
        ),
        Rule(
            "*",
            "ERR Transport error: Connect error",
            "octopii/src/transport/mod.rs:66-72 via octopii/src/rpc/handler.rs:79-86: the QUIC "
            "connection was never made, the request never serialized onto it",
        ),
        Rule(
            "*",
            "ERR Transport error: Connection failed",
            "octopii/src/transport/mod.rs:73-77 via rpc/handler.rs:79-86: handshake failed, "
            "nothing sent",
        ),
        Rule(
            "put",
            "ERR NotLeaderForPartition",
            "distributed-walrus/src/bucket.rs:99-118: the lease check refuses before the "
            "per-key lock and the write (the second of append_with_retry's two attempts, "
            "controller/mod.rs:540-566, can follow a first that failed with an I/O error after "
            "writing; no fault here makes writes fail)",
        ),
        Rule(
            "put",
            "ERR forward append failed: NotLeaderForPartition",
            "controller/mod.rs:357-368 relays the leader's refusal from bucket.rs:111-118",
        ),
    ),
    indeterminate=(
        "ERR RPC error: Request timeout",  # octopii/src/rpc/handler.rs:123-132: delivered, the
        # leader may have appended and then spent > 15 s in its inline rollover (internal.rs:8-22)
        "ERR RPC error: Request send timeout",  # handler.rs:105-109: may have been received
        "ERR RPC error: Transport send failed",  # handler.rs:95-103
        "ERR RPC error: Response channel closed",  # handler.rs:119-121
    ),
)
"""Which walrus-rs error replies are definite failures. A GET error after the request reached the
segment's leader may have consumed an entry there (bucket.rs:53-58 reads with a persisted
checkpoint), so apart from the rules above every error is ``info``."""

PROBE_PREFIX = "_probe"
IMAGE_BINARY = "/usr/local/bin/distributed-walrus"


_BUILT: dict[str | None, Path] = {}


def _built(src: str | None, log: Log = print) -> Path:
    """The binary for ``src``, built once per process."""
    if src not in _BUILT:
        _BUILT[src] = rust_build.binary(rust_build.source_tree(src), log)
    return _BUILT[src]


@dataclass(frozen=True)
class WalrusRs(Launched):
    """The original Walrus, built from ``src`` (else $WALRUS_RS_SRC)."""

    src: str | None = None
    max_segment_entries: int | None = None
    env: tuple[tuple[str, str], ...] = ()
    """Further environment for every node (its WALRUS_* knobs, RUST_LOG)."""
    faketime: bool = False
    """Preload libfaketime (the clock nemesis needs it)."""

    name: ClassVar[str] = "walrus-rs"
    link_names: ClassVar[tuple[str, ...]] = ("raft",)
    link_transport: ClassVar[str] = "udp"
    faults: ClassVar[frozenset[str]] = frozenset({"partition", "kill", "pause", "clock"})
    max_nodes: ClassVar[int] = 9

    @property
    def client(self) -> Plain:
        """Plain PUT/GET with the table above."""
        return Plain(ERRORS)

    def describe(self) -> str:
        """walrus-rs and its segment size."""
        if self.max_segment_entries:
            return f"{self.name} ({self.max_segment_entries} entries per segment)"
        return self.name

    def for_faults(self, faults: list[str]) -> "WalrusRs":
        """This system with libfaketime preloaded if the clock nemesis will run."""
        return replace(self, faketime="clock" in faults)

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """The sources are a Walrus tree, the cluster has at most 9 nodes, the tools exist."""
        super().preflight(backend, faults, nodes)
        if nodes > self.max_nodes:
            raise Unsupported(
                f"walrus-rs runs at most {self.max_nodes} nodes (octopii takes a peer's id from "
                "its Raft port modulo 10)"
            )
        root = rust_build.source_tree(self.src)
        if not (rust_build.cache_root() / "walrus-rs" / rust_build.tree_hash(root)).exists():
            require("cargo")
        if "clock" in faults and backend == "local":
            require("libfaketime")

    def build(self, log: Log) -> None:
        """Build (or find) the binary."""
        log(f"walrus-rs binary: {_built(self.src, log)}")

    def boot(self, nodes: list[int]) -> Boot:
        """Node 1 bootstraps the metadata group; the others join it."""
        return Boot([nodes[:1], nodes[1:]] if len(nodes) > 1 else [nodes])

    def _env(self, data_dir: Path, faketime_lib: str) -> dict[str, str]:
        env = {"WALRUS_QUIET": "1", "RUST_LOG": "warn", "NO_COLOR": "1"}
        if self.max_segment_entries is not None:
            env["WALRUS_MAX_SEGMENT_ENTRIES"] = str(self.max_segment_entries)
        env.update(dict(self.env))
        if self.faketime:
            env.update(faketime.preload(data_dir, faketime_lib))
        return env

    def _args(self, member: Member, members: dict[int, Member], data_dir: Path) -> list[str]:
        raft = member.links["raft"]
        args = ["--node-id", str(member.id), "--data-dir", str(data_dir)]
        args += ["--raft-port", str(raft.port), "--client-port", str(member.client.port)]
        first = members[min(members)]
        if member.id != first.id:
            args += ["--join", str(first.links["raft"])]
        return args

    def local_command(
        self,
        member: Member,
        members: dict[int, Member],
        data_dir: Path,
        routes: dict[int, dict[str, Address]],
    ) -> Command:
        """The binary on 127.0.0.1 (no routes: its UDP links cannot be proxied)."""
        args = self._args(member, members, data_dir)
        args += ["--raft-host", "127.0.0.1", "--client-host", "127.0.0.1"]
        lib = TOOLS["libfaketime"].find() or ""
        return Command([str(_built(self.src)), *args], self._env(data_dir, lib))

    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """The base image with the binary (built on this host) copied in."""
        from harness.images import binary_image

        return binary_image(client, base, _built(self.src), IMAGE_BINARY, log).tag

    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """Bind every interface, advertise the container's address (an IP: no DNS needed)."""
        args = self._args(member, members, Path("/data"))
        args += ["--raft-host", "0.0.0.0", "--raft-advertise-host", member.links["raft"].host]
        args += ["--client-host", "0.0.0.0"]
        lib = TOOLS["libfaketime"].candidates[0]  # Debian's path, in the base image as here
        return Command(args, self._env(Path("/data"), lib))

    @property
    def host_needs(self) -> tuple[str, ...]:  # type: ignore[override]
        """Nothing but the C library the binary was linked with; libfaketime for clock skew."""
        return ("libfaketime",) if self.faketime else ()

    async def install(self, remote: "Remote", home: str, root: Path, log: Log) -> None:
        """The binary built here, copied into the run's directory on the host."""
        binary = await trio.to_thread.run_sync(lambda: _built(self.src, log))
        await remote.write(f"{home}/distributed-walrus", binary.read_bytes(), mode=0o755)

    def host_command(self, member: Member, members: dict[int, Member], data_dir: str) -> Command:
        """As in a container: every interface, the host's address advertised."""
        home = data_dir.rsplit("/", 1)[0]
        args = self._args(member, members, Path(data_dir))
        args += ["--raft-host", "0.0.0.0", "--raft-advertise-host", member.links["raft"].host]
        args += ["--client-host", "0.0.0.0"]
        lib = TOOLS["libfaketime"].candidates[0]  # Debian's path
        return Command([f"{home}/distributed-walrus", *args], self._env(Path(data_dir), lib))

    def container_options(self) -> dict[str, Any]:
        """As its compose file: seccomp unconfined (io_uring)."""
        return {"security_opt": ["seccomp=unconfined"]}

    def container_ports(self, node: int) -> dict[str, int]:
        """Client 9091; Raft 6000 + node id (it must end in the id)."""
        return {"client": 9091, "raft": 6000 + node}

    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """libfaketime's control file (re-read within a second)."""
        if not self.faketime:
            if (offset, rate) == (0.0, 1.0):
                return None  # true time already: nothing to reset
            raise Unsupported("walrus-rs was started without libfaketime: no clock control")
        return faketime.control(offset, rate)

    def ready(self, member: Member) -> bool:
        """METRICS: a Raft leader known and this node in the membership."""
        metrics = metrics_of(member)
        if metrics is None or not isinstance(metrics.get("current_leader"), int):
            return False
        configs = (metrics.get("membership_config") or {}).get("membership", {}).get("configs")
        return any(member.id in c for c in configs or [])

    async def settle(self, cluster: Nodes, timeout: float) -> None:
        """A probe PUT through every node to a topic led by every node must succeed."""
        if not await self._probe(cluster, timeout, "settle"):
            raise RuntimeError(
                f"walrus-rs did not take writes through every node within {timeout:g} s"
            )

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """Every node ready and writable through every node again."""
        deadline = trio.current_time() + timeout
        if not await all_ready(cluster, timeout, log):
            return False
        if await self._probe(cluster, max(1.0, deadline - trio.current_time()), "recovered"):
            return True
        log(f"recovery incomplete after {timeout:g} s: probe writes still fail")
        return False

    async def _probe(self, cluster: Nodes, timeout: float, label: str) -> bool:
        with trio.move_on_after(timeout):
            leaders = await _probe_topics(cluster)
            for via in cluster.nodes:
                host, port = cluster.client_address(via)
                for topic in leaders.values():
                    await _put_until_ok(host, port, topic, f"{label}-{via}")
            return True
        return False


async def _probe_topics(cluster: Nodes) -> dict[int | None, str]:
    """Probe topics registered until each node leads one (the first leader of a topic is the
    hash of its name modulo the nodes)."""
    leaders: dict[int | None, str] = {}
    k = 0
    while len(leaders) < len(cluster.nodes):
        topic = f"{PROBE_PREFIX}{k}"
        host, port = cluster.client_address(cluster.nodes[0])
        try:
            async with AsyncClient(host, port, timeout=10) as c:
                await c.register(topic)
                state = await c.state(topic)
        except (WalrusError, ValueError):
            await trio.sleep(0.5)
            continue
        leaders.setdefault(state.get("leader_node"), topic)
        k += 1
    return leaders


async def _put_until_ok(host: str, port: int, topic: str, value: str) -> None:
    while True:
        try:
            async with AsyncClient(host, port, timeout=10) as c:
                if await c.request(f"PUT {topic} {value}".encode()) == b"OK":
                    return
        except WalrusError:
            pass
        await trio.sleep(0.5)
