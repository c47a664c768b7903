"""The write path: appends under a lease, rollover, and the count report after a takeover.

An append is sequenced by the store only if, atomically with the sequencing (the store's
guard), the segment has room and this node's lease holds; the clock is read *after* the offset
is taken, so a pause anywhere before that read only makes the check stricter. The holder of a
full segment seals it locally first (no append can land after the count is taken), then
proposes the rollover with that exact count. A node whose open segments were taken over while
it was silent seals them on return and reports the true count. A node that comes back with its
store gone (a lost disk) has the metadata mark every segment it held ``lost`` before it writes
again: with one copy per segment, what they held is gone, and saying so lets readers move on.

In ``--compat walrus`` mode the same path runs with those mechanisms off, as Walrus 0.3 does:
no lease expiry and no room check; an in-memory count (lost on restart) is read after each
append and proposed, unfenced, once it reaches the limit, while appends keep landing; the
rollover applies to whatever segment is current.
"""

import logging

import trio

from walrus import protocol, storage
from walrus.context import Context, proposal_failure
from walrus.metadata import ProposalError, Published
from walrus.metastate import LOST, OPEN, PENDING, SEALED, SegmentMeta, TopicMeta
from walrus.protocol import Request
from walrus.segment_recovery import Recovery
from walrus.server import Awaiting, Pending
from walrus.storage import SegmentSealed, StorageError

log = logging.getLogger("walrus.writes")


class SegmentFull(Exception):
    """The open segment has reached its entry limit; a rollover is due."""


class LeaseExpired(Exception):
    """This node's lease does not hold; it may not append."""


