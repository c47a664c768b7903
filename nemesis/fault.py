"""The fault interface: what every fault a schedule can use provides.

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

from nemesis.context import FaultContext, Params, resolve


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
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """The parameters of one start, chosen now."""

    async def targets(self, ctx: FaultContext, params: Params) -> list[int]:
        """The nodes a start with these parameters acts on (holding their ``resource``): the
        planned ``target`` set, or the leader now; none for a fault that names no target."""
        return await resolve(ctx, params) if "target" in params else []

    def aim(self, params: Params, node: int, nodes: list[int]) -> Params:
        """The planned parameters, aimed at ``node`` (the trigger event's target)."""
        return {**params, "target": "event", "nodes": [node]}

    @abstractmethod
    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Inflict the fault on ``nodes`` (those of ``targets`` no other fault holds); what was
        done, as JSON."""

    @abstractmethod
    async def stop(self, ctx: FaultContext) -> object:
        """Undo it completely; what was done, as JSON."""
