"""A replicated segment's copies after its leader: sealing from the replicas, and repair.

When the metadata takes over a segment (its leader's lease lapsed, or it lost its disk), the
count no longer waits for the old leader. The node leading Raft asks every replica to ``SEAL``
its copy: a sealed copy takes no append after it answers, which fences the old leader whatever
its lease or its view of the metadata says. Once a majority has answered, the count is the
longest of their copies — an acknowledged entry is on a majority, and two majorities meet, so
it is on one of them (the majority read of ``spec/model.py``'s ``SealFromReplicas``). Each
answering copy shorter than that is brought to it (``FILL``: the replica fetches what it lacks
from a longest copy and installs its copy afresh, sealed) and the count is proposed only once a
majority holds it: a tail on one copy alone would go with that copy's disk. With no majority
answering the segment stays ``sealed-pending-count``.

Repair is the same filling, done by a replica itself: a copy that is missing or shorter than
its segment's sealed count is fetched from another replica before this node serves it. The
verbs, over the authenticated node RPC::

    SEAL <topic> <segment>                 seal this copy; OK <count>
    FETCH <topic> <segment> <from> <n>     up to n entries of this copy from ``from``
    FILL <topic> <segment> <count> <src,…> bring this copy to ``count`` from one of the sources
"""

import logging

import trio

from walrus import protocol
from walrus.context import Context
from walrus.metadata import ProposalError
from walrus.metastate import SegmentMeta
from walrus.replication import BATCH_ENTRIES, pack, unpack
from walrus.storage import StorageError

log = logging.getLogger("walrus.segment_recovery")

RETRY_AFTER = 0.5
"""Seconds between two attempts to seal a segment from its replicas, or to repair a copy."""


