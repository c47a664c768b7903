"""Schedules: when faults start and stop, as data computed before the run, then executed.

``plan`` is pure and seeded, Jepsen's generator made a list: every ``interval`` seconds
(jittered x0.5-1.5) it picks one of its faults and starts it if inactive, stops it if active,
each start with its parameters chosen then (``Fault.plan``). The same seed, faults, interval,
time limit, nodes and topics give the same steps, byte for byte; the steps are saved in the
run's test.json, and ``replay`` and ``shrink`` run an edited list again.

An aimed fault (``kill@seal``: ``nemesis.aim``) is planned the same way, with a trigger in its
start's parameters; executing the start arms it, and it fires on the node that wrote the event.

``Schedule`` only executes steps: at each step's time it resolves what only the running cluster
knows (the leader), keeps faults that hold a node's process or clock (kill, pause and disk; clock
and drift-unsafe) off a node another fault holds — a step left with no node is skipped, and its
stop with it — acts, and records the start or stop in the history with what was done. When the
time is up, or the schedule is cancelled, every active fault is stopped, the network first: the
final heal.
"""

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from nemesis import aim
from nemesis.catalogue import ALL, FAULTS
from nemesis.context import FaultContext, Params
from nemesis.fault import Fault
from nemesis.interfaces import History, Target
from walrus.events import EVENT_LOG


class UnknownFault(ValueError):
    """A nemesis name that is not one of the faults."""


def fault_names(spec: str) -> list[str]:
    """Fault names from a comma-separated list such as ``partition,kill``; ``all`` is every
    fault a correct node must survive; ``none`` or empty: no faults."""
    names = [n.strip() for n in spec.split(",") if n.strip() and n.strip() != "none"]
    names = [m for n in names for m in (ALL if n == "all" else (n,))]
    known = FAULTS
    unknown = [n for n in names if aim.split(n)[0] not in known]
    if unknown:
        raise UnknownFault(
            f"unknown nemesis {', '.join(unknown)}; choose from {', '.join(known)}, all or none "
            "(any of them aimed at an event as FAULT@EVENT)"
        )
    for name in names:
        base, event = aim.split(name)
        if event is not None and event not in aim.EVENTS:
            raise UnknownFault(
                f"{name}: no event {event!r} to aim at; choose from {', '.join(aim.EVENTS)}"
            )
        if event is not None and not known[base].aimable:
            raise UnknownFault(f"{name}: {base} cannot be aimed at an event")
        if event is not None:
            try:
                aim.delay_range(name)
            except ValueError as exc:
                raise UnknownFault(str(exc)) from None
    return list(dict.fromkeys(names))


def base_faults(names: list[str] | tuple[str, ...]) -> set[str]:
    """The fault kinds behind ``names``: an aimed ``kill@seal`` counts as ``kill``."""
    return {aim.split(name)[0] for name in names}


def make_fault(name: str) -> Fault:
    """The fault a schedule runs under ``name`` (an aimed one is named ``FAULT@EVENT``)."""
    fault = FAULTS[aim.split(name)[0]]()
    fault.name = name
    return fault


