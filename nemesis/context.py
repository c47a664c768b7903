"""What a fault may consult while it acts: the cluster, a seeded rng, the history so far; and
the target sets, chosen when the schedule is planned or, for the leader, when a step runs."""

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import trio

from nemesis.interfaces import History, Target

Params = dict[str, Any]
"""A step's parameters as planned: JSON, saved with the schedule and read back from it."""


@dataclass
class FaultContext:
    """The cluster under test and what faults need to choose their targets."""

    cluster: Target
    rng: random.Random
    recorder: History
    topics: list[str]
    nursery: trio.Nursery
    drift_bound: float = 0.1

    def busiest_topic(self) -> str | None:
        """The topic with the most acknowledged puts so far."""
        counts = Counter(e.topic for e in self.recorder.events if e.type == "ok" and e.f == "put")
        if counts:
            return counts.most_common(1)[0][0]
        return self.topics[0] if self.topics else None

    async def leader(self, topic: str | None = None) -> int:
        """The node leading ``topic``'s open segment (default: the busiest topic's); a random
        node if none answers."""
        topic = topic or self.busiest_topic()
        leader = await self.cluster.leader(topic) if topic else None
        return leader if leader in self.cluster.nodes else self.rng.choice(self.cluster.nodes)

    def seen_positions(self, topic: str, segment: int) -> list[int]:
        """Offsets in a segment that clients have seen: acknowledged puts, returned gets."""
        return [
            e.extra["pos"][1]
            for e in self.recorder.events
            if e.type == "ok"
            and e.topic == topic
            and e.extra.get("pos")
            and e.extra["pos"][0] == segment
        ]


TARGETS = ("one", "minority", "majority", "all", "leader")


def pick(spec: str, nodes: list[int], rng: random.Random) -> list[int]:
    """The nodes a target spec names among ``nodes``: one, a minority, a majority or all
    (``leader`` is chosen when the step runs, not here)."""
    order = list(nodes)
    rng.shuffle(order)
    if spec == "one":
        return order[:1]
    if spec == "minority":
        return order[: max(1, (len(order) - 1) // 2)]
    if spec == "majority":
        return order[: len(order) // 2 + 1]
    if spec == "all":
        return order
    raise ValueError(f"unknown target {spec!r}; choose from {', '.join(TARGETS)}")


def plan_targets(rng: random.Random, nodes: list[int]) -> Params:
    """A random target spec and, unless it is the leader, its nodes."""
    spec = rng.choice(TARGETS)
    return (
        {"target": spec} if spec == "leader" else {"target": spec, "nodes": pick(spec, nodes, rng)}
    )


async def resolve(ctx: FaultContext, params: Params) -> list[int]:
    """The nodes a planned step acts on: those it names, or the leader now."""
    if params["target"] == "leader":
        return [await ctx.leader()]
    return list(params["nodes"])