class Writer:
    """Appends for the topics whose open segment this node leads."""

    def __init__(self, ctx: Context, recovery: Recovery) -> None:
        self.ctx = ctx
        self.recovery = recovery
        self._reporting: set[tuple[str, int]] = set()
        self._sealed_here: set[tuple[str, int]] = set()
        self._creating: set[tuple[str, int]] = set()
        self._compat_counts: dict[tuple[str, int], int] = {}
        self._last_applied = -1

    # --- PUT -------------------------------------------------------------------------------

    def put(self, req: Request, hops: int) -> bytes | Pending:
        """Start a PUT/PUTX: append here, or forward to the open segment's leader."""
        ctx = self.ctx
        topic = ctx.view.topic(req.topic)
        if topic is None:
            return protocol.unknown_topic(req.topic)
        seg = topic.current
        if seg.leader != ctx.me:
            return ctx.forward(seg.leader, req.encode(), hops)
        if ctx.store_lost:
            return protocol.unavailable(
                f"node {ctx.me} lost its store; the metadata does not record it yet"
            )
        key = (topic.name, seg.id)
        if key in self.ctx.rolling:
            return ctx.spawn(self._put_after_change, req, hops, seg)
        store = ctx.store
        try:
            if not store.has_segment(*key):
                store.create_segment(*key)
            pending = store.begin_append(
                topic.name, seg.id, (req.payload,), self._guard(topic, seg)
            )
        except SegmentFull:
            self._start_rollover(topic, seg)
            return ctx.spawn(self._put_after_change, req, hops, seg)
        except SegmentSealed:
            # Sealed here but still open in the metadata: a rollover that did not commit
            # before a restart. Propose it again (sealing is idempotent).
            if not ctx.config.compat:
                self._start_rollover(topic, seg)
            return ctx.spawn(self._put_after_change, req, hops, seg)
        except LeaseExpired:
            return ctx.spawn(self._put_with_lease, req, hops)
        except StorageError as exc:
            return protocol.unavailable(f"storage: {exc}")
        if not ctx.config.compat and pending.first + 1 >= ctx.config.max_segment_entries:
            self._start_rollover(topic, seg)
        if len(seg.replicas) > 1:
            rep = ctx.replication.lead(topic.name, seg.id, seg.epoch, seg.replicas)
            rep.sequenced(pending.first, (req.payload,))
            length = pending.first + 1

            def ready() -> bool:  # written here and on a majority of the copies
                return pending.done() and rep.on_majority >= length

        else:
            ready = pending.done
        return Awaiting(lambda: self._acknowledge(pending, req, topic, seg), ready)

    def _guard(self, topic: TopicMeta, seg: SegmentMeta) -> storage.Guard:
        ctx = self.ctx
        limit = ctx.config.max_segment_entries
        compat = ctx.config.compat
        clock, lease, events = ctx.clock, ctx.lease, ctx.events

        def guard(first: int, count: int) -> None:
            now = clock.now()
            if not compat:
                if first + count > limit:
                    raise SegmentFull
                if not lease.holds(now):
                    raise LeaseExpired
            events.record_append(topic.name, seg.id, first, count, seg.epoch, now)

        return guard

    async def _acknowledge(
        self, pending: storage.Request, req: Request, topic: TopicMeta, seg: SegmentMeta
    ) -> bytes:
        try:
            offset = await pending.wait()
        except StorageError as exc:
            return protocol.indeterminate(f"storage failed while writing: {exc}")
        if len(seg.replicas) > 1:
            replication = self.ctx.replication
            replication.grew(topic.name, seg.id)
            rep = replication.lead(topic.name, seg.id, seg.epoch, seg.replicas)
            timeout = self.ctx.config.forward_timeout
            if not await replication.wait_majority(rep, offset + 1, timeout):
                return protocol.indeterminate(
                    f"written at node {self.ctx.me}, but not on a majority of segment {seg.id}'s "
                    f"{len(seg.replicas)} copies within {self.ctx.config.forward_timeout:g} s"
                )
        self.ctx.events.flush()
        if self.ctx.config.compat:
            await self._compat_count(topic.name, seg)
        if req.command == "PUTX":
            return protocol.putx_reply(seg.id, offset, self.ctx.me, seg.epoch)
        return protocol.OK

    async def _put_after_change(self, req: Request, hops: int, seg: SegmentMeta) -> bytes:
        """A PUT that met a segment being rolled over: once the metadata moves on, run it
        (it was refused before sequencing, so this is its first execution, not a retry)."""
        ctx = self.ctx
        deadline = ctx.config.proposal_timeout
        while True:
            topic = ctx.view.known_topic(req.topic)
            if topic.current.id != seg.id:
                break
            if not await ctx.wait_view_change(deadline):
                return protocol.unavailable(
                    f"segment {seg.id} of {req.topic} is still rolling over"
                )
        reply = self.put(req, hops)
        return reply if isinstance(reply, bytes) else await reply.reply()

    async def _put_with_lease(self, req: Request, hops: int) -> bytes:
        """A PUT refused (before sequencing) for want of a lease: wait one lease duration for a
        renew to commit or the metadata to move, then run it once more."""
        ctx = self.ctx
        deadline = trio.current_time() + ctx.config.lease.duration
        while not ctx.lease.holds(ctx.clock.now()):
            if trio.current_time() >= deadline:
                return protocol.unavailable(f"node {ctx.me} holds no lease; it cannot append now")
            await ctx.wait_view_change(min(0.1, deadline - trio.current_time()))
        reply = self.put(req, hops)
        return reply if isinstance(reply, bytes) else await reply.reply()

    # --- rollover --------------------------------------------------------------------------

    def _start_rollover(self, topic: TopicMeta, seg: SegmentMeta) -> None:
        key = (topic.name, seg.id)
        if key not in self.ctx.rolling:
            self.ctx.rolling.add(key)
            self.ctx.background(self._rollover, topic.name, seg)

    async def _rollover(self, name: str, seg: SegmentMeta) -> None:
        ctx = self.ctx
        key = (name, seg.id)
        try:
            count = await ctx.store.seal_async(name, seg.id)
            self._sealed_here.add(key)
            ctx.events.record("seal", topic=name, segment=seg.id, count=count)
            if len(seg.replicas) > 1:
                await self._until_on_majority(name, seg, count)
            while True:
                current = ctx.view.known_segment(name, seg.id)
                if current.state != OPEN:
                    return
                try:
                    await ctx.propose("rollover", name, seg.id, seg.epoch, count)
                    return
                except ProposalError as exc:
                    log.warning("rollover of %s/%d: %s; retrying", name, seg.id, exc)
        finally:
            self.ctx.rolling.discard(key)

    async def _until_on_majority(self, name: str, seg: SegmentMeta, count: int) -> None:
        """Wait until a majority of the segment's copies hold ``count`` entries (a rollover's
        count must be), or the metadata moved the segment on."""
        ctx = self.ctx
        ctx.replication.grew(name, seg.id)
        rep = ctx.replication.lead(name, seg.id, seg.epoch, seg.replicas)
        while ctx.view.known_segment(name, seg.id).state == OPEN:
            if await ctx.replication.wait_majority(rep, count, ctx.config.lease.duration):
                return
            log.warning("rollover of %s/%d: %d entries not yet on a majority", name, seg.id, count)

    async def _compat_count(self, name: str, seg: SegmentMeta) -> None:
        """Walrus 0.3: count in memory, and past the limit propose a rollover at that count,
        without fencing, before answering the PUT (failure is only logged)."""
        key = (name, seg.id)
        count = self._compat_counts.get(key, 0) + 1
        self._compat_counts[key] = count
        if count >= self.ctx.config.max_segment_entries:
            await self._compat_rollover(name, seg, count)

    async def _compat_rollover(self, name: str, seg: SegmentMeta, count: int) -> None:
        try:
            await self.ctx.propose("rollover", name, seg.id, seg.epoch, count)
        except ProposalError as exc:
            log.warning("compat rollover of %s/%d failed: %s", name, seg.id, exc)

    async def compat_monitor(self) -> None:
        """Walrus 0.3's monitor pass: propose rollovers for full segments this node leads."""
        for topic in list(self.ctx.view.topics.values()):
            seg = topic.current
            count = self._compat_counts.get((topic.name, seg.id), 0)
            if seg.leader == self.ctx.me and count >= self.ctx.config.max_segment_entries:
                await self._compat_rollover(topic.name, seg, count)

    # --- keeping local segments in step with the metadata ----------------------------------

    def follow(self, pub: Published) -> None:
        """Publish a new metadata view to the context and bring local segments in step with
        it: create open segments led here, seal segments the metadata sealed, report counts of
        segments taken over from here — for the topics that changed, or for every segment when
        applies were skipped (a restart or a snapshot install)."""
        ctx = self.ctx
        previous = ctx.pub
        ctx.publish(pub)
        applied = pub.view.applied
        if previous is None or previous.view.topics is not pub.view.topics:
            if previous is None or applied != self._last_applied + 1:
                self._reconcile_all()
            else:
                for name, topic in pub.view.topics.items():
                    if previous.view.topics.get(name) is not topic:
                        for seg in topic.segments[-2:]:
                            self._reconcile_segment(topic, seg)
        self._last_applied = applied

    def _reconcile_all(self) -> None:
        for topic in self.ctx.view.topics.values():
            for seg in topic.segments:
                self._reconcile_segment(topic, seg)

    def _reconcile_segment(self, topic: TopicMeta, seg: SegmentMeta) -> None:
        ctx = self.ctx
        if seg.state == LOST or ctx.store_lost or ctx.me not in seg.replicas:
            return
        if len(seg.replicas) > 1 and seg.state != OPEN:
            # A taken-over segment is sealed from its replicas by the Raft leader
            # (walrus.segment_recovery); once sealed, each replica settles its own copy.
            if seg.state == SEALED:
                self._settle_copy(topic, seg)
            return
        if seg.leader != ctx.me:
            return
        key = (topic.name, seg.id)
        if seg.state == OPEN:
            if not ctx.store.has_segment(*key) and key not in self._creating:
                self._creating.add(key)
                ctx.background(self._create, key)
            if len(seg.replicas) > 1:
                ctx.replication.lead(topic.name, seg.id, seg.epoch, seg.replicas)
        elif seg.state == PENDING:
            if key not in self._reporting:
                self._reporting.add(key)
                ctx.background(self._report, topic.name, seg)
        elif seg.state == SEALED and key not in self._sealed_here and key not in self.ctx.rolling:
            self._sealed_here.add(key)
            ctx.background(self._seal_here, topic.name, seg)

    def _settle_copy(self, topic: TopicMeta, seg: SegmentMeta) -> None:
        """This node's copy of a sealed replicated segment: sealed here if it holds the count
        (a longer one holds an old leader's unacknowledged tail, never read), else repaired
        from another replica."""
        store = self.ctx.store
        key = (topic.name, seg.id)
        if key in self._sealed_here:
            return
        whole = store.has_segment(*key) and store.count(*key) >= seg.known_count
        if self.ctx.me in seg.lost or not whole:
            self.recovery.repair(topic.name, seg)
            return
        self._sealed_here.add(key)
        if not store.info(*key).sealed:
            self.ctx.background(self._seal_here, topic.name, seg)

    async def _create(self, key: tuple[str, int]) -> None:
        try:
            if not self.ctx.store.has_segment(*key):
                self.ctx.store.create_segment(*key)
        finally:
            self._creating.discard(key)

    async def _seal_here(self, name: str, seg: SegmentMeta) -> None:
        if (
            self.ctx.store.has_segment(name, seg.id)
            and not self.ctx.store.info(name, seg.id).sealed
        ):
            count = await self.ctx.store.seal_async(name, seg.id)
            self.ctx.events.record("seal", topic=name, segment=seg.id, count=count)

    async def _report(self, name: str, seg: SegmentMeta) -> None:
        ctx = self.ctx
        key = (name, seg.id)
        try:
            if ctx.store.has_segment(*key):
                count = await ctx.store.seal_async(*key)
            else:
                count = 0
            self._sealed_here.add(key)
            ctx.events.record("seal", topic=name, segment=seg.id, count=count)
            while ctx.view.known_segment(name, seg.id).state == PENDING:
                try:
                    await ctx.propose("report_count", name, seg.id, count)
                except ProposalError as exc:
                    log.warning("count report of %s/%d: %s; retrying", name, seg.id, exc)
        finally:
            self._reporting.discard(key)

    async def declare_store_lost(self) -> None:
        """Have the metadata mark every segment this node held ``lost`` (its store is gone),
        then write and serve again; retried until it commits."""
        ctx = self.ctx
        while True:
            try:
                result = await ctx.propose("disk_lost", ctx.me)
                break
            except ProposalError as exc:
                log.warning("recording the lost store: %s; retrying", exc)
        lost = [
            [topic.name, seg.id]
            for topic in ctx.view.topics.values()
            for seg in topic.segments
            if ctx.me in seg.lost and seg.state == LOST
        ]
        ctx.events.record("disk-lost", result=result, segments=lost)
        ctx.store_lost = False
        self._reconcile_all()


def register_reply(result: str) -> bytes:
    """REGISTER answers OK whether the topic was created or existed (as Walrus)."""
    return protocol.OK if result in ("created", "exists") else protocol.unavailable(result)


__all__ = ["LeaseExpired", "SegmentFull", "Writer", "proposal_failure", "register_reply"]
