"""Disk faults, done to a node's files while it is down.

**disk** kills a node, then damages the unsynced tail of one of its open segments — what a crash
can leave: a record cut short (the file truncated at a random byte) or a record with flipped
bits, after every record a client has seen (acknowledged, handed out by a GET, or behind the
durable cursor). The node must recover on restart: cut the torn tail and carry on, losing only
records nobody was told about. When no unseen record exists, a torn or damaged partial record is
appended instead.

**lose-unsynced** (not in ``all``: it needs FUSE) is a power loss: it kills a topic's leader and
throws away everything its disk had not made durable — contents not fsynced, names not made
durable by an fsync of their directory — through the losefs mount the backend put under the
node, then restarts it. A node that acknowledges before fdatasync loses acknowledged writes.

**lose-unsynced-all** and **lose-unsynced-majority** are the correlated power loss of a rack or a
zone: every node, or a majority chosen when the schedule is planned, loses what its disk had not
made durable at one instant. The nodes are first all stopped (SIGSTOP), so that none acts after
the instant, then each is killed and its losefs mount told to lose; on stop they restart. A system
that keeps a write on several nodes without any of them syncing it loses it here, where a
one-node power loss leaves other copies.

**wipe** (not in ``all``: with one copy of each segment it loses data by design) kills a
topic's leader and deletes its store — every segment and read position: a lost disk — and
restarts it on stop. The Raft journal beside the store is kept: a voter that forgets its log
breaks Raft itself, which only a membership change can handle. A node that keeps one copy of a
segment loses what it held; one that replicates segments must lose nothing.

**bitrot** (not in ``all``) kills a node and flips a bit in data it stored, where its system
keeps it (``Target.rot``): for Walrus, inside a record a client has seen, followed by intact
records (``WalrusPy.rot``) — damage to synced data; the node must refuse to start, naming the file
and byte, never serve the corrupt entry.
"""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import trio

from nemesis.context import FaultContext, Params
from nemesis.fault import Fault
from walrus import codec
from walrus.storage import NODE_STORE, cursor_path, segment_files

REPLIES_IN_FLIGHT = 0.5
"""Seconds to let replies the node sent before dying reach the history before choosing what
no client has seen."""


def _segments(data_dir: Path) -> list[tuple[str, int, Path]]:
    return segment_files(data_dir / NODE_STORE)


def _seen(ctx: FaultContext, data_dir: Path, topic: str, segment: int) -> int:
    """The highest offset of ``segment`` any client may have seen (-1 if none)."""
    offsets = ctx.seen_positions(topic, segment)
    cursor = cursor_path(data_dir / NODE_STORE, topic)
    if cursor.exists():
        raw = json.loads(cursor.read_text())
        if raw.get("segment") == segment:
            offsets.append(raw["offset"] - 1)
    return max(offsets, default=-1)


def flip(path: Path, byte: int, bit: int) -> None:
    """Flip bit ``bit`` of byte ``byte`` of the file at ``path``."""
    with open(path, "r+b") as f:
        f.seek(byte)
        value = f.read(1)[0]
        f.seek(byte)
        f.write(bytes([value ^ (1 << bit)]))


def damage_tail(ctx: FaultContext, data_dir: Path) -> dict[str, object]:
    """Damage what no client has seen at the end of an open segment; what was done."""
    candidates = []
    for topic, segment, path in _segments(data_dir):
        data = np.fromfile(path, dtype=np.uint8)
        positions, end, status = codec.scan_records(data, 0)
        if status != codec.SCAN_SEALED:
            candidates.append((topic, segment, path, positions, int(end), len(data)))
    if not candidates:
        return {"damage": "none", "why": "no open segment on this node"}
    topic, segment, path, positions, end, size = ctx.rng.choice(candidates)
    first_unseen = _seen(ctx, data_dir, topic, segment) + 1
    how = ctx.rng.choice(("truncate", "bitflip"))
    where = {"topic": topic, "segment": segment, "file": str(path), "size_before": size}
    if first_unseen < len(positions):
        start = int(positions[first_unseen])
        if how == "truncate":
            cut = ctx.rng.randint(start, size - 1)
            with open(path, "r+b") as f:
                f.truncate(cut)
            return {
                "damage": "truncated unseen tail",
                "at": cut,
                "records_unseen": len(positions) - first_unseen,
                **where,
            }
        last = int(positions[-1])
        byte = ctx.rng.randint(last, end - 1)
        flip(path, byte, ctx.rng.randrange(8))
        return {"damage": "flipped a bit in the last, unseen record", "at": byte, **where}
    # Every record was seen: append a partial or damaged record, as a crash mid-write leaves.
    fake = np.zeros(codec.HEADER_SIZE + 32, dtype=np.uint8)
    payload = bytes(ctx.rng.randrange(256) for _ in range(32))
    codec.encode_batch(
        payload, np.array([32], np.int64), len(positions), fake, 0, np.zeros(1, np.int64), 0
    )
    blob = bytearray(fake.tobytes())
    if how == "truncate":
        blob = blob[: ctx.rng.randint(1, len(blob) - 1)]
    else:
        blob[ctx.rng.randrange(len(blob))] ^= 1 << ctx.rng.randrange(8)
    with open(path, "ab") as f:
        f.write(bytes(blob))
    return {
        "damage": f"appended a {'torn' if how == 'truncate' else 'damaged'} record",
        "bytes": len(blob),
        **where,
    }


