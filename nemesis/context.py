"""What a fault may consult while it acts: the cluster, a seeded rng, the history so far."""

import random
from collections import Counter
from dataclasses import dataclass

import trio

from harness.cluster.base import Cluster
from harness.history import Recorder
from walrus.client import Client, WalrusError


@dataclass
class FaultContext:
    """The cluster under test and what faults need to choose their targets."""

    cluster: Cluster
    rng: random.Random
    recorder: Recorder
    topics: list[str]
    nursery: trio.Nursery
    drift_bound: float = 0.1

    def busiest_topic(self) -> str | None:
        """The topic with the most acknowledged puts so far."""
        counts = Counter(e.topic for e in self.recorder.events if e.type == "ok" and e.f == "put")
        if counts:
            return counts.most_common(1)[0][0]
        return self.topics[0] if self.topics else None

    async def state(self, topic: str) -> dict | None:
        """STATE of a topic, asked of any node that answers."""
        for node in self.cluster.nodes:
            if not await self.cluster.alive(node):
                continue
            host, port = self.cluster.client_address(node)
            try:
                return await trio.to_thread.run_sync(_state, host, port, topic)
            except (WalrusError, OSError, ValueError):
                continue
        return None

    async def leader(self, topic: str | None = None) -> int:
        """The node leading ``topic``'s open segment (default: the busiest topic's); a random
        node if none answers."""
        topic = topic or self.busiest_topic()
        state = await self.state(topic) if topic else None
        if state and state.get("leader_node") in self.cluster.nodes:
            return state["leader_node"]
        return self.rng.choice(self.cluster.nodes)

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


def _state(host: str, port: int, topic: str) -> dict:
    with Client(host, port, timeout=3) as c:
        return c.state(topic)


TARGETS = ("one", "minority", "majority", "all", "leader")


async def targets(ctx: FaultContext, spec: str) -> list[int]:
    """The nodes a target spec names: one, a minority, a majority, all, or the leader."""
    nodes = list(ctx.cluster.nodes)
    if spec == "leader":
        return [await ctx.leader()]
    ctx.rng.shuffle(nodes)
    if spec == "one":
        return nodes[:1]
    if spec == "minority":
        return nodes[: max(1, (len(nodes) - 1) // 2)]
    if spec == "majority":
        return nodes[: len(nodes) // 2 + 1]
    if spec == "all":
        return nodes
    raise ValueError(f"unknown target {spec!r}; choose from {', '.join(TARGETS)}")
