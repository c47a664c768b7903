"""Data-plane replication: a segment's leader copies its entries to the segment's followers.

With ``--replicas R`` every segment has R copies, on its leader and the R-1 followers the
metadata chose when it opened (``walrus.metastate``). The leader sequences appends under its
lease as with one copy, and a stream per follower sends them on over the node RPC in batches,
from memory, once they are committed here:

    APPEND <topic> <segment> <epoch> <first> <n>\\n<n payloads, each a 4-byte length and bytes>

The follower appends what it lacks of them at its own length (entries are the leader's, one
leader per segment, so a resent prefix is identical and skipped) and answers ``OK <length>``
once that many are committed under its fsync policy, or ``ERR behind <length>`` when the batch
starts past its end, or ``ERR fenced ...`` when the segment is no longer open for it (sealed
there, or taken over in the metadata, or of another epoch): the lease epoch fences the data
plane too. A PUT is acknowledged once a majority of the copies (the leader's counted) hold it —
Kafka's ``acks=all`` over an ISR of a fixed size, Raft's commit rule without a log per
partition: any acknowledged entry is on at least one copy of every majority. Only entries on a
majority are read (the *high water*, as in Kafka), and a rollover is proposed only once its
count is.
"""

import heapq
import itertools
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import trio

from walrus import protocol
from walrus.metadata import ProposalError
from walrus.metastate import OPEN, SEALED, MetaView
from walrus.storage import SegmentSealed, StorageError, Store

log = logging.getLogger("walrus.replication")

BATCH_ENTRIES = 512
"""Most entries one APPEND carries."""
BATCH_BYTES = 1 << 20
"""Most payload bytes one APPEND carries (one entry more than this if it alone is larger)."""
RETRY_AFTER = 0.1
"""Seconds a stream waits before resending after a failed APPEND."""
IDLE_RECHECK = 1.0
"""Seconds an idle stream waits before it looks again whether its segment is still open."""
EXPIRE_EVERY = 0.05
"""Seconds between looks for acknowledgements whose wait for a majority has timed out."""
TAIL_ENTRIES = 8192
"""Most recently sequenced entries a leader keeps in memory for its streams (a follower further
behind is sent entries read back from the store)."""

_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class Append:
    """One APPEND: entries of (topic, segment) under ``epoch``, the first at offset ``first``."""

    topic: str
    segment: int
    epoch: int
    first: int
    payloads: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The RPC command."""
        head = f"APPEND {self.topic} {self.segment} {self.epoch} {self.first}"
        return head.encode() + pack(self.payloads)

    @classmethod
    def decode(cls, command: bytes) -> "Append":
        """Parse an APPEND command; ProtocolError if malformed."""
        head, payloads = unpack(command, "APPEND")
        parts = head.split(" ")
        if len(parts) != 5 or not all(p.isdigit() for p in parts[2:]):
            raise protocol.ProtocolError(
                "ERR APPEND takes <topic> <segment> <epoch> <first> <n>, then the payloads"
            )
        return cls(parts[1], int(parts[2]), int(parts[3]), int(parts[4]), payloads)


def pack(payloads: Sequence[bytes]) -> bytes:
    """`` <n>\\n`` and the payloads, each a 4-byte length and its bytes: the tail of an APPEND
    command and of a FETCH reply."""
    return b" %d\n" % len(payloads) + b"".join(_LENGTH.pack(len(p)) + p for p in payloads)


def unpack(message: bytes, what: str) -> tuple[str, tuple[bytes, ...]]:
    """(the text before `` <n>``, the payloads) of a message ``pack`` ended; ProtocolError
    naming ``what`` if malformed."""
    head, sep, body = message.partition(b"\n")
    text, _, count = head.decode(errors="replace").rpartition(" ")
    if not sep or not count.isdigit():
        raise protocol.ProtocolError(f"ERR {what} takes a count, then the payloads")
    payloads, at = [], 0
    for _ in range(int(count)):
        if at + 4 > len(body):
            raise protocol.ProtocolError(f"ERR {what} payloads cut short")
        (size,) = _LENGTH.unpack_from(body, at)
        payloads.append(bytes(body[at + 4 : at + 4 + size]))
        at += 4 + size
    if at != len(body):
        raise protocol.ProtocolError(f"ERR {what} payloads do not match their count")
    return text, tuple(payloads)


def high_water(lengths: Sequence[int], replicas: int) -> int:
    """How many entries a majority of ``replicas`` copies hold, given the lengths known (the
    copies not heard from count as empty)."""
    majority = replicas // 2 + 1
    known = sorted(lengths, reverse=True)
    return known[majority - 1] if len(known) >= majority else 0


@dataclass
class _Stream:
    """What the leader knows of one follower's copy."""

    follower: int
    acked: int = 0
    """Entries the follower said it holds committed."""


