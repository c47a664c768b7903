"""The read path: the topic's shared cursor, GET/GETX, and the non-destructive SCAN.

A GET is served in two places. The node the client asked finds the cursor's segment (from the
metadata) and sends ``POP <topic> <segment>`` to the node that holds that segment's data — itself
or a peer. That holder keeps the read position (durably, in its store's cursor file) and hands
out the next entry, or answers:

- ``END``: the segment is sealed, its count known, and every entry handed out; the asking node
  then proposes ``advance_cursor`` and asks the next segment's holder (a segment the metadata
  marks ``lost`` is passed over the same way, without asking anyone);
- ``EMPTY``: the segment is the open one, this holder leads it under a valid lease and is not
  rolling it over, and every entry is handed out — only then is the queue certainly empty;
- ``ERR unavailable ...``: it cannot tell (count pending, no lease, rollover under way); the
  asking node waits for the metadata to move and asks again, until its timeout.

POPs for one topic are served in batches: positions are handed out together and persisted with
one atomic write before any reply leaves, so a crash can lose a delivery's reply but never deliver
an entry twice.

A replicated segment (``--replicas`` above 1) keeps its read position in the metadata instead:
each batch commits ``take`` (the position moves from where the holder saw it, or not at all)
before its replies leave, so the position survives the loss of any node, and a sealed segment
is served by any replica holding a whole copy — its leader first while it lives. The open
segment is still served by its leader alone, up to the entries a majority of copies hold.

``--compat walrus`` runs the same path as Walrus 0.3: each node keeps its own cursor in memory
(segment and how many it delivered) and skips a sealed segment once its own count is reached; the
holder answers EMPTY at the end of whatever it stores, lease or not.
"""

import logging
from collections import defaultdict, deque

import trio

from walrus import protocol
from walrus.context import Context, proposal_failure
from walrus.metadata import ProposalError
from walrus.metastate import LOST, OPEN, PENDING, SEALED, SegmentMeta, TopicMeta
from walrus.protocol import Request
from walrus.server import Awaiting, Deferred, Pending
from walrus.storage import Cursor, StorageError

log = logging.getLogger("walrus.reads")

END = b"END"


