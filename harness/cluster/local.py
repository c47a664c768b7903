"""The local backend: nodes as processes on 127.0.0.1, TCP peer links through trio proxies.

No root and no Docker. Each node is a child process (the system says which command) with its own
data directory. Where the system links its nodes over TCP, every link from one node to another
goes through a ``LinkProxy`` run by the harness (the system routes its node through it), which is
how partitions happen; links over UDP (Walrus's QUIC) cannot be cut here, and the system refuses
partitions on this backend. Clients connect to the nodes directly. Processes get their own
session, so a Ctrl-C reaches the harness only, which stops them all on the way out.
"""

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import trio

from harness.cluster.base import Grudge, LaunchedCluster
from harness.cluster.power import mounts
from harness.cluster.proxy import LinkProxy
from harness.remote.base import Ran
from harness.remote.local import LocalRemote
from harness.systems.base import Launched, Member, Unsupported, source_host
from nemesis.interfaces import LinkShape, Slowed, shape_between
from walrus.config import Address


def _ephemeral_start() -> int:
    """The first port the kernel hands out for outgoing connections and port-0 listeners."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(nodes: int, listeners: int = 3) -> int:
    """A base port P whose P+i, P+100+i, P+200+i... (``listeners`` of them) are free for i in
    1..nodes, all below the ephemeral range: the link proxies and every client connection take
    ports from that range, and one of them could otherwise take a node's port between this check
    and the node's bind (a node restarted by the nemesis binds again much later)."""
    import random
    import socket

    top = max(12000, _ephemeral_start()) - 100 * listeners - nodes
    for _ in range(200):
        base = random.randrange(10000, top, 10)
        try:
            for off in range(0, 100 * listeners, 100):
                for i in range(1, nodes + 1):
                    with socket.socket() as s:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        s.bind(("127.0.0.1", base + off + i))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports for a local cluster")


