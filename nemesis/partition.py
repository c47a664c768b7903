"""Partitions: pure functions from the cluster's nodes (and a seeded rng) to a grudge, and the
fault that applies them.

A grudge maps each node to the set of nodes it cannot hear. The shapes are Jepsen's: isolating
one node (a random one, or the leader of the busiest open segment), cutting the cluster in
halves, cutting off a random minority, rings of overlapping majorities, and a bridge.
"""

import random

from nemesis.context import FaultContext, Params
from nemesis.fault import Fault

Grudge = dict[int, set[int]]


def components(parts: list[list[int]]) -> Grudge:
    """Nodes hear exactly the nodes of their own part."""
    grudge: Grudge = {}
    for part in parts:
        others = {n for p in parts if p is not part for n in p}
        for node in part:
            grudge[node] = set(others)
    return grudge


def isolate(nodes: list[int], target: int) -> Grudge:
    """``target`` is cut off from everyone else."""
    return components([[target], [n for n in nodes if n != target]])


def one(nodes: list[int], rng: random.Random) -> Grudge:
    """Isolate a random node."""
    return isolate(nodes, rng.choice(nodes))


def halves(nodes: list[int], rng: random.Random | None = None) -> Grudge:
    """Two halves (the first the smaller); shuffled first when ``rng`` is given."""
    order = list(nodes)
    if rng is not None:
        rng.shuffle(order)
    cut = len(order) // 2
    return components([order[:cut], order[cut:]])


def majority(nodes: list[int], rng: random.Random) -> Grudge:
    """A random minority (at least one node) cut off from the majority."""
    order = list(nodes)
    rng.shuffle(order)
    size = rng.randint(1, max(1, (len(order) - 1) // 2))
    return components([order[:size], order[size:]])


def majorities_ring(nodes: list[int], rng: random.Random) -> Grudge:
    """Each node hears the nodes within ``d`` places of it on a shuffled ring, ``d`` the least
    that makes that a majority: every node sees a majority, no two the same one (from 4 nodes;
    with 3 every node hears everyone)."""
    order = list(nodes)
    rng.shuffle(order)
    n = len(order)
    d = -(-(n // 2) // 2)
    grudge: Grudge = {}
    for i, node in enumerate(order):
        heard = {order[(i + k) % n] for k in range(-d, d + 1)}
        grudge[node] = set(order) - heard
    return grudge


def bridge(nodes: list[int], rng: random.Random) -> Grudge:
    """Two sides that hear each other only through one bridge node."""
    order = list(nodes)
    rng.shuffle(order)
    if len(order) < 3:
        return halves(order)
    bridge_node, rest = order[0], order[1:]
    cut = len(rest) // 2
    left, right = rest[:cut], rest[cut:]
    grudge: Grudge = {bridge_node: set()}
    for node in left:
        grudge[node] = set(right)
    for node in right:
        grudge[node] = set(left)
    return grudge


SHAPES = {
    "one": one,
    "halves": lambda nodes, rng: halves(nodes),
    "random-halves": halves,
    "majority": majority,
    "majorities-ring": majorities_ring,
    "bridge": bridge,
}


MIN_NODES = {"majorities-ring": 4, "bridge": 3}
"""Shapes that cut nothing below a cluster size (with 3 nodes a symmetric ring of majorities
is everyone hearing everyone); the others need 2 nodes."""


def shapes_for(nodes: list[int]) -> list[str]:
    """The shapes that cut at least one link in a cluster of ``nodes``."""
    return [s for s in SHAPES if len(nodes) >= MIN_NODES.get(s, 2)]


def describe(grudge: Grudge) -> dict[str, list[int]]:
    """The grudge as JSON: node (string) -> sorted nodes it cannot hear."""
    return {str(n): sorted(heard) for n, heard in sorted(grudge.items())}


class Partition(Fault):
    """A network partition of a random shape (any of SHAPES that cuts something in this
    cluster, or ``leader``), its grudge chosen when the schedule is planned."""

    name = "partition"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """A shape and, unless it isolates the leader, its grudge."""
        shape = rng.choice([*shapes_for(nodes), "leader"])
        if shape == "leader":
            return {"shape": shape}
        return {"shape": shape, "grudge": describe(SHAPES[shape](nodes, rng))}

    def aim(self, params: Params, node: int, nodes: list[int]) -> Params:
        """Isolate the node that wrote the event."""
        return {"shape": "event", "grudge": describe(isolate(nodes, node))}

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Apply the grudge (isolating the leader found now, for ``leader``)."""
        if params["shape"] == "leader":
            grudge = isolate(ctx.cluster.nodes, await ctx.leader())
        else:
            grudge = {int(n): set(heard) for n, heard in params["grudge"].items()}
        await ctx.cluster.partition(grudge)
        return {"shape": params["shape"], "grudge": describe(grudge)}

    async def stop(self, ctx: FaultContext) -> object:
        """Heal every link."""
        await ctx.cluster.heal()
        return None