class Disk(Fault):
    """Kill a node, damage the unsynced tail of one of its segments; restart it on stop."""

    name = "disk"
    resource = "process"

    def __init__(self) -> None:
        self._node: int | None = None

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """The topic whose leader it hits (what to damage is chosen from the files then)."""
        return {"topic": rng.choice(topics) if topics else None}

    async def targets(self, ctx: FaultContext, params: Params) -> list[int]:
        """The topic's leader, now (aimed: the node that wrote the event)."""
        if params.get("target") == "event":
            return list(params["nodes"])
        return [await ctx.leader(params["topic"])]

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Kill and damage."""
        self._node = nodes[0]
        await ctx.cluster.kill(self._node)
        await trio.sleep(REPLIES_IN_FLIGHT)
        done = damage_tail(ctx, ctx.cluster.data_dir(self._node))
        return {"node": self._node, **done}

    async def stop(self, ctx: FaultContext) -> object:
        """Restart the node (it recovers the file)."""
        node, self._node = self._node, None
        if node is not None:
            await ctx.cluster.restart(node)
        return {"nodes": [] if node is None else [node]}


class BitRot(Disk):
    """Kill a node and flip a bit in data it stored (where its system says); restart on stop."""

    name = "bitrot"
    aimable = False

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """The node."""
        return {"node": rng.choice(nodes)}

    async def targets(self, ctx: FaultContext, params: Params) -> list[int]:
        """The planned node."""
        return [params["node"]]

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Kill and rot, where the node's system keeps its data."""
        self._node = nodes[0]
        await ctx.cluster.kill(self._node)
        return {"node": self._node, **await ctx.cluster.rot(self._node, ctx.rng)}


class LoseUnsynced(Disk):
    """Power loss: kill a topic's leader, lose what its disk had not synced; restart on stop."""

    name = "lose-unsynced"

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Kill and lose."""
        self._node = nodes[0]
        lost = await ctx.cluster.lose_unsynced(self._node)
        return {"node": self._node, **lost}


class LoseUnsyncedAll(Fault):
    """Correlated power loss: every node stopped at one instant, then killed, losing what its
    disk had not synced; restarted on stop."""

    name = "lose-unsynced-all"
    resource = "process"
    aimable = False

    def __init__(self) -> None:
        self._nodes: list[int] = []

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """Every node."""
        return {"target": "all", "nodes": sorted(nodes)}

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Stop them all, then kill each and lose its unsynced writes."""
        self._nodes = sorted(nodes)
        for node in self._nodes:
            await ctx.cluster.pause(node)
        lost = {}
        for node in self._nodes:
            lost[str(node)] = await ctx.cluster.lose_unsynced(node)
        return {"target": params["target"], "nodes": self._nodes, "lost": lost}

    async def stop(self, ctx: FaultContext) -> object:
        """Restart every node it powered off."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            await ctx.cluster.restart(node)
        return {"nodes": nodes}


class LoseUnsyncedMajority(LoseUnsyncedAll):
    """Correlated power loss of a majority of the nodes, chosen when the schedule is planned."""

    name = "lose-unsynced-majority"

    @staticmethod
    def plan(rng: random.Random, nodes: list[int], topics: list[str]) -> Params:
        """A random majority."""
        return {"target": "majority", "nodes": sorted(rng.sample(nodes, len(nodes) // 2 + 1))}


class Wipe(Disk):
    """A lost disk: kill a topic's leader and delete its store; restart it (empty) on stop."""

    name = "wipe"

    async def start(self, ctx: FaultContext, params: Params, nodes: list[int]) -> object:
        """Kill and delete."""
        self._node = nodes[0]
        await ctx.cluster.kill(self._node)
        store = ctx.cluster.data_dir(self._node) / NODE_STORE
        files = _segments(ctx.cluster.data_dir(self._node))
        size = sum(path.stat().st_size for _, _, path in files)
        await trio.to_thread.run_sync(lambda: shutil.rmtree(store, ignore_errors=True))
        return {
            "node": self._node,
            "deleted": str(store),
            "segments": [[topic, segment] for topic, segment, _ in files],
            "bytes": size,
        }