class LocalCluster(LaunchedCluster):
    """N local node processes of ``system``; their data under ``root`` (seen by the nodes
    through a losefs mount each with ``power_loss``)."""

    def __init__(
        self,
        root: Path,
        nodes: int,
        system: Launched,
        nursery: trio.Nursery,
        power_loss: bool = False,
    ) -> None:
        self.root = root
        self.nodes = list(range(1, nodes + 1))
        self.system = system
        base = free_base_port(nodes, 1 + len(system.link_names) + len(system.listener_names))
        self.members = {}
        for n in self.nodes:
            ports = system.local_ports(base, n)
            self.members[n] = Member(
                n,
                Address("127.0.0.1", ports.pop("client")),
                {name: Address("127.0.0.1", port) for name, port in ports.items()},
            )
        self._nursery = nursery
        self._procs: dict[int, trio.Process] = {}
        self._paused: set[int] = set()
        self._proxies: list[LinkProxy] = []
        self._routes: dict[int, dict[int, dict[str, Address]]] = {n: {} for n in self.nodes}
        self._slowed: Slowed = {}
        self._stopped = False
        self._mounts = mounts(root, self.nodes if power_loss else [], system.node_files())

    async def start(self) -> None:
        """Start the link proxies (TCP links only), then the nodes; wait until all are ready."""
        if self.system.link_transport == "tcp" and self.system.shared_links:
            for target in self.nodes:
                await self._shared_proxy(target)
        elif self.system.link_transport == "tcp":
            for source in self.nodes:
                for target in self.nodes:
                    if source != target:
                        await self._proxy(source, target)
        await self.boot()

    async def _proxy(self, source: int, target: int) -> None:
        via: dict[str, Address] = {}
        for name in self.system.link_names:
            addr = self.members[target].links[name]
            proxy = LinkProxy(source, target, (addr.host, addr.port), name)
            via[name] = Address("127.0.0.1", await self._nursery.start(proxy.serve))
            self._proxies.append(proxy)
        self._routes[source][target] = via

    async def _shared_proxy(self, target: int) -> None:
        """One proxy per link of ``target`` that every node (itself included) reaches it at."""
        sources = {source_host(n): n for n in self.nodes}
        via: dict[str, Address] = {}
        for name in self.system.link_names:
            addr = self.members[target].links[name]
            proxy = LinkProxy(None, target, (addr.host, addr.port), name, sources)
            via[name] = Address("127.0.0.1", await self._nursery.start(proxy.serve))
            self._proxies.append(proxy)
        for source in self.nodes:
            self._routes[source][target] = via

    def link_traffic(self) -> list[dict[str, object]] | None:
        """What the link proxies counted; None when the system's links are not TCP (no proxy)."""
        if not self._proxies:
            return None
        return [t for proxy in self._proxies for t in proxy.traffic()]

    async def spawn(self, node: int) -> None:
        """Start the node's process, its output appended to node.log (what is left of its last
        process group killed first)."""
        if node in self._procs:
            await self.kill(node)
        d = self.data_dir(node)
        d.mkdir(parents=True, exist_ok=True)
        seen = d
        if node in self._mounts:
            await self._mounts[node].up()
            seen = self._mounts[node].mount
        cmd = self.system.local_command(
            self.members[node], self.members, seen.resolve(), self._routes[node]
        )
        with open(d / "node.log", "ab") as log:
            self._procs[node] = await trio.lowlevel.open_process(
                cmd.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **cmd.env},
            )

    async def run(self, node: int, argv: list[str], timeout: float = 30.0) -> Ran:
        """Run ``argv`` on this host (where every local node runs); RuntimeError (a
        ``RemoteError``) if it outlives ``timeout``."""
        return await LocalRemote().run(argv, timeout)

    async def log_tail(self, node: int) -> str:
        """The last lines of the node's log."""
        text = (self.data_dir(node) / "node.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-8:])

    async def alive(self, node: int) -> bool:
        """True while the process runs."""
        proc = self._procs.get(node)
        return proc is not None and proc.returncode is None

    def _signal(self, node: int, sig: signal.Signals) -> None:
        """Send ``sig`` to the node's process group: the node and whatever it started (a
        script's server, RabbitMQ's Erlang VM and epmd), all started in the node's session."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._procs[node].pid, sig)

    async def kill(self, node: int) -> None:
        """SIGKILL its process group and reap: the whole group even if the node's own process
        ended first (a script's background helper, Redis's Sentinel, would outlive it)."""
        proc = self._procs.get(node)
        if proc is not None:
            self._signal(node, signal.SIGKILL)
            await proc.wait()
        self._paused.discard(node)

    async def restart(self, node: int) -> None:
        """Start again if not running (without waiting for it to take writes: it may need a
        quorum that a partition still keeps away)."""
        if not await self.alive(node):
            await self.spawn(node)

    async def lose_unsynced(self, node: int) -> dict[str, object]:
        """The power loss of a killed node: what its losefs mount undid (the restart mounts
        again)."""
        if node not in self._mounts:
            raise Unsupported("this cluster was started without losefs mounts (power_loss)")
        await self.kill(node)
        return await self._mounts[node].lose()

    async def pause(self, node: int) -> None:
        """SIGSTOP."""
        if await self.alive(node):
            self._signal(node, signal.SIGSTOP)
            self._paused.add(node)

    async def resume(self, node: int) -> None:
        """SIGCONT."""
        if await self.alive(node):
            self._signal(node, signal.SIGCONT)
        self._paused.discard(node)

    async def partition(self, grudge: Grudge) -> None:
        """Black-hole the links the grudge names."""
        if grudge and self.system.link_transport != "tcp":
            raise Unsupported(
                f"{self.system.name}'s {self.system.link_transport.upper()} links cannot be cut "
                "by the local backend"
            )
        for proxy in self._proxies:
            proxy.set_grudge(grudge)

    async def heal(self) -> None:
        """Forward every link again."""
        await self.partition({})

    async def slow_links(self, fault: str, nodes: list[int], shape: LinkShape) -> None:
        """As ``fault``, slow every link touching ``nodes`` (no nodes: stop slowing); the
        shapes of several faults on one link combine."""
        if self.system.link_transport != "tcp":
            raise Unsupported(
                f"{self.system.name}'s {self.system.link_transport.upper()} links cannot be "
                "slowed by the local backend's TCP link proxies"
            )
        if shape.packets_only:
            raise Unsupported(
                f"a TCP proxy cannot lose, repeat or reorder packets: {fault} is the Docker "
                "backend's"
            )
        if nodes:
            self._slowed[fault] = (set(nodes), shape)
        else:
            self._slowed.pop(fault, None)
        for proxy in self._proxies:
            for source in self.nodes if proxy.source is None else [proxy.source]:
                proxy.set_shape(shape_between(self._slowed, source, proxy.target), source)

    async def stop(self) -> None:
        """SIGTERM every node (SIGKILL after 10 s), then SIGKILL what is left of each node's
        process group (a helper it started, like epmd), and stop the proxies."""
        if self._stopped:
            return
        self._stopped = True
        with trio.CancelScope(shield=True):
            for node, proc in self._procs.items():
                if proc.returncode is None:
                    self._signal(node, signal.SIGCONT)
                    proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                for proc in self._procs.values():
                    await proc.wait()
            for node, proc in self._procs.items():
                self._signal(node, signal.SIGKILL)
                if proc.returncode is None:
                    await proc.wait()
            for mount in self._mounts.values():
                await mount.down()
        for proxy in self._proxies:
            proxy.close()