class Recovery:
    """The replica verbs, the Raft leader's sealing from replicas, and a replica's repair."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._sealing: set[tuple[str, int]] = set()
        self._repairing: set[tuple[str, int]] = set()

    # --- the verbs -----------------------------------------------------------------------

    async def serve(self, command: bytes) -> bytes:
        """Answer a SEAL, FETCH or FILL (from a peer, or from this node itself)."""
        parts = command.decode(errors="replace").split(" ")
        verb, args = parts[0], parts[1:]
        shapes = {"SEAL": 2, "FETCH": 4, "FILL": 4}
        if len(args) != shapes.get(verb) or not all(n.isdigit() for n in args[1:3]):
            return protocol.err(f"malformed {verb}: {command[:80]!r}")
        topic, segment = args[0], int(args[1])
        seg = self.ctx.view.segment(topic, segment)
        if seg is None or self.ctx.me not in seg.replicas:
            return protocol.err(f"node {self.ctx.me} holds no copy of {topic}/{segment}")
        if self.ctx.store_lost:
            return protocol.unavailable(f"node {self.ctx.me} lost its store")
        if verb != "FILL" and self.ctx.me in seg.lost:
            return protocol.err(f"lost: node {self.ctx.me}'s copy of {topic}/{segment} is lost")
        try:
            if verb == "SEAL":
                return await self._seal(topic, segment)
            if verb == "FETCH":
                return await self._fetch(topic, segment, int(args[2]), int(args[3]))
            sources = [int(n) for n in args[3].split(",") if n.isdigit()]
            if await self.fill(topic, segment, int(args[2]), sources):
                return b"OK %d" % int(args[2])
            return protocol.unavailable(f"no source gave {topic}/{segment} its entries")
        except StorageError as exc:
            return protocol.unavailable(f"storage: {exc}")

    async def _seal(self, topic: str, segment: int) -> bytes:
        store = self.ctx.store
        if not store.has_segment(topic, segment):
            store.create_segment(topic, segment)  # it never received an entry
        if store.info(topic, segment).sealed:
            return b"OK %d" % store.count(topic, segment)
        count = await store.seal_async(topic, segment)
        self.ctx.events.record("seal", topic=topic, segment=segment, count=count)
        return b"OK %d" % count

    async def _fetch(self, topic: str, segment: int, first: int, n: int) -> bytes:
        store = self.ctx.store
        if not store.has_segment(topic, segment):
            return protocol.unavailable(f"no copy of {topic}/{segment} here")
        payloads = await store.read_async(topic, segment, first, min(n, BATCH_ENTRIES))
        return b"OK" + pack(payloads)

    async def fill(self, topic: str, segment: int, count: int, sources: list[int]) -> bool:
        """Bring this node's copy to ``count`` entries, sealed, fetching what it lacks from
        the first source that has it; False if none did."""
        store = self.ctx.store
        seg = self.ctx.view.segment(topic, segment)
        lost = seg is None or self.ctx.me in seg.lost
        mine = store.count(topic, segment) if store.has_segment(topic, segment) else 0
        if lost:
            mine = 0  # whatever is here was made after the loss: start afresh
        elif mine >= count:
            if not store.info(topic, segment).sealed:
                await store.seal_async(topic, segment)
            return True
        have = await store.read_async(topic, segment, 0, mine) if mine else []
        if count == 0:
            await store.install_sealed_async(topic, segment, [])
            return True
        for source in sources:
            got = list(have)
            while len(got) < count:
                reply = await self.ask(
                    source, f"FETCH {topic} {segment} {len(got)} {count - len(got)}".encode()
                )
                if not reply.startswith(b"OK "):
                    break
                try:
                    _, payloads = unpack(reply, "FETCH")
                except protocol.ProtocolError:
                    break
                if not payloads:
                    break
                got.extend(payloads)
            if len(got) >= count:
                await store.install_sealed_async(topic, segment, got[:count])
                self.ctx.events.record("seal", topic=topic, segment=segment, count=count)
                log.info("%s/%d brought to %d entries from node %d", topic, segment, count, source)
                return True
        return False

    async def ask(self, node: int, command: bytes) -> bytes:
        """A verb sent to ``node``'s copy: this node's own, or a peer's over the RPC."""
        if node == self.ctx.me:
            return await self.serve(command)
        return await self.ctx.call(node, command)

    # --- sealing a taken-over segment (the Raft leader) -------------------------------------

    def seal_pending(self, topic: str, seg: SegmentMeta) -> None:
        """Start sealing a taken-over replicated segment from its replicas (once at a time)."""
        key = (topic, seg.id)
        if key not in self._sealing:
            self._sealing.add(key)
            self.ctx.background(self._seal_pending, topic, seg)

    async def _seal_pending(self, topic: str, seg: SegmentMeta) -> None:
        try:
            if not await self.seal_from_replicas(topic, seg):
                await trio.sleep(RETRY_AFTER)
        finally:
            self._sealing.discard((topic, seg.id))

    async def seal_from_replicas(self, topic: str, seg: SegmentMeta) -> bool:
        """Seal the replicas that answer, bring a majority to the longest, commit the count;
        False (logged) if no majority answered or held the count."""
        majority = len(seg.replicas) // 2 + 1
        counts: dict[int, int] = {}
        refused: dict[int, str] = {}

        asked = [n for n in seg.replicas if n not in seg.lost]

        async def seal(node: int, done: trio.CancelScope) -> None:
            reply = await self.ask(node, f"SEAL {topic} {seg.id}".encode())
            if reply.startswith(b"OK ") and reply[3:].isdigit():
                counts[node] = int(reply[3:])
            else:
                refused[node] = reply.decode(errors="replace")[:120]
            if len(counts) >= majority or len(counts) + len(refused) == len(asked):
                done.cancel()  # a majority is enough: a dead replica is not waited for

        async with trio.open_nursery() as nursery:
            for node in asked:
                nursery.start_soon(seal, node, nursery.cancel_scope)
        if len(counts) < majority:
            log.warning(
                "%s/%d: %d replicas answered, %d needed; %s",
                topic,
                seg.id,
                len(counts),
                majority,
                refused,
            )
            return False
        count = max(counts.values())
        sources = [n for n, c in counts.items() if c == count]
        holding = set(sources)

        async def fill(node: int) -> None:
            where = ",".join(map(str, sources))
            reply = await self.ask(node, f"FILL {topic} {seg.id} {count} {where}".encode())
            if reply.startswith(b"OK "):
                holding.add(node)
            else:
                refused[node] = reply.decode(errors="replace")[:120]

        async with trio.open_nursery() as nursery:
            for node, have in counts.items():
                if have < count:
                    nursery.start_soon(fill, node)
        if len(holding) < majority:
            log.warning(
                "%s/%d: only %d copies hold %d entries; %s",
                topic,
                seg.id,
                len(holding),
                count,
                refused,
            )
            return False
        try:
            result = await self.ctx.propose("report_count", topic, seg.id, count)
        except ProposalError as exc:
            log.warning("%s/%d: count %d not committed: %s", topic, seg.id, count, exc)
            return False
        log.info("%s/%d sealed from replicas %s at %d: %s", topic, seg.id, counts, count, result)
        return True

    # --- repair (a replica) ----------------------------------------------------------------

    def repair(self, topic: str, seg: SegmentMeta) -> None:
        """Bring this node's copy of a sealed segment to its count from another replica, in
        the background, retrying until it is (once at a time)."""
        key = (topic, seg.id)
        if key not in self._repairing:
            self._repairing.add(key)
            self.ctx.background(self._repair, topic, seg)

    async def _repair(self, topic: str, seg: SegmentMeta) -> None:
        ctx = self.ctx
        others = [n for n in seg.replicas if n != ctx.me and n not in seg.lost]
        try:
            while not await self.fill(topic, seg.id, seg.known_count, others):
                await trio.sleep(RETRY_AFTER)
            while ctx.me in self.ctx.view.known_segment(topic, seg.id).lost:
                try:
                    if (await ctx.propose("repaired", topic, seg.id, ctx.me)).startswith("stale"):
                        break
                except ProposalError as exc:
                    log.warning("%s/%d repaired, not yet recorded: %s", topic, seg.id, exc)
        finally:
            self._repairing.discard((topic, seg.id))
