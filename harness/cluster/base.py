"""The one interface through which the harness and the nemeses act on a cluster.

A backend runs N Walrus nodes somewhere (local processes, containers) and can break them: kill,
pause, partition, skew clocks. Everything is async (trio) and idempotent where it can be (healing
a healthy cluster is a no-op). A backend is an async context manager: leaving the ``async with``
stops every node and frees every resource it made, on every exit path.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import trio

from walrus.cluster import node_ready
from walrus.config import Peer

Grudge = dict[int, set[int]]
"""A partition: for each node, the nodes it cannot hear."""


@dataclass(frozen=True)
class NodeSpec:
    """What every node of a test is started with (besides its identity and addresses)."""

    compat: bool = False
    max_segment_entries: int | None = None
    fsync: str = "each"
    lease_ms: int = 2000
    drift: float = 0.1
    extra_args: tuple[str, ...] = ()

    def args(self) -> list[str]:
        """The ``walrus node`` options for this spec (nodes stop if the harness dies)."""
        out = [
            "--fsync",
            self.fsync,
            "--lease-ms",
            str(self.lease_ms),
            "--drift",
            str(self.drift),
            "--exit-with-parent",
        ]
        if self.compat:
            out += ["--compat", "walrus"]
        if self.max_segment_entries is not None:
            out += ["--max-segment-entries", str(self.max_segment_entries)]
        return out + list(self.extra_args)


READY_TIMEOUT = 90.0


class Cluster(ABC):
    """A running cluster of Walrus nodes."""

    nodes: list[int]
    peers: dict[int, Peer]
    root: Path

    async def wait_ready(self, nodes: list[int], timeout: float = READY_TIMEOUT) -> None:
        """Wait until the nodes take writes; RuntimeError with the log's tail if one exits."""
        waiting = set(nodes)
        with trio.move_on_after(timeout):
            while waiting:
                for node in list(waiting):
                    if not await self.alive(node):
                        raise RuntimeError(f"node {node} exited: {await self.log_tail(node)}")
                    if await trio.to_thread.run_sync(node_ready, self.peers[node]):
                        waiting.discard(node)
                if waiting:
                    await trio.sleep(0.1)
        if waiting:
            raise RuntimeError(f"nodes {sorted(waiting)} not ready within {timeout:g} s")

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
        """Where clients reach ``node``: its client address in ``peers``."""
        addr = self.peers[node].client
        return addr.host, addr.port

    @abstractmethod
    async def kill(self, node: int) -> None:
        """SIGKILL the node's process."""

    @abstractmethod
    async def restart(self, node: int) -> None:
        """Start a killed node again (no-op if it runs); does not wait for it to be ready."""

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

    @abstractmethod
    async def set_clock(self, node: int, offset: float, rate: float) -> None:
        """Skew a node's clock: ``offset`` seconds, running at ``rate``."""

    async def reset_clocks(self) -> None:
        """Every clock back to true time."""
        for node in self.nodes:
            await self.set_clock(node, 0.0, 1.0)

    @abstractmethod
    async def alive(self, node: int) -> bool:
        """True if the node's process runs (paused counts as running)."""

    @abstractmethod
    async def collect_logs(self, dest: Path) -> None:
        """Copy each node's log and event log into ``dest/<node>/``."""

    def data_dir(self, node: int) -> Path:
        """The node's data directory, as the harness can reach it (for disk faults)."""
        return self.root / f"node-{node}"