@dataclass
class Replicated:
    """One segment this node leads, and its copies' progress."""

    topic: str
    segment: int
    epoch: int
    replicas: tuple[int, ...]
    applied: int = 0
    """The metadata this node had applied when it took the segment on: a follower must have
    applied as much (it then knows the segment) before it takes an APPEND — not all the
    metadata applied here since, which would hold every APPEND up until renews and rollovers
    of other segments reach the follower."""
    streams: dict[int, _Stream] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)
    """Set (and replaced) whenever the local copy grows: the streams wait on it."""
    waiting: list[tuple[int, int, "_Waiter"]] = field(default_factory=list)
    """(length, ticket, waiter) heap of acknowledgements waiting for a majority."""
    on_majority: int = 0
    """The high water last released: entries a majority of the copies hold."""
    expiring: bool = False
    """Whether a task is timing the waiters out (one per segment, not a timer per PUT)."""
    streams_running: int = 0
    tail_base: int = 0
    tail: list[bytes] = field(default_factory=list)
    """Entries sequenced here lately, from offset ``tail_base``: the streams send them from
    memory instead of reading them back from the store. Only once committed here, though:
    Raft's leader may write beside its followers (Ongaro's thesis, §10.2.1) because a
    follower truncates a conflicting suffix; ours cannot, so a leader back from a power loss
    with fewer entries than it sent must never meet copies longer than its own."""

    @property
    def tail_end(self) -> int:
        """Entries sequenced here (committed or on their way), as far as the tail knows."""
        return self.tail_base + len(self.tail)

    def sequenced(self, first: int, payloads: Sequence[bytes]) -> None:
        """Entries were sequenced here at ``first``: keep them for the streams."""
        if first != self.tail_end:  # a gap (a restart, a dropped tail): start afresh
            self.tail_base, self.tail = first, []
        self.tail.extend(payloads)
        if len(self.tail) > TAIL_ENTRIES:
            drop = len(self.tail) - TAIL_ENTRIES // 2
            del self.tail[:drop]
            self.tail_base += drop

    def from_tail(self, offset: int, max_count: int) -> list[bytes] | None:
        """Up to ``max_count`` entries from ``offset`` out of memory; None if not held there."""
        i = offset - self.tail_base
        if i < 0 or i >= len(self.tail):
            return None
        return self.tail[i : i + max_count]

    def trim(self) -> None:
        """Forget the entries every follower holds."""
        drop = min(s.acked for s in self.streams.values()) - self.tail_base
        if drop > 0:
            del self.tail[:drop]
            self.tail_base += drop

    def poke(self) -> None:
        """Wake the streams: the local copy grew."""
        self.changed.set()
        self.changed = trio.Event()

    def release(self, high_water: int) -> None:
        """Wake the acknowledgements a majority now holds."""
        self.on_majority = max(self.on_majority, high_water)
        while self.waiting and self.waiting[0][0] <= high_water:
            waiter = heapq.heappop(self.waiting)[2]
            waiter.held = True
            waiter.event.set()

    def expire(self, now: float) -> None:
        """Wake, unheld, the waiters whose time is up."""
        expired = [w for _, _, w in self.waiting if w.deadline <= now]
        if expired:
            for w in expired:
                w.event.set()
            self.waiting = [e for e in self.waiting if e[2].deadline > now]
            heapq.heapify(self.waiting)


class _Waiter:
    """An acknowledgement waiting for a majority: woken held, or at its deadline unheld."""

    __slots__ = ("deadline", "event", "held")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.event = trio.Event()
        self.held = False