class Reader:
    """GETs asked of this node, and POPs of the segments this node holds."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._pops: dict[str, deque[tuple[int, str, Deferred]]] = defaultdict(deque)
        self._pop_wakeup: dict[str, trio.Event] = {}
        self._slots: dict[str, Cursor] = {}
        self._compat_cursors: dict[str, list[int]] = {}
        self._compat_lock = trio.Lock()

    # --- GET, at the node the client asked --------------------------------------------------

    def get(self, req: Request, hops: int) -> bytes | Pending:
        """Start a GET/GETX."""
        ctx = self.ctx
        topic = ctx.view.topic(req.topic)
        if topic is None:
            return protocol.unknown_topic(req.topic)
        seg = topic.segment(topic.cursor)
        if (
            not ctx.config.compat
            and seg is not None
            and seg.state != LOST
            and self._holders(seg) == [ctx.me]
        ):
            # This node is the one holder to ask: queue the POP now, with no task of its own
            # (the common case, and a GET's whole cost).
            popped = self.pop(topic.name, seg.id, req.tag)
            return Awaiting(lambda: self._got(popped, req, hops), popped.done)
        return ctx.spawn(self._get, req, hops)

    async def _got(self, popped: Deferred, req: Request, hops: int) -> bytes:
        """The reply to a GET whose POP was queued here: an entry or EMPTY as it stands; past
        the segment's end, or unavailable, the full path from the start (POP is idempotent
        when it hands nothing out)."""
        reply = await popped.reply()
        if reply.startswith(b"OK "):
            return _entry_reply(req, reply)
        if reply != END and not reply.startswith(b"ERR unavailable"):
            return reply  # EMPTY, or an error retrying would not mend
        return await self._get(req, hops)

    async def _get(self, req: Request, hops: int) -> bytes:
        if self.ctx.config.compat:
            async with self._compat_lock:
                return await self._get_loop(req, hops)
        return await self._get_loop(req, hops)

    async def _get_loop(self, req: Request, hops: int) -> bytes:
        ctx = self.ctx
        compat = ctx.config.compat
        deadline = trio.current_time() + ctx.config.forward_timeout
        while True:
            topic = ctx.view.known_topic(req.topic)  # get saw it registered
            if compat:
                cursor = self._compat_cursors.setdefault(topic.name, [1, 0])
                segment, delivered = cursor
            else:
                segment, delivered = topic.cursor, 0
            seg = topic.segment(segment)
            assert seg is not None  # the cursor's segment, or the one after a sealed one
            if compat and seg.state == SEALED and delivered >= seg.known_count:
                self._compat_cursors[topic.name] = [segment + 1, 0]
                continue
            if seg.state == LOST:
                reply = END
            else:
                reply = await self._ask_holders(seg, topic.name, req.tag, hops)
            if reply.startswith(b"OK "):
                if compat:
                    cursor[1] += 1
                return _entry_reply(req, reply)
            if reply == END or (compat and reply == protocol.EMPTY and seg.state == SEALED):
                if compat:
                    self._compat_cursors[topic.name] = [segment + 1, 0]
                    continue
                if not await self._advance(topic, segment):
                    return protocol.unavailable(
                        f"could not move the cursor of {topic.name} past segment {segment}"
                    )
                continue
            if reply == protocol.EMPTY or not reply.startswith(b"ERR unavailable"):
                return reply
            if trio.current_time() >= deadline:
                return reply
            await ctx.wait_view_change(min(0.5, max(0.0, deadline - trio.current_time())))

    def _holders(self, seg: SegmentMeta) -> list[int]:
        """The nodes to ask for a POP of ``seg``, in order: its leader; for a sealed replicated
        segment, every replica whose copy is not lost, live ones and the leader first."""
        if seg.state == SEALED and len(seg.replicas) > 1:
            alive = self.ctx.view.alive
            usable = [r for r in seg.replicas if r not in seg.lost]
            return sorted(usable, key=lambda r: (r not in alive, r != seg.leader, r))
        return [seg.leader]

    async def _ask_holders(self, seg: SegmentMeta, topic: str, tag: str, hops: int) -> bytes:
        """POP from the segment's leader — or, for a sealed replicated segment, from the first
        of its replicas (live ones first) that can hand it out; the last answer if none can."""
        reply = protocol.unavailable(f"no replica of segment {seg.id} of {topic} can serve it")
        for holder in self._holders(seg):
            reply = await self._ask_pop(holder, topic, seg.id, tag, hops)
            if not reply.startswith(b"ERR unavailable"):
                return reply
        return reply

    async def _ask_pop(self, holder: int, topic: str, segment: int, tag: str, hops: int) -> bytes:
        if holder == self.ctx.me:
            return await self.pop(topic, segment, tag).reply()
        reply = self.ctx.forward(holder, f"POP {topic} {segment} {tag}".rstrip().encode(), hops)
        return reply if isinstance(reply, bytes) else await reply.reply()

    async def _advance(self, topic: TopicMeta, segment: int) -> bool:
        try:
            await self.ctx.propose("advance_cursor", topic.name, segment)
        except ProposalError as exc:
            log.warning("advancing the cursor of %s: %s", topic.name, exc)
            return False
        return True

    # --- POP, at the node holding the segment -------------------------------------------------

    def pop(self, topic: str, segment: int, tag: str = "") -> Deferred:
        """Queue a POP of ``segment`` (for the GETX tagged ``tag``, if any); batches are served
        by the topic's POP task."""
        reply = Deferred()
        queue = self._pops[topic]
        queue.append((segment, tag, reply))
        if topic not in self._pop_wakeup:
            self._pop_wakeup[topic] = trio.Event()
            self.ctx.background(self._serve_pops, topic)
        else:
            self._pop_wakeup[topic].set()
        return reply

    async def _serve_pops(self, topic: str) -> None:
        queue = self._pops[topic]
        while True:
            while not queue:
                self._pop_wakeup[topic] = wakeup = trio.Event()
                await wakeup.wait()
            batch = list(queue)
            queue.clear()
            try:
                await self._serve_batch(topic, batch)
            except Exception:
                log.exception("serving POPs of %s failed", topic)
                for _, _, reply in batch:
                    reply.set(b"ERR internal error (see the node log)")

    def _slot(self, topic: str) -> Cursor:
        if topic not in self._slots:
            self._slots[topic] = self.ctx.store.cursor(topic) or Cursor(0, 0)
        return self._slots[topic]

    async def _serve_batch(self, topic: str, batch: list[tuple[int, str, Deferred]]) -> None:
        ctx = self.ctx
        by_segment: dict[int, list[tuple[str, Deferred]]] = defaultdict(list)
        for segment, tag, reply in batch:
            by_segment[segment].append((tag, reply))
        for segment, waiting in sorted(by_segment.items()):
            replies = [reply for _, reply in waiting]
            meta = ctx.view.topic(topic)
            seg = meta.segment(segment) if meta else None
            refusal = self._refusal(topic, segment, seg)
            if refusal is not None:
                for reply in replies:
                    reply.set(refusal)
                continue
            assert meta is not None and seg is not None  # else _refusal refused
            replicated = len(seg.replicas) > 1
            if replicated:
                at = (meta.cursor, meta.position)
            else:
                slot = self._slot(topic)
                at = (slot.segment, slot.offset)
            if at[0] > segment or (replicated and at[0] < segment):
                answer = END if at[0] > segment else protocol.unavailable("the cursor moved")
                for reply in replies:
                    reply.set(answer)
                continue
            position = at[1] if at[0] == segment else 0
            stored = ctx.store.count(topic, segment) if ctx.store.has_segment(topic, segment) else 0
            if ctx.config.compat or seg.state == OPEN:
                available = min(stored, ctx.replication.high_water(topic, segment))
            elif seg.state == SEALED:
                available = seg.known_count
            else:
                available = position  # count pending: nothing may be handed out or ended
            take = max(0, min(len(replies), available - position))
            if take:
                try:
                    entries = ctx.store.read(topic, segment, position, take)
                except StorageError as exc:
                    for reply in replies:
                        reply.set(protocol.unavailable(f"storage: {exc}"))
                    continue
                # Logged before the position is persisted: a crash in between leaves an entry
                # logged as handed out that is handed out again later (the checker then
                # ignores the first), never one handed out but not logged.
                ctx.events.record(
                    "cursor",
                    topic=topic,
                    segment=segment,
                    offset=position + take,
                    first=position,
                    tags=[tag for tag, _ in waiting[:take]],
                    values=[
                        p.decode("utf-8", "replace") if len(p) <= 1024 else None for p in entries
                    ],
                )
                failure = await self._persist(topic, segment, position, take, replicated)
                if failure is not None:
                    for reply in replies:
                        reply.set(failure)
                    continue
                for i, (reply, payload) in enumerate(zip(replies, entries, strict=False)):
                    reply.set(protocol.getx_reply(segment, position + i, payload))
            if take < len(replies):
                tail = (
                    self._at_tail(topic, seg)
                    if position + take >= stored
                    else protocol.unavailable(
                        f"entries of segment {segment} of {topic} are not yet on a majority of "
                        "its copies"
                    )
                )
                for reply in replies[take:]:
                    reply.set(tail)

    def _refusal(self, topic: str, segment: int, seg: SegmentMeta | None) -> bytes | None:
        """Why this node cannot serve POPs of ``segment`` (None: it can). One copy: only its
        leader; replicated: the leader of the open segment, any replica holding a whole copy
        of a sealed one."""
        ctx = self.ctx
        refusal = protocol.unavailable(f"node {ctx.me} does not hold segment {segment} of {topic}")
        if seg is None or seg.state == LOST or ctx.store_lost or ctx.me not in seg.replicas:
            return refusal
        if seg.state != SEALED or len(seg.replicas) == 1:
            return None if seg.leader == ctx.me else refusal
        key = (topic, segment)
        whole = ctx.store.has_segment(*key) and ctx.store.count(*key) >= seg.known_count
        return None if whole and ctx.me not in seg.lost else refusal

    async def _persist(
        self, topic: str, segment: int, position: int, take: int, replicated: bool
    ) -> bytes | None:
        """Move the read position past ``take`` entries before they are handed out: in the
        metadata for a replicated segment (``take``, so that it survives any one node), else
        in this node's store. The reply for every POP of the batch if it did not move."""
        ctx = self.ctx
        if replicated:
            try:
                result = await ctx.propose("take", topic, segment, position, take)
            except ProposalError as exc:
                return proposal_failure(exc)
            if result != "took":
                return protocol.unavailable(f"the read position moved on ({result})")
            return None
        new = Cursor(segment, position + take)
        try:
            await ctx.store.set_cursor_async(topic, new)
        except StorageError as exc:
            return protocol.unavailable(f"storage: {exc}")
        self._slots[topic] = new
        return None

    def _at_tail(self, topic: str, seg: SegmentMeta) -> bytes:
        """The answer for a POP finding everything in ``seg`` handed out."""
        ctx = self.ctx
        if ctx.config.compat:
            return protocol.EMPTY
        if seg.state == PENDING:
            return protocol.unavailable(
                f"segment {seg.id} of {topic} awaits its count from node {seg.leader}"
            )
        if seg.state == SEALED:
            return END
        key = (topic, seg.id)
        if key in self.ctx.rolling:
            return protocol.unavailable(f"segment {seg.id} of {topic} is rolling over")
        if not ctx.lease.holds(ctx.clock.now()):
            return protocol.unavailable(
                f"node {ctx.me} holds no lease, so it cannot tell the queue is empty"
            )
        if ctx.store.has_segment(*key) and ctx.store.info(*key).sealed:
            return protocol.unavailable(
                f"segment {seg.id} of {topic} is sealed here, not yet in the metadata"
            )
        return protocol.EMPTY

    # --- SCAN ---------------------------------------------------------------------------------

    def scan(self, req: Request, hops: int) -> bytes | Pending:
        """Non-destructive read of stored entries, answered by the segment's holder."""
        ctx = self.ctx
        topic = ctx.view.topic(req.topic)
        if topic is None:
            return protocol.unknown_topic(req.topic)
        segment, start, count = req.scan
        seg = topic.segment(segment)
        if seg is None:
            return protocol.err(f"no segment {segment} in {req.topic}")
        holder = seg.leader
        if len(seg.replicas) > 1 and seg.state != OPEN:
            # a replica whose copy is not lost (whole, once sealed): this node if it is one,
            # else the leader first
            usable = [r for r in seg.replicas if r not in seg.lost]
            if ctx.me in usable and (
                seg.state != SEALED or self._refusal(req.topic, segment, seg) is None
            ):
                holder = ctx.me
            elif usable:
                holder = min(usable, key=lambda r: (r != seg.leader, r))
        if holder != ctx.me:
            return ctx.forward(holder, req.encode(), hops)
        key = (req.topic, segment)
        stored = ctx.store.count(*key) if ctx.store.has_segment(*key) else 0
        try:
            entries = ctx.store.read(*key, min(start, stored), count) if stored else []
        except StorageError as exc:
            return protocol.unavailable(f"storage: {exc}")
        return protocol.json_reply(
            {
                "topic": req.topic,
                "segment": segment,
                "from": start,
                "node": ctx.me,
                "stored": stored,
                "state": seg.state,
                "count": seg.count,
                "entries": [e.decode("utf-8", "replace") for e in entries],
            }
        )


def _entry_reply(req: Request, reply: bytes) -> bytes:
    """A holder's ``OK <segment> <offset> <payload>`` as the client's reply: whole for GETX,
    the payload alone for GET."""
    return reply if req.command == "GETX" else protocol.ok(reply.split(b" ", 3)[3])
