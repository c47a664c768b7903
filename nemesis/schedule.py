"""Schedules: when faults start and stop, Jepsen style.

Every ``interval`` seconds (jittered x0.5-1.5) the schedule picks, with a seeded rng, one of its
faults: starts it if it is inactive, stops it if active. At most one fault of each kind is active
at a time; different kinds overlap. When the time is up, or the schedule is cancelled, every
active fault is stopped, the network first — the final heal. Each start and stop is recorded in
the history as a nemesis event carrying its parameters.
"""

import random

import trio

from harness.cluster.base import Cluster
from harness.history import Recorder
from nemesis.context import FaultContext
from nemesis.faults import ALL, Fault, catalogue


class UnknownFault(ValueError):
    """A nemesis name that is not one of the faults."""


def faults_from(spec: str) -> list[Fault]:
    """Faults from a comma-separated list such as ``partition,kill``; ``all`` is every fault a
    correct node must survive; ``none`` or empty: no faults."""
    names = [n.strip() for n in spec.split(",") if n.strip() and n.strip() != "none"]
    names = [m for n in names for m in (ALL if n == "all" else (n,))]
    known = catalogue()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownFault(
            f"unknown nemesis {', '.join(unknown)}; choose from {', '.join(known)}, all or none"
        )
    return [known[n]() for n in dict.fromkeys(names)]


class Schedule:
    """Runs faults against a cluster, recording them."""

    def __init__(self, faults: list[Fault], interval: float, seed: int) -> None:
        self.faults = faults
        self.interval = interval
        self.rng = random.Random(f"{seed}/nemesis")
        self.active: dict[str, Fault] = {}

    async def run(
        self,
        cluster: Cluster,
        recorder: Recorder,
        seconds: float,
        topics: list[str],
        drift_bound: float,
    ) -> None:
        """Start and stop faults for ``seconds``, then heal."""
        if not self.faults:
            return
        deadline = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            ctx = FaultContext(cluster, self.rng, recorder, topics, nursery, drift_bound)
            try:
                await trio.sleep(min(seconds, self.interval / 2))
                while trio.current_time() < deadline:
                    fault = self.rng.choice(self.faults)
                    if fault.name in self.active:
                        await self._stop(fault, ctx)
                    else:
                        value = await fault.start(ctx)
                        self.active[fault.name] = fault
                        recorder.record("nemesis", "info", f"start-{fault.name}", value=value)
                    pause = self.interval * self.rng.uniform(0.5, 1.5)
                    await trio.sleep(max(0.0, min(pause, deadline - trio.current_time())))
            finally:
                with trio.CancelScope(shield=True):
                    await self.heal(ctx)

    async def _stop(self, fault: Fault, ctx: FaultContext) -> None:
        value = await fault.stop(ctx)
        del self.active[fault.name]
        ctx.recorder.record("nemesis", "info", f"stop-{fault.name}", value=value)

    async def heal(self, ctx: FaultContext) -> None:
        """Stop every active fault, the network first (a restarted node needs its peers)."""
        for fault in sorted(self.active.values(), key=lambda f: f.name != "partition"):
            await self._stop(fault, ctx)
