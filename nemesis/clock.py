"""Clock faults: every node reads time through ``clock.ctl`` (offset and rate), so skewing one is
writing that file.

``clock`` picks, each time it starts, one of:

- **bump**: the targets' offsets jump by ± 1 ms … 60 s (log-uniform);
- **strobe**: the targets' offsets flip between 0 and ± 10 ms … 10 s every 0.1-1 s;
- **drift**: the targets' clocks run at a rate within the nodes' drift bound rho (strictly).

Rates within rho are what the lease arithmetic assumes. Offsets move only a node's wall reading:
the node times leases, takeovers and timers on a clock that they do not move (as real nodes use
``CLOCK_MONOTONIC``), so bumps and strobes check that nothing depends on wall time.
**drift-unsafe** breaks the rate assumption on purpose: the leader of the busiest open segment
runs at 0.1-0.3 of true speed, so its lease outlasts the takeover wait — the lease checker must
see it. Every clock fault resets its nodes on stop.
"""

import math

import trio

from nemesis.context import TARGETS, FaultContext, targets
from nemesis.faults import Fault


class Clock(Fault):
    """A clock skew within what the nodes are built to survive: bump, strobe or drift."""

    name = "clock"

    def __init__(self) -> None:
        self._nodes: list[int] = []
        self._strobe: trio.CancelScope | None = None

    async def start(self, ctx: FaultContext) -> object:
        """Skew a target set of clocks."""
        kind = ctx.rng.choice(("bump", "strobe", "drift"))
        spec = ctx.rng.choice(TARGETS)
        self._nodes = await targets(ctx, spec)
        if kind == "bump":
            settings = {n: (_signed_log(ctx, -3, math.log10(60)), 1.0) for n in self._nodes}
            for node, (offset, rate) in settings.items():
                await ctx.cluster.set_clock(node, offset, rate)
            return {"kind": kind, "target": spec, "nodes": _describe(settings)}
        if kind == "drift":
            bound = ctx.drift_bound * 0.9
            settings = {n: (0.0, 1 + ctx.rng.uniform(-bound, bound)) for n in self._nodes}
            for node, (offset, rate) in settings.items():
                await ctx.cluster.set_clock(node, offset, rate)
            return {"kind": kind, "target": spec, "nodes": _describe(settings)}
        delta = _signed_log(ctx, -2, 1)
        period = ctx.rng.uniform(0.1, 1.0)
        self._strobe = trio.CancelScope()
        ctx.nursery.start_soon(self._flip, ctx, list(self._nodes), delta, period, self._strobe)
        return {
            "kind": kind,
            "target": spec,
            "nodes": sorted(self._nodes),
            "strobe": {"delta": delta, "period": period},
        }

    @staticmethod
    async def _flip(
        ctx: FaultContext, nodes: list[int], delta: float, period: float, scope: trio.CancelScope
    ) -> None:
        with scope:
            up = True
            while True:
                for node in nodes:
                    await ctx.cluster.set_clock(node, delta if up else 0.0, 1.0)
                up = not up
                await trio.sleep(period)

    async def stop(self, ctx: FaultContext) -> object:
        """Reset the skewed clocks."""
        if self._strobe is not None:
            self._strobe.cancel()
            self._strobe = None
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            await ctx.cluster.set_clock(node, 0.0, 1.0)
        return {"nodes": sorted(nodes)}


class DriftUnsafe(Fault):
    """Slow the busiest segment's leader far beyond the drift bound (0.1-0.3 of true speed)."""

    name = "drift-unsafe"

    def __init__(self) -> None:
        self._node: int | None = None

    async def start(self, ctx: FaultContext) -> object:
        """Slow one clock."""
        self._node = await ctx.leader()
        rate = ctx.rng.uniform(0.1, 0.3)
        await ctx.cluster.set_clock(self._node, 0.0, rate)
        return {
            "kind": "drift-unsafe",
            "target": "leader",
            "nodes": {str(self._node): {"offset": 0.0, "rate": rate}},
        }

    async def stop(self, ctx: FaultContext) -> object:
        """Reset it."""
        node, self._node = self._node, None
        if node is not None:
            await ctx.cluster.set_clock(node, 0.0, 1.0)
        return {"nodes": [] if node is None else [node]}


def _signed_log(ctx: FaultContext, low: float, high: float) -> float:
    """± 10**uniform(low, high)."""
    return ctx.rng.choice((-1, 1)) * 10 ** ctx.rng.uniform(low, high)


def _describe(settings: dict[int, tuple[float, float]]) -> dict[str, dict[str, float]]:
    return {str(n): {"offset": o, "rate": r} for n, (o, r) in sorted(settings.items())}
