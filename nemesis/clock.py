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
import random

import trio

from nemesis.context import FaultContext, Params, plan_targets
from nemesis.fault import Fault


class Clock(Fault):
    """A clock skew within what the nodes are built to survive: bump, strobe or drift."""

    name = "clock"
    aimable = False
    resource = "clock"

    def __init__(self) -> None:
        self._nodes: list[int] = []
        self._strobe: trio.CancelScope | None = None

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """A kind, a target set, and each target's offset or rate (one per planned node, or
        one for the leader); a strobe's step and period. The rates stay within the drift bound
        by being fractions of it (applied when the step runs)."""
        kind = rng.choice(("bump", "strobe", "drift"))
        params = {"kind": kind, **plan_targets(rng, nodes)}
        count = len(params.get("nodes", [None]))
        if kind == "bump":
            params["offsets"] = [_signed_log(rng, -3, math.log10(60)) for _ in range(count)]
        elif kind == "drift":
            params["rate_fractions"] = [rng.uniform(-0.9, 0.9) for _ in range(count)]
        else:
            params["strobe"] = {"delta": _signed_log(rng, -2, 1), "period": rng.uniform(0.1, 1.0)}
        return params

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Skew the clocks of ``nodes``."""
        kind, spec = params["kind"], params["target"]
        self._nodes = list(nodes)
        planned = params.get("nodes", nodes)
        if kind in ("bump", "drift"):
            settings = {}
            for node in self._nodes:
                k = planned.index(node) if node in planned else 0
                if kind == "bump":
                    settings[node] = (params["offsets"][k], 1.0)
                else:
                    settings[node] = (0.0, 1 + params["rate_fractions"][k] * ctx.drift_bound)
            for node, (offset, rate) in settings.items():
                await ctx.cluster.set_clock(node, offset, rate)
            return {"kind": kind, "target": spec, "nodes": _describe(settings)}
        strobe = params["strobe"]
        self._strobe = trio.CancelScope()
        ctx.nursery.start_soon(
            self._flip, ctx, list(self._nodes), strobe["delta"], strobe["period"], self._strobe
        )
        return {"kind": kind, "target": spec, "nodes": sorted(self._nodes), "strobe": strobe}

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
    aimable = False
    resource = "clock"

    def __init__(self) -> None:
        self._node: int | None = None

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """The rate."""
        return {"target": "leader", "rate": rng.uniform(0.1, 0.3)}

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Slow one clock."""
        self._node = nodes[0]
        await ctx.cluster.set_clock(self._node, 0.0, params["rate"])
        return {
            "kind": "drift-unsafe",
            "target": "leader",
            "nodes": {str(self._node): {"offset": 0.0, "rate": params["rate"]}},
        }

    async def stop(self, ctx: FaultContext) -> object:
        """Reset it."""
        node, self._node = self._node, None
        if node is not None:
            await ctx.cluster.set_clock(node, 0.0, 1.0)
        return {"nodes": [] if node is None else [node]}


def _signed_log(rng: random.Random, low: float, high: float) -> float:
    """± 10**uniform(low, high)."""
    return rng.choice((-1, 1)) * 10 ** rng.uniform(low, high)


def _describe(settings: dict[int, tuple[float, float]]) -> dict[str, dict[str, float]]:
    return {str(n): {"offset": o, "rate": r} for n, (o, r) in sorted(settings.items())}
