"""The one interface through which the harness and the nemeses act on a cluster.

A backend runs the N nodes of a system (``harness.systems``) somewhere — local processes,
containers — and can break them: kill, pause, partition, skew clocks. What a node is, how it is
started and when it is ready is the system's business; where it runs and how it is broken is the
backend's. Everything is async (trio) and idempotent where it can be (healing a healthy cluster is
a no-op). A backend is an async context manager: leaving the ``async with`` stops every node and
frees every resource it made, on every exit path.
"""

import random
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

import trio

from harness.cluster.power import losefs_log
from harness.history.host_clocks import HostClocks
from harness.remote.base import Ran
from harness.systems.base import Launched, Member, System, Unsupported
from nemesis.interfaces import LinkShape
from walrus.durable import atomic_write

Grudge = dict[int, set[int]]
"""A partition: for each node, the nodes it cannot hear."""


READY_TIMEOUT = 90.0


class Cluster(ABC):
    """A running cluster of one system's nodes."""

    nodes: list[int]
    members: dict[int, Member]
    root: Path
    system: System

    async def wait_ready(self, nodes: list[int], timeout: float = READY_TIMEOUT) -> None:
        """Wait until the system says each node is ready; RuntimeError with the log's tail if
        one exits."""
        waiting = set(nodes)
        with trio.move_on_after(timeout):
            while waiting:
                for node in sorted(waiting):
                    if not await self.alive(node):
                        raise RuntimeError(f"node {node} exited: {await self.log_tail(node)}")
                    if await trio.to_thread.run_sync(self.system.ready, self.members[node]):
                        waiting.discard(node)
                if waiting:
                    await trio.sleep(0.1)
        if waiting:
            raise RuntimeError(f"nodes {sorted(waiting)} not ready within {timeout:g} s")

    @abstractmethod
    async def spawn(self, node: int) -> None:
        """Start one node's process or container for the first time."""

    async def run(self, node: int, argv: list[str], timeout: float = 30.0) -> Ran:
        """Run ``argv`` where the node runs; refused where the backend cannot."""
        raise Unsupported(f"{type(self).__name__} cannot run commands where its nodes run")

    @abstractmethod
    async def log_tail(self, node: int) -> str:
        """The last lines of the node's output."""

    async def __aenter__(self) -> "Cluster":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @abstractmethod
    async def start(self) -> None:
        """Start every node; return once each can take writes."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every node and release everything (idempotent)."""

    def client_address(self, node: int) -> tuple[str, int]:
        """Where clients reach ``node``."""
        addr = self.members[node].client
        return addr.host, addr.port

    async def leader(self, topic: str) -> int | None:
        """The node leading ``topic`` now, as the system says; None if no node answers."""
        return await self.system.leader(self, topic)

    @abstractmethod
    async def kill(self, node: int) -> None:
        """SIGKILL the node's process."""

    @abstractmethod
    async def restart(self, node: int) -> None:
        """Start a killed node again (no-op if it runs); does not wait for it to be ready."""

    async def slow_links(self, fault: str, nodes: list[int], shape: LinkShape) -> None:
        """As ``fault``, delay, throttle and drop packets of every link touching ``nodes`` as
        ``shape`` says; no nodes: stop that fault's shaping."""
        raise Unsupported(f"the {type(self).__name__} backend cannot slow links")

    async def lose_unsynced(self, node: int) -> dict[str, object]:
        """Kill the node and lose what its disk had not made durable; what was lost."""
        raise Unsupported(f"the {type(self).__name__} backend cannot lose unsynced writes")

    async def rot(self, node: int, rng: random.Random) -> dict[str, object]:
        """Flip a bit in what the (killed) node stored, as its system lays its files out."""
        data = self.data_dir(node)
        return await trio.to_thread.run_sync(lambda: self.system.rot(data, rng))

    @abstractmethod
    async def pause(self, node: int) -> None:
        """SIGSTOP the node."""

    @abstractmethod
    async def resume(self, node: int) -> None:
        """SIGCONT the node (no-op if it runs)."""

    @abstractmethod
    async def partition(self, grudge: Grudge) -> None:
        """Make each node deaf to the nodes its grudge names (replacing any earlier partition)."""

    @abstractmethod
    async def heal(self) -> None:
        """Remove every partition."""

    async def set_clock(self, node: int, offset: float, rate: float) -> None:
        """Skew a node's clock: ``offset`` seconds, running at ``rate`` (the system's way)."""
        control = self.system.clock_control(offset, rate)
        if control is not None:
            name, data = control
            atomic_write(self.data_dir(node) / name, data, sync=False)

    async def reset_clocks(self) -> None:
        """Every clock back to true time."""
        for node in self.nodes:
            await self.set_clock(node, 0.0, 1.0)

    @abstractmethod
    async def alive(self, node: int) -> bool:
        """True if the node's process runs (paused counts as running)."""

    async def collect_logs(self, dest: Path) -> None:
        """Copy each node's files worth keeping (the system names them) into ``dest/<node>/``,
        and the log of its losefs mount, if it had one, as ``losefs.log``."""
        for node in self.nodes:
            out = dest / str(node)
            out.mkdir(parents=True, exist_ok=True)
            data = self.data_dir(node)
            for name in self.system.node_files():
                src = data / name
                if src.exists():
                    shutil.copy(src, out / name)
            if losefs_log(data).exists():
                shutil.copy(losefs_log(data), out / "losefs.log")

    def link_traffic(self) -> list[dict[str, object]] | None:
        """Bytes each node-to-node link carried and dropped, per second (``LinkProxy.traffic``);
        None when no proxy of the harness sees the links (containers, UDP links)."""
        return None

    async def tcp_counters(self) -> dict[int, dict[str, int]] | None:
        """Each running node's TCP counters (``TCP_COUNTERS``) since it last started; None where
        the nodes share the host's network stack."""
        return None

    def host_clocks(self, t0_ns: int) -> HostClocks | None:
        """Each node's host's clock measured against this one's (``t0_ns``: when the history
        began); None when every node reads this machine's clock."""
        return None

    def data_dir(self, node: int) -> Path:
        """The node's data directory, as the harness can reach it (for disk faults)."""
        return self.root / f"node-{node}"


class LaunchedCluster(Cluster):
    """A cluster whose nodes the harness starts: a ``Launched`` system's, on a backend."""

    system: Launched

    async def boot(self) -> None:
        """Start the nodes in the system's stages, each ready before the next; then let the
        system settle the cluster."""
        for stage in self.system.boot(self.nodes).stages:
            for node in stage:
                await self.spawn(node)
            await self.wait_ready(stage)
        await self.system.settle(self, READY_TIMEOUT)