@dataclass(frozen=True)
class Step:
    """One step of a schedule: at ``time`` seconds into the run, start or stop ``fault``."""

    time: float
    fault: str
    action: str
    """"start" or "stop"."""
    params: Params = field(default_factory=dict)
    """What a start does (``Fault.plan``); empty for a stop."""

    def to_json(self) -> dict[str, object]:
        """As test.json keeps it."""
        return {
            "time": self.time,
            "fault": self.fault,
            "action": self.action,
            "params": self.params,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Step":
        """From test.json."""
        fault = raw.get("fault")
        if raw.get("action") not in ("start", "stop") or not isinstance(fault, str):
            raise ValueError(f"not a schedule step: {raw!r}")
        try:
            fault_names(fault)
        except UnknownFault as exc:
            raise ValueError(f"not a schedule step: {exc}") from None
        return cls(float(raw["time"]), raw["fault"], raw["action"], dict(raw.get("params") or {}))


def plan(
    names: list[str],
    interval: float,
    seconds: float,
    seed: int,
    nodes: list[int],
    topics: list[str],
) -> list[Step]:
    """The steps of a run of ``seconds``: seeded, so the same arguments give the same list."""
    if not names:
        return []
    rng = random.Random(f"{seed}/nemesis")
    known = FAULTS
    active: set[str] = set()
    steps = []
    t = min(seconds, interval / 2)
    while t < seconds:
        name = rng.choice(names)
        if name in active:
            steps.append(Step(round(t, 6), name, "stop"))
            active.discard(name)
        else:
            base, event = aim.split(name)
            params = known[base].plan(rng, nodes, topics)
            if event is not None:
                delay = round(rng.uniform(*aim.delay_range(name)), 1)
                hold = round(interval * rng.uniform(0.5, 1.5), 3)
                params["trigger"] = {"event": event, "delay_ms": delay, "hold_s": hold}
            steps.append(Step(round(t, 6), name, "start", params))
            active.add(name)
        t += interval * rng.uniform(0.5, 1.5)
    return steps


def dumps(steps: list[Step]) -> str:
    """The schedule as canonical JSON text (what "byte-identical" compares)."""
    return json.dumps([s.to_json() for s in steps], sort_keys=True, separators=(",", ":"))


def admit(held: dict[tuple[str, int], str], fault: Fault, nodes: list[int]) -> list[int] | None:
    """The nodes a start may act on: those whose ``fault.resource`` no other fault holds, now
    held by it; None when none is left (the step is skipped)."""
    if fault.resource is None:
        return nodes
    free = [n for n in nodes if (fault.resource, n) not in held]
    if not free:
        return None
    for n in free:
        held[(fault.resource, n)] = fault.name
    return free


def started(value: object, began: int) -> dict[str, object]:
    """A start's record: what the fault did, and ``began``, the history time it began acting
    (the record itself is made once it is done: on Docker, some 0.3 s later)."""
    return {**(value if isinstance(value, dict) else {"done": value}), "began": began}


class Schedule:
    """Executes a planned list of steps against a cluster, recording each in the history."""

    def __init__(self, steps: list[Step], seed: int) -> None:
        self.steps = steps
        self.seed = seed
        self.faults: dict[str, Fault] = {
            name: make_fault(name) for name in {s.fault for s in steps}
        }
        self.active: dict[str, Fault] = {}
        self.armed: dict[str, trio.CancelScope] = {}
        """Aimed faults waiting for their event, by name."""
        self.holding: dict[str, trio.CancelScope] = {}
        """Aimed faults that fired and are in force for their planned hold, by name."""
        self.ending = False
        """True once the run's time is up: no hold begins after that."""
        self._logs: dict[int, Path] = {}
        """The nodes' event logs; each armed fault reads them with a watch of its own (a shared
        one would hand an event to whichever armed fault polled first, and the others would
        never see it)."""
        self.held: dict[tuple[str, int], str] = {}
        self.skipped: list[int] = []
        """Indexes of start steps that found every node they named held by another fault."""

    async def run(
        self,
        cluster: Target,
        recorder: History,
        seconds: float,
        topics: list[str],
        drift_bound: float,
    ) -> None:
        """Execute the steps due within ``seconds``, then heal."""
        if not self.steps:
            return
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            rng = random.Random(f"{self.seed}/heal")
            ctx = FaultContext(cluster, rng, recorder, topics, nursery, drift_bound)
            self._logs = {n: cluster.data_dir(n) / EVENT_LOG for n in cluster.nodes}
            try:
                async with trio.open_nursery() as aimed:
                    try:
                        for index, step in enumerate(self.steps):
                            if step.time >= seconds:
                                break
                            await trio.sleep_until(start + step.time)
                            ctx.rng = random.Random(f"{self.seed}/step/{index}")
                            await self._execute(index, step, ctx, aimed)
                        await trio.sleep_until(start + seconds)
                    finally:
                        self.ending = True
                        for scope in [*self.armed.values(), *self.holding.values()]:
                            scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await self.heal(ctx)

    async def _execute(
        self, index: int, step: Step, ctx: FaultContext, aimed: trio.Nursery
    ) -> None:
        fault = self.faults[step.fault]
        if step.action == "stop":
            if step.fault in self.armed:
                self.armed.pop(step.fault).cancel()
            if step.fault in self.active and step.fault not in self.holding:
                await self._stop(fault, ctx)
            return
        if step.fault in self.active or step.fault in self.armed:
            return
        if "trigger" in step.params:
            self.armed[step.fault] = trio.CancelScope()
            aimed.start_soon(self._aimed, index, step, ctx, self.armed[step.fault])
            return
        nodes = admit(self.held, fault, await fault.targets(ctx, step.params))
        if nodes is None:
            self.skipped.append(index)
            return
        began = ctx.recorder.now()
        value = await fault.start(ctx, step.params, nodes)
        self.active[fault.name] = fault
        ctx.recorder.record("nemesis", "info", f"start-{fault.name}", value=started(value, began))

    async def _aimed(
        self, index: int, step: Step, ctx: FaultContext, scope: trio.CancelScope
    ) -> None:
        """Wait for the trigger's event, then start the fault on the event's target and hold
        it."""
        trigger = step.params["trigger"]
        with scope:
            watch = aim.EventWatch(self._logs)
            event = await watch.next(trigger["event"], time.monotonic_ns())
            await trio.sleep(trigger["delay_ms"] / 1000)
        if self.armed.get(step.fault) is scope:
            del self.armed[step.fault]
        if scope.cancelled_caught:
            return  # disarmed by its stop, or the run ended, before it fired
        fault = self.faults[step.fault]
        fired = aim.lag_ms(event)
        with trio.CancelScope(shield=True):
            assert event.target is not None  # watch.next returns only events that hit a node
            params = fault.aim(step.params, event.target, list(ctx.cluster.nodes))
            nodes = admit(self.held, fault, await fault.targets(ctx, params))
            if nodes is None:
                self.skipped.append(index)
                return
            began = ctx.recorder.now()
            value = await fault.start(ctx, params, nodes)
            self.active[fault.name] = fault
            ctx.recorder.record(
                "nemesis",
                "info",
                f"start-{fault.name}",
                value={
                    **started(value, began),
                    "trigger": {
                        "event": event.kind,
                        "node": event.node,
                        "target": event.target,
                        "event_true_ns": event.true_ns,
                        "delay_ms": trigger["delay_ms"],
                        "lag_ms": fired,
                    },
                },
            )
        if trigger.get("hold_s") is not None:
            await self._hold(step.fault, trigger["hold_s"], ctx)

    async def _hold(self, name: str, seconds: float, ctx: FaultContext) -> None:
        """Keep a fired aimed fault in force for its planned hold, then stop it (the run's end
        cuts the hold short: the heal stops it then)."""
        scope = self.holding[name] = trio.CancelScope()
        if self.ending:
            scope.cancel()
        with scope:
            await trio.sleep(seconds)
        if self.holding.get(name) is scope:
            del self.holding[name]
        if not scope.cancelled_caught and name in self.active:
            with trio.CancelScope(shield=True):
                await self._stop(self.faults[name], ctx)

    async def _stop(self, fault: Fault, ctx: FaultContext) -> None:
        value = await fault.stop(ctx)
        del self.active[fault.name]
        self.held = {k: v for k, v in self.held.items() if v != fault.name}
        ctx.recorder.record("nemesis", "info", f"stop-{fault.name}", value=value)

    async def heal(self, ctx: FaultContext) -> None:
        """Stop every active fault, the network first (a restarted node needs its peers)."""
        for fault in sorted(
            self.active.values(), key=lambda f: aim.split(f.name)[0] != "partition"
        ):
            await self._stop(fault, ctx)
