"""``redis``: Redis Streams on Debian's redis-server 7.0, a primary and replicas under Sentinels.

Each node is a machine as Jepsen's 2013 Redis test had them: a ``redis-server`` and a Sentinel
(``redis-server --sentinel``) started together in one process group, so that kill, pause and a
partition take both. Node 1's server starts as the primary and the others as its replicas; the
three Sentinels monitor it with a quorum of two (``down-after-milliseconds`` 2000,
``failover-timeout`` 10000), fail over to a replica when a majority of them cannot reach it, and
turn the old primary into a replica when it comes back. Replication is asynchronous: what the
primary acknowledged and had not yet sent to the replica that is promoted is gone after the
failover, which is what ``WAIT`` (``RedisStreams.wait``) narrows.

Sentinels and replicas tell each other where they are (a replica's announced address in the
primary's ``INFO``, a Sentinel's in its hello messages), so a node cannot be given a route per
peer: its links are *shared* (``Launched.shared_links``). Every node reaches node N's server and
Sentinel at one link proxy each, which it announces as its own address, and sends from a loopback
address of its own (``bind-source-addr``; a Sentinel's outgoing links also leave from it), by
which the proxy knows the sender and cuts what a partition cuts. The harness's clients come from
127.0.0.1 and are never cut: a client beside a primary cut off from the Sentinels' majority still
reaches it, as the issue's partition asks.

Data: the append-only file, fsynced by ``appendfsync`` (``everysec`` by default, as Redis ships;
``always``; ``no``), no snapshots; configuration files are written at a node's first start only,
since Sentinels rewrite them (``CONFIG REWRITE``, ``sentinel.conf``) with what a failover decided.

Faults: partitions (the shared link proxies), kill, pause, power loss of one node, a majority or
all (the data directory on losefs), the local link faults, and clock skew through a shim of our
own (``harness.systems.wallclock``): libfaketime deadlocks Debian's redis-server as it starts
(tried here: with ``libfaketime.so.1`` and ``libfaketimeMT.so.1``, with and without
``FAKETIME_DONT_FAKE_MONOTONIC``, the server hangs before it logs a line — jemalloc, which it is
linked with, reads the clock while libfaketime is still initialising: "unexpected recursive calls
to clock_gettime()"). The skew moves the wall clock, which Redis 7.0 stamps stream entry ids with
and Sentinel times its checks by (a jump sends a Sentinel into TILT mode for 30 s); its event loop
and replication timeouts run on the monotonic clock, which stays true.

On the Docker backend each node is a container of our Debian base with Debian's redis-server
added (made with mmdebstrap), its server on 6379 and Sentinel on 26379 on every interface,
announcing the container's address; partitions and the packet faults are the backend's iptables
rules on the nodes' addresses, which need no shared proxies.
"""

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from harness.clients.redis import MASTER, RedisStreams
from harness.systems import faketime, wallclock
from harness.systems.base import (
    PROCESS_FAULTS,
    Command,
    Launched,
    Log,
    Member,
    Nodes,
    Unsupported,
    source_host,
)
from harness.systems.faketime import CONTROL_FILE
from harness.tools import require
from walrus.config import Address
from walrus.durable import atomic_write
from walrus.protocol import JsonObject

if TYPE_CHECKING:
    from docker import DockerClient

    from harness.remote.base import Remote

APPENDFSYNC = ("always", "everysec", "no")
"""Redis's ``appendfsync`` policies."""

DOWN_AFTER_MS = 2000
"""How long a Sentinel waits for an unreachable primary before it calls it down."""
FAILOVER_TIMEOUT_MS = 10000
CONTAINER_PORTS = {"redis": 6379, "sentinel": 26379}
"""A node container's listeners: Redis's defaults."""
CONTAINER_SHIM = "/usr/local/lib/libwallclock.so"
"""Where a node container finds the clock shim."""
"""Sentinel's ``failover-timeout``: how long a failover may take before another is tried."""