class Node(Protocol):
    """What replication needs of the node (``walrus.context.Context`` has it)."""

    me: int
    store: Store
    store_lost: bool

    @property
    def view(self) -> MetaView:
        """The latest metadata snapshot applied here."""
        ...

    def background(self, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run ``fn(*args)`` in the background."""
        ...

    async def call(self, node: int, command: bytes, applied: int | None = None) -> bytes:
        """Send a data-plane command to ``node``; its reply."""
        ...

    async def propose(self, command: str, *args: object) -> str:
        """Propose a metadata command; its result once committed."""
        ...


class Replication:
    """The leader's side: one ``Replicated`` per segment it leads with R > 1, each with a
    stream task per follower; and the follower's side, ``append``."""

    def __init__(self, ctx: Node) -> None:
        self.ctx = ctx
        self._segments: dict[tuple[str, int], Replicated] = {}
        self._tickets = itertools.count()
        self._repairing: set[tuple[str, int, int]] = set()

    # --- leader --------------------------------------------------------------------------

    def lead(self, topic: str, segment: int, epoch: int, replicas: tuple[int, ...]) -> Replicated:
        """The replication state of a segment led here, its streams started on first use."""
        key = (topic, segment)
        rep = self._segments.get(key)
        if rep is None:
            rep = Replicated(topic, segment, epoch, replicas, self.ctx.view.applied)
            self._segments[key] = rep
            for follower in replicas[1:]:
                stream = rep.streams[follower] = _Stream(follower)
                rep.streams_running += 1
                self.ctx.background(self._stream, rep, stream)
        return rep

    def grew(self, topic: str, segment: int) -> None:
        """The local copy of a segment led here grew (or was sealed): send it on."""
        rep = self._segments.get((topic, segment))
        if rep is not None:
            rep.poke()
            rep.release(self.high_water(topic, segment))

    def high_water(self, topic: str, segment: int) -> int:
        """Entries of a segment led here that a majority of its copies hold."""
        rep = self._segments.get((topic, segment))
        local = self._local(topic, segment)
        if rep is None:
            return local
        seg = self.ctx.view.segment(topic, segment)
        lost = seg.lost if seg else frozenset()
        # a copy lost with its disk no longer holds what it acknowledged
        lengths = [local, *(s.acked for s in rep.streams.values() if s.follower not in lost)]
        return high_water(lengths, len(rep.replicas))

    async def wait_majority(self, rep: Replicated, length: int, timeout: float) -> bool:
        """Wait until a majority of the copies hold ``length`` entries; False on timeout."""
        if self.high_water(rep.topic, rep.segment) >= length:
            return True
        waiter = _Waiter(trio.current_time() + timeout)
        heapq.heappush(rep.waiting, (length, next(self._tickets), waiter))
        if not rep.expiring:
            rep.expiring = True
            self.ctx.background(self._expire, rep)
        await waiter.event.wait()
        return waiter.held

    async def _expire(self, rep: Replicated) -> None:
        """Time out ``rep``'s waiters (to within EXPIRE_EVERY) while it has any."""
        try:
            while rep.waiting:
                await trio.sleep(EXPIRE_EVERY)
                rep.expire(trio.current_time())
        finally:
            rep.expiring = False

    def _local(self, topic: str, segment: int) -> int:
        store = self.ctx.store
        return store.count(topic, segment) if store.has_segment(topic, segment) else 0

    async def _stream(self, rep: Replicated, stream: _Stream) -> None:
        """Send the follower what it lacks, until the segment is sealed and the follower has it
        all — or, once the segment is no longer open, until a send fails (a copy left short
        then is repair's to complete)."""
        try:
            await self._send_all(rep, stream)
        finally:
            rep.streams_running -= 1
            if rep.streams_running == 0:
                self._segments.pop((rep.topic, rep.segment), None)

    async def _send_all(self, rep: Replicated, stream: _Stream) -> None:
        ctx = self.ctx
        while True:
            written = self._local(rep.topic, rep.segment)  # committed here
            if stream.acked >= written:
                if self._sealed_here(rep) or not self._still_open(rep):
                    return  # all sent, and nothing more will be (a taken-over copy is repair's)
                with trio.move_on_after(IDLE_RECHECK):
                    await rep.changed.wait()
                continue
            payloads = rep.from_tail(stream.acked, min(BATCH_ENTRIES, written - stream.acked))
            if payloads is None:
                try:
                    payloads = await ctx.store.read_async(
                        rep.topic, rep.segment, stream.acked, BATCH_ENTRIES
                    )
                except StorageError as exc:
                    log.warning("replicating %s/%d: %s", rep.topic, rep.segment, exc)
                    return
            payloads = _fit(payloads)
            batch = Append(rep.topic, rep.segment, rep.epoch, stream.acked, tuple(payloads))
            reply = await ctx.call(stream.follower, batch.encode(), rep.applied)
            if reply.startswith(b"OK "):
                stream.acked = max(stream.acked, int(reply[3:]))
                rep.trim()
                rep.release(self.high_water(rep.topic, rep.segment))
                self._caught_up(rep, stream)
            elif reply.startswith(b"ERR behind "):
                stream.acked = int(reply.split(b" ")[2])
            elif reply.startswith(b"ERR fenced"):
                log.info("%s/%d: node %d: %s", rep.topic, rep.segment, stream.follower, reply)
                return
            elif self._still_open(rep):
                await trio.sleep(RETRY_AFTER)
            else:
                return

    def _caught_up(self, rep: Replicated, stream: _Stream) -> None:
        """A follower whose copy was lost holds everything this leader does again: have the
        metadata count it (once at a time)."""
        seg = self.ctx.view.segment(rep.topic, rep.segment)
        key = (rep.topic, rep.segment, stream.follower)
        if (
            seg is not None
            and stream.follower in seg.lost
            and stream.acked >= self._local(rep.topic, rep.segment)
            and key not in self._repairing
        ):
            self._repairing.add(key)
            self.ctx.background(self._record_repaired, key)

    async def _record_repaired(self, key: tuple[str, int, int]) -> None:
        try:
            await self.ctx.propose("repaired", *key)
        except ProposalError as exc:
            log.warning("%s/%d: node %d caught up, not yet recorded: %s", *key, exc)
        finally:
            self._repairing.discard(key)

    def _still_open(self, rep: Replicated) -> bool:
        seg = self.ctx.view.segment(rep.topic, rep.segment)
        return seg is not None and seg.state == OPEN

    def _sealed_here(self, rep: Replicated) -> bool:
        store = self.ctx.store
        key = (rep.topic, rep.segment)
        return store.has_segment(*key) and store.info(*key).sealed

    # --- follower ------------------------------------------------------------------------

    async def append(self, batch: Append) -> bytes:
        """Take a leader's APPEND for a segment this node follows."""
        ctx = self.ctx
        key = (batch.topic, batch.segment)
        seg = ctx.view.segment(batch.topic, batch.segment)
        # A copy lost with this node's disk takes appends again from offset 0 (the store
        # holds nothing of it from before), until the leader has it recorded repaired.
        if seg is None or ctx.me not in seg.replicas[1:] or seg.epoch != batch.epoch:
            return protocol.err(
                f"fenced: node {ctx.me} follows no segment {batch.segment} of "
                f"{batch.topic} at epoch {batch.epoch}"
            )
        if ctx.store_lost:
            return protocol.unavailable(f"node {ctx.me} lost its store")
        if seg.state not in (OPEN, SEALED):
            return protocol.err(f"fenced: segment {batch.segment} of {batch.topic} is {seg.state}")
        store = ctx.store
        if not store.has_segment(*key):
            if seg.state != OPEN:
                return protocol.err(f"fenced: no copy of sealed segment {batch.segment} here")
            store.create_segment(*key)
        have = store.count(*key)
        if batch.first > have:
            return b"ERR behind %d" % have
        fresh = batch.payloads[have - batch.first :]
        if seg.state == SEALED:
            fresh = fresh[: max(0, seg.known_count - have)]
        if fresh:
            first = have

            def guard(offset: int, count: int) -> None:
                if offset != first:
                    raise _Raced

            try:
                pending = store.begin_append(batch.topic, batch.segment, fresh, guard)
                await pending.wait()
            except _Raced:
                return protocol.unavailable("another APPEND of this segment is under way")
            except SegmentSealed:
                return protocol.err(f"fenced: segment {batch.segment} is sealed here")
            except StorageError as exc:
                return protocol.unavailable(f"storage: {exc}")
        have = store.count(*key)
        if seg.state == SEALED and have == seg.count and not store.info(*key).sealed:
            await store.seal_async(*key)
        return b"OK %d" % have


class _Raced(Exception):
    """Two APPENDs of one segment met: the later one is resent."""


def _fit(payloads: list[bytes]) -> list[bytes]:
    """The longest prefix within BATCH_BYTES (at least one entry)."""
    total = 0
    for i, p in enumerate(payloads):
        total += len(p)
        if total > BATCH_BYTES and i:
            return payloads[:i]
    return payloads
