"""Faults a schedule can start and stop: each records what it did, and heals completely.

A fault acts on a cluster only through ``harness.cluster.Cluster``. ``start`` returns the
parameters to record in the history (``start-<name>``), ``stop`` the same for ``stop-<name>``.
"""

import random
from abc import ABC, abstractmethod

from harness.cluster.base import Cluster
from nemesis import partition


class Fault(ABC):
    """One kind of fault."""

    name: str

    @abstractmethod
    async def start(self, cluster: Cluster, rng: random.Random) -> object:
        """Inflict the fault; what was done, as JSON."""

    @abstractmethod
    async def stop(self, cluster: Cluster) -> object:
        """Undo it completely; what was done, as JSON."""


class Partition(Fault):
    """A network partition of a random shape (one of ``shapes``)."""

    name = "partition"

    def __init__(self, shapes: tuple[str, ...] = ("one", "random-halves")) -> None:
        self.shapes = shapes

    async def start(self, cluster: Cluster, rng: random.Random) -> object:
        """Apply a random shape's grudge."""
        shape = rng.choice(self.shapes)
        grudge = partition.SHAPES[shape](cluster.nodes, rng)
        await cluster.partition(grudge)
        return {"shape": shape, "grudge": partition.describe(grudge)}

    async def stop(self, cluster: Cluster) -> object:
        """Heal every link."""
        await cluster.heal()
        return None


class Kill(Fault):
    """SIGKILL a random node; restart it on stop."""

    name = "kill"

    def __init__(self) -> None:
        self._killed: list[int] = []

    async def start(self, cluster: Cluster, rng: random.Random) -> object:
        """Kill one node."""
        node = rng.choice(cluster.nodes)
        await cluster.kill(node)
        self._killed.append(node)
        return {"nodes": [node]}

    async def stop(self, cluster: Cluster) -> object:
        """Restart every node killed."""
        killed, self._killed = self._killed, []
        for node in killed:
            await cluster.restart(node)
        return {"nodes": killed}


FAULTS = {"partition": Partition, "kill": Kill}
