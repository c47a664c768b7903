"""Process faults: SIGKILL (restarted when the fault stops) and SIGSTOP (continued)."""

import random

from nemesis.context import FaultContext, Params, plan_targets
from nemesis.fault import Fault


class _Targeted(Fault):
    """Do something to a target set of nodes (one, minority, majority, all, leader); undo it."""

    resource = "process"

    def __init__(self) -> None:
        self._nodes: list[int] = []

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """A target set."""
        return plan_targets(rng, nodes)

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Act on the nodes."""
        self._nodes = list(nodes)
        for node in self._nodes:
            await self.inflict(ctx, node)
        return {"target": params["target"], "nodes": sorted(self._nodes)}

    async def stop(self, ctx: FaultContext) -> object:
        """Undo it on every node acted on."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            await self.undo(ctx, node)
        return {"nodes": sorted(nodes)}

    async def inflict(self, ctx: FaultContext, node: int) -> None:
        """The fault, on one node."""
        raise NotImplementedError

    async def undo(self, ctx: FaultContext, node: int) -> None:
        """Its undoing, on one node."""
        raise NotImplementedError


class Kill(_Targeted):
    """SIGKILL the targets; restart them on stop."""

    name = "kill"

    async def inflict(self, ctx: FaultContext, node: int) -> None:
        """SIGKILL."""
        await ctx.cluster.kill(node)

    async def undo(self, ctx: FaultContext, node: int) -> None:
        """Start again."""
        await ctx.cluster.restart(node)


class Pause(_Targeted):
    """SIGSTOP the targets; SIGCONT on stop."""

    name = "pause"

    async def inflict(self, ctx: FaultContext, node: int) -> None:
        """SIGSTOP."""
        await ctx.cluster.pause(node)

    async def undo(self, ctx: FaultContext, node: int) -> None:
        """SIGCONT."""
        await ctx.cluster.resume(node)
