"""The fault interface and the catalogue of faults a schedule can use.

Choosing and doing are separate. ``plan`` is pure: from a seeded rng, the cluster's node ids and
the topics it returns the parameters of one start (a partition's grudge, the nodes to kill, a
clock's offsets) — the schedule is computed before the run and saved. When the step runs,
``targets`` names the nodes it will act on (the leader is found only then), the schedule keeps
faults that share a node's process or clock from overlapping, and ``start`` does it, returning
what was done as recorded in the history (``start-<name>``); ``stop`` undoes it completely and
returns what it did (``stop-<name>``). A fault acts on the cluster only through
``nemesis.interfaces.Target``.
"""

import random
from abc import ABC, abstractmethod

from nemesis.context import FaultContext, resolve


class Fault(ABC):
    """One kind of fault; at most one of each kind is active at a time."""

    name: str
    aimable: bool = True
    """Whether it can be aimed at an event (``FAULT@EVENT``: at the node that wrote it)."""
    resource: str | None = None
    """What of a node the fault holds while active ("process", "clock"), so that two faults
    holding the same one never act on one node at once; None for the network, which a single
    fault owns."""

    @staticmethod
    @abstractmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> dict:
        """The parameters of one start, chosen now."""

    async def targets(self, ctx: FaultContext, params: dict) -> list[int]:
        """The nodes a start with these parameters acts on (holding their ``resource``): the
        planned ``target`` set, or the leader now; none for a fault that names no target."""
        return await resolve(ctx, params) if "target" in params else []

    def aim(self, params: dict, node: int, nodes: list[int]) -> dict:
        """The planned parameters, aimed at ``node`` (the trigger event's target)."""
        return {**params, "target": "event", "nodes": [node]}

    @abstractmethod
    async def start(self, ctx: FaultContext, params: dict, nodes: list[int]) -> object:
        """Inflict the fault on ``nodes`` (those of ``targets`` no other fault holds); what was
        done, as JSON."""

    @abstractmethod
    async def stop(self, ctx: FaultContext) -> object:
        """Undo it completely; what was done, as JSON."""


def catalogue() -> dict[str, type[Fault]]:
    """Every fault by name."""
    from nemesis.clock import Clock, DriftUnsafe
    from nemesis.disk import BitRot, Disk, LoseUnsynced, Wipe
    from nemesis.link import Delay, Duplicate, Loss, Reorder, Throttle
    from nemesis.partition import Partition
    from nemesis.process import Kill, Pause

    kinds = (
        Partition,
        Kill,
        Pause,
        Clock,
        Disk,
        DriftUnsafe,
        BitRot,
        LoseUnsynced,
        Wipe,
        Delay,
        Throttle,
        Loss,
        Duplicate,
        Reorder,
    )
    return {f.name: f for f in kinds}


ALL = ("partition", "kill", "pause", "clock", "disk")
"""What ``--nemesis all`` means: every fault a correct node must survive. ``drift-unsafe`` (a clock
beyond the drift bound) and ``bitrot`` (damage to synced data) are left out: they break the
node's assumptions on purpose; ``lose-unsynced`` (power loss) too: it needs FUSE and root;
``wipe`` (a lost disk), which a node keeping one copy of a segment cannot survive; and the link
faults (``delay``, ``throttle``, ``loss``, ``duplicate``, ``reorder``), which degrade a
run, and some of which run on one backend only."""
