"""The fault interface and the catalogue of faults a schedule can use.

A fault acts on a cluster only through ``harness.cluster.Cluster`` (given in a
``FaultContext``). ``start`` returns the parameters recorded in the history (``start-<name>``),
``stop`` undoes the fault completely and returns what it did (``stop-<name>``).
"""

from abc import ABC, abstractmethod

from nemesis.context import FaultContext


class Fault(ABC):
    """One kind of fault; at most one of each kind is active at a time."""

    name: str

    @abstractmethod
    async def start(self, ctx: FaultContext) -> object:
        """Inflict the fault; what was done, as JSON."""

    @abstractmethod
    async def stop(self, ctx: FaultContext) -> object:
        """Undo it completely; what was done, as JSON."""


def catalogue() -> dict[str, type[Fault]]:
    """Every fault by name."""
    from nemesis.clock import Clock, DriftUnsafe
    from nemesis.disk import BitRot, Disk
    from nemesis.partition import Partition
    from nemesis.process import Kill, Pause

    return {f.name: f for f in (Partition, Kill, Pause, Clock, Disk, DriftUnsafe, BitRot)}


ALL = ("partition", "kill", "pause", "clock", "disk")
"""What ``--nemesis all`` means: every fault a correct node must survive. ``drift-unsafe`` (a clock
beyond the drift bound) and ``bitrot`` (damage to synced data) are left out: they break the
node's assumptions on purpose."""
