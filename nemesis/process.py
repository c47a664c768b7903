"""Process faults: SIGKILL (restarted when the fault stops) and SIGSTOP (continued)."""

from nemesis.context import TARGETS, FaultContext, targets
from nemesis.faults import Fault


class Kill(Fault):
    """SIGKILL a target set of nodes (one, minority, majority, all, leader); restart on stop."""

    name = "kill"

    def __init__(self) -> None:
        self._nodes: list[int] = []

    async def start(self, ctx: FaultContext) -> object:
        """Kill the targets."""
        spec = ctx.rng.choice(TARGETS)
        self._nodes = await targets(ctx, spec)
        for node in self._nodes:
            await ctx.cluster.kill(node)
        return {"target": spec, "nodes": sorted(self._nodes)}

    async def stop(self, ctx: FaultContext) -> object:
        """Restart them."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            await ctx.cluster.restart(node)
        return {"nodes": sorted(nodes)}


class Pause(Fault):
    """SIGSTOP a target set of nodes; SIGCONT on stop."""

    name = "pause"

    def __init__(self) -> None:
        self._nodes: list[int] = []

    async def start(self, ctx: FaultContext) -> object:
        """Pause the targets."""
        spec = ctx.rng.choice(TARGETS)
        self._nodes = await targets(ctx, spec)
        for node in self._nodes:
            await ctx.cluster.pause(node)
        return {"target": spec, "nodes": sorted(self._nodes)}

    async def stop(self, ctx: FaultContext) -> object:
        """Resume them."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            await ctx.cluster.resume(node)
        return {"nodes": sorted(nodes)}
