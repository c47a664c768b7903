"""The local backend: nodes as processes on 127.0.0.1, peer links through trio proxies.

No root and no Docker. Each node is a ``walrus node`` child process with its own data directory
and its own clock control file; its RPC and Raft connections to every peer go through a
``LinkProxy`` run by the harness (``--route``), which is how partitions happen. Clients connect
to the nodes directly. Processes get their own session, so a Ctrl-C reaches the harness only,
which stops them all on the way out.
"""

import shutil
import signal
import subprocess
from pathlib import Path

import trio

from harness.cluster.base import Cluster, Grudge, NodeSpec
from harness.cluster.proxy import LinkProxy
from walrus.clock import write_control
from walrus.cluster import node_command
from walrus.config import local_cluster


def free_base_port(nodes: int) -> int:
    """A base port P whose P+i, P+100+i and P+200+i are free for i in 1..nodes."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        try:
            for off in (0, 100, 200):
                for i in range(1, nodes + 1):
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", base + off + i))
            return base
        except OSError:
            continue
    raise RuntimeError("no free ports for a local cluster")


class LocalCluster(Cluster):
    """N local node processes; their data under ``root``."""

    def __init__(self, root: Path, nodes: int, spec: NodeSpec, nursery: trio.Nursery) -> None:
        self.root = root
        self.nodes = list(range(1, nodes + 1))
        self.spec = spec
        self.peers = local_cluster(nodes, free_base_port(nodes))
        self._nursery = nursery
        self._procs: dict[int, trio.Process] = {}
        self._paused: set[int] = set()
        self._proxies: list[LinkProxy] = []
        self._routes: dict[int, list[str]] = {n: [] for n in self.nodes}
        self._stopped = False

    async def start(self) -> None:
        """Start the proxies, then every node; wait until all take writes."""
        for source in self.nodes:
            for target in self.nodes:
                if source == target:
                    continue
                peer = self.peers[target]
                rpc = LinkProxy(source, target, (peer.rpc.host, peer.rpc.port))
                raft = LinkProxy(source, target, (peer.raft.host, peer.raft.port))
                rpc_port = await self._nursery.start(rpc.serve)
                raft_port = await self._nursery.start(raft.serve)
                self._proxies += [rpc, raft]
                self._routes[source] += [
                    "--route",
                    f"{target}=127.0.0.1:{rpc_port},127.0.0.1:{raft_port}",
                ]
        for node in self.nodes:
            await self._spawn(node)
        await self.wait_ready(self.nodes)

    async def _spawn(self, node: int) -> None:
        d = self.data_dir(node)
        d.mkdir(parents=True, exist_ok=True)
        cmd = node_command(node, self.peers, d, self.spec.args() + self._routes[node])
        with open(d / "node.log", "ab") as log:
            self._procs[node] = await trio.lowlevel.open_process(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def log_tail(self, node: int) -> str:
        """The last lines of the node's log."""
        text = (self.data_dir(node) / "node.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-8:])

    async def alive(self, node: int) -> bool:
        """True while the process runs."""
        proc = self._procs.get(node)
        return proc is not None and proc.returncode is None

    async def kill(self, node: int) -> None:
        """SIGKILL and reap."""
        proc = self._procs.get(node)
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        self._paused.discard(node)

    async def restart(self, node: int) -> None:
        """Start again if not running (without waiting for it to take writes: it may need a
        quorum that a partition still keeps away)."""
        if not await self.alive(node):
            await self._spawn(node)

    async def pause(self, node: int) -> None:
        """SIGSTOP."""
        if await self.alive(node):
            self._procs[node].send_signal(signal.SIGSTOP)
            self._paused.add(node)

    async def resume(self, node: int) -> None:
        """SIGCONT."""
        if await self.alive(node):
            self._procs[node].send_signal(signal.SIGCONT)
        self._paused.discard(node)

    async def partition(self, grudge: Grudge) -> None:
        """Black-hole the links the grudge names."""
        for proxy in self._proxies:
            proxy.set_grudge(grudge)

    async def heal(self) -> None:
        """Forward every link again."""
        await self.partition({})

    async def set_clock(self, node: int, offset: float, rate: float) -> None:
        """Write the node's clock.ctl."""
        write_control(self.data_dir(node) / "clock.ctl", offset, rate)

    async def collect_logs(self, dest: Path) -> None:
        """Copy node.log and events.jsonl of each node into ``dest/<node>/``."""
        for node in self.nodes:
            out = dest / str(node)
            out.mkdir(parents=True, exist_ok=True)
            for name in ("node.log", "events.jsonl"):
                src = self.data_dir(node) / name
                if src.exists():
                    shutil.copy(src, out / name)

    async def stop(self) -> None:
        """SIGTERM every node (SIGKILL after 10 s) and stop the proxies."""
        if self._stopped:
            return
        self._stopped = True
        with trio.CancelScope(shield=True):
            for proc in self._procs.values():
                if proc.returncode is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(10):
                for proc in self._procs.values():
                    await proc.wait()
            for proc in self._procs.values():
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        for proxy in self._proxies:
            proxy.close()
