"""A cluster that is already running (``--system external``): nothing to start or stop.

Faults run the user's commands (``harness.systems.external``); partitions and clocks are out of
reach. ``stop`` mends what the test broke: nodes it killed are started again, paused ones resumed.
"""

from pathlib import Path

import trio

from harness.cluster.base import Cluster, Grudge
from harness.systems.base import Unsupported
from harness.systems.external import External


class ExternalCluster(Cluster):
    """The nodes at the system's addresses."""

    system: External

    def __init__(self, root: Path, system: External) -> None:
        self.root = root
        self.system = system
        self.members = system.members()
        self.nodes = sorted(self.members)
        self._down: set[int] = set()
        self._paused: set[int] = set()

    async def _run(self, action: str, node: int) -> None:
        argv = self.system.command(action, node)
        try:
            done = await trio.run_process(
                argv, capture_stdout=True, capture_stderr=True, check=False
            )
        except OSError as exc:
            raise RuntimeError(f"--{action}-cmd for node {node} could not run: {exc}") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise RuntimeError(
                f"--{action}-cmd for node {node} failed ({done.returncode}): "
                f"{said[-1] if said else 'no output'}"
            )

    async def start(self) -> None:
        """Wait until every node is ready."""
        await self.wait_ready(self.nodes)

    async def spawn(self, node: int) -> None:
        """Nothing to start: the cluster runs already."""
        raise Unsupported("an external cluster's nodes are started by their owner")

    async def stop(self) -> None:
        """Start what was killed and resume what was paused."""
        with trio.CancelScope(shield=True):
            for node in sorted(self._paused):
                await self.resume(node)
            for node in sorted(self._down):
                await self.restart(node)

    async def log_tail(self, node: int) -> str:
        """Nothing: the logs are the user's."""
        return "(an external node: see its own logs)"

    async def alive(self, node: int) -> bool:
        """Not alive only while the harness has it killed."""
        return node not in self._down

    async def kill(self, node: int) -> None:
        """--kill-cmd."""
        if node not in self._down:
            await self._run("kill", node)
            self._down.add(node)
            self._paused.discard(node)

    async def restart(self, node: int) -> None:
        """--start-cmd, if the harness killed it."""
        if node in self._down:
            await self._run("start", node)
            self._down.discard(node)

    async def pause(self, node: int) -> None:
        """--pause-cmd."""
        if node not in self._down and node not in self._paused:
            await self._run("pause", node)
            self._paused.add(node)

    async def resume(self, node: int) -> None:
        """--resume-cmd, if the harness paused it."""
        if node in self._paused:
            await self._run("resume", node)
            self._paused.discard(node)

    async def partition(self, grudge: Grudge) -> None:
        """Out of reach."""
        if grudge:
            raise Unsupported("an external cluster cannot be partitioned by the harness")

    async def heal(self) -> None:
        """Nothing to heal."""