def _redis(address: Address, timeout: float = 2.0) -> Any:
    """A blocking redis-py client of ``address`` with retries off."""
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Redis(
        host=address.host,
        port=address.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def ask(address: Address, *command: str | int, timeout: float = 2.0) -> Any:
    """One command's reply from the server or Sentinel at ``address`` (blocking)."""
    with _redis(address, timeout) as conn:
        return conn.execute_command(*command)


def node_view(member: Member) -> JsonObject:
    """What node ``member`` says of itself: its server's role, run id, replication offset and
    replicas, and which primary its Sentinel names (run id and address)."""
    server = member.links["redis"]
    info = ask(server, "INFO", "replication")
    run_id = ask(server, "INFO", "server")["run_id"]
    master = ask(member.client, "SENTINEL", "MASTER", MASTER)
    fields = master
    if isinstance(master, list):
        fields = dict(zip(master[::2], master[1::2], strict=True))
    return {
        "role": info.get("role"),
        "run_id": run_id,
        "offset": info.get("master_repl_offset"),
        "replicas": info.get("connected_slaves", 0),
        "link": info.get("master_link_status"),
        "sentinel_primary": f"{fields.get('ip')}:{fields.get('port')}",
        "sentinel_primary_run_id": fields.get("runid"),
        "sentinel_flags": fields.get("flags"),
        "sentinels": int(fields.get("num-other-sentinels", 0)) + 1,
        "sentinel_replicas": int(fields.get("num-slaves", 0)),
    }


@dataclass(frozen=True)
class Redis(Launched):
    """Redis 7.0 with replication and Sentinel, Streams read through a consumer group."""

    wait: int = 0
    """Replicas each ``XADD`` waits for (``WAIT N``) before it counts as acknowledged."""
    appendfsync: str = "everysec"
    """The append-only file's fsync policy."""
    clock: bool = False
    """Preload the clock shim (the clock nemesis needs it)."""

    name: ClassVar[str] = "redis"
    faults: ClassVar[frozenset[str]] = PROCESS_FAULTS | {"clock"}
    why_not: ClassVar[dict[str, str]] = {}
    link_names: ClassVar[tuple[str, ...]] = ("redis", "sentinel")
    shared_links: ClassVar[bool] = True

    @property
    def client(self) -> RedisStreams:
        """XADD (and WAIT), XAUTOCLAIM or XREADGROUP, XACK; the primary from a Sentinel."""
        return RedisStreams(self.wait)

    def describe(self) -> str:
        """redis, its WAIT and fsync policy."""
        wait = f"WAIT {self.wait}" if self.wait else "no WAIT"
        return f"redis (streams, {wait}, appendfsync {self.appendfsync})"

    def for_faults(self, faults: list[str]) -> "Redis":
        """This system with the clock shim preloaded if the clock nemesis will run."""
        return replace(self, clock="clock" in faults)

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """redis-server installed, the local backend, three nodes or more, options known."""
        super().preflight(backend, faults, nodes)
        if self.appendfsync not in APPENDFSYNC:
            raise Unsupported(f"--appendfsync must be one of {', '.join(APPENDFSYNC)}")
        if nodes < 3:
            raise Unsupported("redis needs 3 nodes or more: its Sentinels fail over by majority")
        if not 0 <= self.wait < nodes:
            raise Unsupported(f"--redis-wait must be between 0 and {nodes - 1} (the replicas)")
        if backend == "local":
            require("redis-server")
        if "clock" in faults:
            require("cc")

    def build(self, log: Log) -> None:
        """Build the clock shim (if the clock nemesis will run) before any node starts."""
        if self.clock:
            wallclock.library()

    def local_ports(self, base: int, node: int) -> dict[str, int]:
        """Clients reach a node's Sentinel (P+i); its server listens on P+100+i."""
        return {"client": base + node, "redis": base + 100 + node, "sentinel": base + node}

    def configs(
        self,
        listen: str,
        data_dir: Path,
        ports: dict[str, int],
        announce: dict[str, Address],
        primary: Address | None,
        nodes: int,
    ) -> dict[str, str]:
        """A node's ``redis.conf`` and ``sentinel.conf``: ``listen`` (its bind lines), its
        ports, the addresses it announces, and the primary it starts under (None: it is it)."""
        watched = primary or announce["redis"]
        return {
            "redis.conf": listen + f"port {ports['redis']}\n"
            f"dir {data_dir}\nprotected-mode no\n"
            f"replica-announce-ip {announce['redis'].host}\n"
            f"replica-announce-port {announce['redis'].port}\n"
            f'appendonly yes\nappendfsync {self.appendfsync}\nsave ""\n'
            "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n"
            + ("" if primary is None else f"replicaof {primary.host} {primary.port}\n"),
            "sentinel.conf": listen + f"port {ports['sentinel']}\n"
            f"dir {data_dir}\nprotected-mode no\n"
            f"sentinel announce-ip {announce['sentinel'].host}\n"
            f"sentinel announce-port {announce['sentinel'].port}\n"
            f"sentinel monitor {MASTER} {watched.host} {watched.port} {nodes // 2 + 1}\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER} 1\n",
        }

    def local_command(
        self,
        member: Member,
        members: dict[int, Member],
        data_dir: Path,
        routes: dict[int, dict[str, Address]],
    ) -> Command:
        """The node's Sentinel in the background, its server in the foreground; each reads a
        configuration written at its first start. Both send from the node's own loopback
        address and announce its proxies."""
        first = min(members)
        own = source_host(member.id)
        files = self.configs(
            f"bind {own} 127.0.0.1\nbind-source-addr {own}\n",
            data_dir,
            {"redis": member.links["redis"].port, "sentinel": member.client.port},
            routes[member.id],
            None if member.id == first else routes[first]["redis"],
            len(members),
        )
        for name, text in files.items():
            if not (data_dir / name).exists():  # synced, as an operator's would be: a power
                atomic_write(data_dir / name, text.encode())  # loss takes only what Redis wrote
        server = require("redis-server")
        script = (
            f"{server} {data_dir / 'sentinel.conf'} --sentinel &\n"
            f"exec {server} {data_dir / 'redis.conf'}\n"
        )
        return Command(["sh", "-c", script], wallclock.preload(data_dir) if self.clock else {})

    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """Our Debian base with Debian's redis-server added."""
        from harness.images import packaged_image

        return packaged_image(client, base, "redis-server", log)

    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """As ``local_command``, on every interface of the container, announcing its address
        (iptables on the nodes' addresses cuts what a partition cuts)."""
        return self._machine_command(member, members, "/data", CONTAINER_SHIM)

    def _machine_command(
        self, member: Member, members: dict[int, Member], data: str, shim: str
    ) -> Command:
        """The node on a machine of its own (a container, a host): listening on every
        interface at Redis's ports, announcing its address, its configuration written into
        ``data`` at its first start, the clock shim at ``shim`` preloaded if asked for."""
        first = min(members)
        files = self.configs(
            "bind 0.0.0.0\n",
            Path(data),
            CONTAINER_PORTS,
            member.links,
            None if member.id == first else members[first].links["redis"],
            len(members),
        )
        script = "".join(
            f"[ -s {data}/{name} ] || {{ cat > {data}/{name} <<'END'\n{text}END\n"
            f"sync {data}/{name}; }}\n"
            for name, text in files.items()
        )
        script += (
            f"redis-server {data}/sentinel.conf --sentinel &\nexec redis-server {data}/redis.conf\n"
        )
        env = {"LD_PRELOAD": shim, "HARNESS_CLOCK_FILE": f"{data}/{CONTROL_FILE}"}
        return Command(["sh", "-c", script], env if self.clock else {})

    host_needs: ClassVar[tuple[str, ...]] = ("redis-server",)

    def host_command(self, member: Member, members: dict[int, Member], data_dir: str) -> Command:
        """As on a container, with the data in the node's directory on the host and the clock
        shim where ``install`` put it."""
        home = data_dir.rsplit("/", 1)[0]
        return self._machine_command(member, members, data_dir, f"{home}/libwallclock.so")

    async def install(self, remote: "Remote", home: str, root: Path, log: Log) -> None:
        """The clock shim (built here; it needs only the C library), if the clock nemesis will
        run; the host's redis-server serves the rest."""
        if self.clock:
            await remote.write(f"{home}/libwallclock.so", wallclock.library().read_bytes())

    def container_mounts(self, root: Path) -> dict[str, str]:
        """The clock shim (built on this host; it needs only the C library), if preloaded."""
        return {str(wallclock.library()): CONTAINER_SHIM} if self.clock else {}

    def container_ports(self, node: int) -> dict[str, int]:
        """Redis's defaults: the server 6379, the Sentinel 26379 (where clients ask)."""
        return {"client": CONTAINER_PORTS["sentinel"], **CONTAINER_PORTS}

    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """What steers both of the node's processes' wall clocks (``harness.systems.wallclock``)."""
        return faketime.control(offset, rate)

    def ready(self, member: Member) -> bool:
        """Its server and its Sentinel answer PING."""
        try:
            return bool(ask(member.links["redis"], "PING") and ask(member.client, "PING"))
        except Exception:
            return False

    async def views(self, cluster: Nodes) -> dict[int, JsonObject | str]:
        """``node_view`` of every running node (what went wrong, for one that did not answer)."""
        out: dict[int, JsonObject | str] = {}
        for n in cluster.nodes:
            if not await cluster.alive(n):
                out[n] = "not running"
                continue
            try:
                out[n] = await trio.to_thread.run_sync(node_view, cluster.members[n])
            except Exception as exc:
                out[n] = f"{type(exc).__name__}: {exc}"
        return out

    def _agreed(self, views: dict[int, JsonObject | str], nodes: int) -> str | None:
        """None if every node is up, every Sentinel names the same primary, that primary
        has every other server as a replica with its link up, and no other server is a
        primary; else what is not so."""
        problems = [f"node {n}: {v}" for n, v in views.items() if isinstance(v, str)]
        if problems:
            return "; ".join(problems)
        seen = [v for v in views.values() if isinstance(v, dict)]
        named = {str(v["sentinel_primary_run_id"]) for v in seen}
        masters = [n for n, v in views.items() if isinstance(v, dict) and v["role"] == "master"]
        if len(named) != 1:
            return f"the Sentinels name different primaries: {sorted(named)}"
        if len(masters) != 1:
            return f"servers that are primaries: {masters}"
        primary = views[masters[0]]
        assert isinstance(primary, dict)
        if primary["run_id"] not in named:
            return f"the Sentinels name a primary other than node {masters[0]}"
        if int(str(primary["replicas"])) < nodes - 1:
            return f"the primary, node {masters[0]}, has {primary['replicas']} replicas"
        down = [
            n
            for n, v in views.items()
            if isinstance(v, dict) and v["role"] != "master" and v["link"] != "up"
        ]
        if down:
            return f"replicas whose link to the primary is down: {down}"
        if any(int(str(v["sentinels"])) < nodes for v in seen):
            return "a Sentinel does not know every other Sentinel yet"
        return None

    async def settle(self, cluster: Nodes, timeout: float) -> None:
        """Every Sentinel knows the others and the primary has every replica in sync."""
        deadline = trio.current_time() + timeout
        problem: str | None = "not asked"
        while trio.current_time() < deadline:
            problem = self._agreed(await self.views(cluster), len(cluster.nodes))
            if problem is None:
                return
            await trio.sleep(0.5)
        raise RuntimeError(f"the Redis cluster did not settle: {problem}")

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """One primary, named by every Sentinel, with every other server its replica again."""
        deadline = trio.current_time() + timeout
        problem: str | None = "not asked"
        while trio.current_time() < deadline:
            problem = self._agreed(await self.views(cluster), len(cluster.nodes))
            if problem is None:
                return True
            await trio.sleep(1.0)
        log(f"recovery incomplete after {timeout:g} s: {problem}")
        return False

    async def audit(self, cluster: Nodes, topics: list[str]) -> JsonObject:
        """Each node's view, and each stream's length and group on each running server."""
        views = await self.views(cluster)
        streams: dict[str, JsonObject] = {}
        errors: list[str] = [f"node {n}: {v}" for n, v in views.items() if isinstance(v, str)]
        for n in cluster.nodes:
            if isinstance(views.get(n), str):
                continue
            server = cluster.members[n].links["redis"]
            for topic in topics:
                try:
                    length = await trio.to_thread.run_sync(ask, server, "XLEN", topic)
                    groups = await trio.to_thread.run_sync(
                        functools.partial(ask, server, "XINFO", "GROUPS", topic)
                    )
                except Exception as exc:
                    errors.append(f"node {n} {topic}: {type(exc).__name__}: {exc}")
                    continue
                streams.setdefault(topic, {})[str(n)] = {"length": length, "groups": groups}
        nodes = {str(k): v for k, v in views.items()}
        return {"states": {}, "nodes": nodes, "streams": streams, "errors": errors}

    async def leader(self, cluster: Nodes, topic: str) -> int | None:
        """The node whose server most Sentinels name as the primary."""
        views = await self.views(cluster)
        votes: dict[str, int] = {}
        for v in views.values():
            if isinstance(v, dict):
                key = str(v["sentinel_primary_run_id"])
                votes[key] = votes.get(key, 0) + 1
        if not votes:
            return None
        best = max(votes, key=lambda k: votes[k])
        return next(
            (n for n, v in views.items() if isinstance(v, dict) and v["run_id"] == best), None
        )
