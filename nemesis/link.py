"""Degraded links: delay with jitter, bandwidth limits, loss, duplication and reordering, on every
link of a target set of nodes.

Real networks are not only up or cut: they are slow, jittery, narrow and lossy, which stretches
timeouts, lease renewals and replication without any node failing. **delay** adds a planned
delay (20-200 ms) and jitter (none, half or all of it, either way) to every node-to-node link
touching its targets; **throttle** caps those links at a planned rate (16-256 KiB/s per
direction); **loss** drops a planned share (2-20 %) of the packets on them; **duplicate** sends
a planned share (5-50 %) of them twice; **reorder** holds a planned share (10-50 %) back by
5-20 ms, so that later packets overtake them. The backend does it (the local backend's link
proxies: delay and throttle, since a TCP stream cannot lose, repeat or reorder bytes; the Docker
backend's iptables, tc and NFQUEUE delayer: all five); stopping restores the links. They may be
active at once: their shapes combine.
"""

import random

from nemesis.context import FaultContext, Params, plan_targets
from nemesis.fault import Fault
from nemesis.interfaces import LinkShape

DELAYS_MS = (20, 50, 100, 200)
RATES_KIB = (16, 64, 256)
LOSSES = (0.02, 0.05, 0.1, 0.2)
DUPLICATES = (0.05, 0.1, 0.2, 0.5)
REORDERS = (0.1, 0.25, 0.5)
HOLDS_MS = (5, 10, 20)


class _Slow(Fault):
    """Slow the links touching the targets; restore them on stop."""

    def __init__(self) -> None:
        self._active = False

    def shape(self, params: Params) -> dict[str, float]:
        """The planned parameters as ``LinkShape`` fields (seconds, bytes/s, probability)."""
        raise NotImplementedError

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Slow the targets' links."""
        shape = self.shape(params)
        await ctx.cluster.slow_links(self.name, nodes, LinkShape(**shape))
        self._active = True
        return {"target": params["target"], "nodes": sorted(nodes), **shape}

    async def stop(self, ctx: FaultContext) -> object:
        """Restore them."""
        if self._active:
            await ctx.cluster.slow_links(self.name, [], LinkShape())
            self._active = False
        return {}


class Delay(_Slow):
    """Delay (with jitter) every link touching the targets."""

    name = "delay"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """Targets, a delay and a jitter."""
        delay = rng.choice(DELAYS_MS)
        return {
            **plan_targets(rng, nodes),
            "delay_ms": delay,
            "jitter_ms": delay * rng.choice((0, 0.5, 1)),
        }

    def shape(self, params: Params) -> dict[str, float]:
        """Seconds of delay and jitter."""
        return {"delay": params["delay_ms"] / 1000, "jitter": params["jitter_ms"] / 1000}


class Throttle(_Slow):
    """Cap every link touching the targets at a rate."""

    name = "throttle"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """Targets and a rate."""
        return {**plan_targets(rng, nodes), "rate_kib_s": rng.choice(RATES_KIB)}

    def shape(self, params: Params) -> dict[str, float]:
        """Bytes per second."""
        return {"rate": params["rate_kib_s"] * 1024.0}


class Loss(_Slow):
    """Drop a share of the packets on every link touching the targets."""

    name = "loss"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """Targets and a probability."""
        return {**plan_targets(rng, nodes), "loss": rng.choice(LOSSES)}

    def shape(self, params: Params) -> dict[str, float]:
        """The probability."""
        return {"loss": params["loss"]}


class Duplicate(_Slow):
    """Send a share of the packets on every link touching the targets twice."""

    name = "duplicate"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """Targets and a probability."""
        return {**plan_targets(rng, nodes), "duplicate": rng.choice(DUPLICATES)}

    def shape(self, params: Params) -> dict[str, float]:
        """The probability."""
        return {"duplicate": params["duplicate"]}


class Reorder(_Slow):
    """Hold a share of the packets on every link touching the targets back, so others overtake
    them."""

    name = "reorder"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """Targets, a share and how long it is held."""
        return {
            **plan_targets(rng, nodes),
            "reorder": rng.choice(REORDERS),
            "hold_ms": rng.choice(HOLDS_MS),
        }

    def shape(self, params: Params) -> dict[str, float]:
        """The share and seconds held."""
        return {"reorder": params["reorder"], "hold": params["hold_ms"] / 1000}
