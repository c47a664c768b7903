"""The replicated metadata and its transitions: deterministic, no I/O, no clocks.

Raft (``walrus.metadata``) applies the same commands in the same order on every node; this module
is what they do. Every command that changes a segment names the segment (and epoch) it expects,
so a retried or late command finds the world changed and does nothing; each also carries a
request id, and the result of a command already applied is returned again for that id.

Topics hold a list of segments numbered from 1. The last segment is the open one; every earlier
one is ``sealed`` (count known), ``sealed-pending-count`` (taken over from a silent node that
has not yet reported how many entries it holds) or ``lost`` (every copy of it went with a lost
disk: ``disk_lost``; readers pass over it, and what it held is gone). The topic's shared cursor
names the segment being read.

With ``replicas`` R > 1 each segment is held by its leader and R-1 followers, chosen when it
opens: the next live nodes after the leader in id order, then others, so that there are always
R (an acknowledgement needs a majority of R; with fewer live nodes appends wait rather than
weaken). ``spec/model.py``'s ``_open`` is the same rule.

``compat=True`` reproduces Walrus 0.3 (``docs/design.md`` §3): the first leader is chosen over
every node, rollover seals whatever segment is current with the count it is given, and the next
leader is chosen round-robin over every node, dead or alive.
"""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

from walrus.codec import crc32c

OPEN = "open"
SEALED = "sealed"
PENDING = "sealed-pending-count"
LOST = "lost"

_RESULTS_KEPT = 4096


@dataclass(frozen=True)
class SegmentMeta:
    """One segment: who leads (wrote) it, under which epoch, its state, its count once known,
    and the nodes holding its copies (the leader first)."""

    id: int
    leader: int
    epoch: int
    state: str
    count: int | None = None
    replicas: tuple[int, ...] = ()
    lost: frozenset[int] = frozenset()
    """Replicas whose copy went with their disk and is not yet repaired: they count for
    nothing (no answer to a seal, no reads) until they hold the segment again."""

    @property
    def known_count(self) -> int:
        """``count`` where it is known to be set: a sealed segment's."""
        if self.count is None:
            raise ValueError(f"segment {self.id} ({self.state}) has no count yet")
        return self.count


@dataclass(frozen=True)
class TopicMeta:
    """A topic's segments (``segments[i].id == i + 1``) and its cursor's segment."""

    name: str
    segments: tuple[SegmentMeta, ...]
    cursor: int
    position: int = 0
    """The next entry to hand out in the cursor's segment when that segment is replicated
    (``take``); one copy's position lives in its holder's store instead."""

    @property
    def current(self) -> SegmentMeta:
        """The open segment (always the last)."""
        return self.segments[-1]

    @cached_property
    def pending(self) -> tuple[SegmentMeta, ...]:
        """The segments whose count is not known yet (computed once per version of the topic:
        the Raft leader looks at every topic several times per lease)."""
        return tuple(s for s in self.segments if s.state == PENDING)

    def segment(self, segment_id: int) -> SegmentMeta | None:
        """The segment with that id, or None."""
        if 1 <= segment_id <= len(self.segments):
            return self.segments[segment_id - 1]
        return None


@dataclass(frozen=True)
class MetaView:
    """An immutable snapshot of the metadata, handed to the node's event loop."""

    nodes: tuple[int, ...]
    alive: frozenset[int]
    renew_seq: dict[int, int]
    topics: dict[str, TopicMeta]
    applied: int
    compat: bool

    def topic(self, name: str) -> TopicMeta | None:
        """The topic, or None if it was never registered."""
        return self.topics.get(name)

    def segment(self, name: str, segment_id: int) -> SegmentMeta | None:
        """A topic's segment, or None if either is unknown."""
        topic = self.topics.get(name)
        return topic.segment(segment_id) if topic else None

    def known_topic(self, name: str) -> TopicMeta:
        """A topic the caller has seen registered (topics are never dropped)."""
        topic = self.topics.get(name)
        if topic is None:
            raise KeyError(f"topic {name!r} is not in the metadata")
        return topic

    def known_segment(self, name: str, segment_id: int) -> SegmentMeta:
        """A segment the caller has seen in the metadata (segments are never dropped)."""
        seg = self.segment(name, segment_id)
        if seg is None:
            raise KeyError(f"segment {segment_id} of {name!r} is not in the metadata")
        return seg


def _next_node(candidates: list[int], after: int) -> int:
    """Round-robin: the first candidate after ``after`` in id order, wrapping around."""
    later = [n for n in candidates if n > after]
    return (later or candidates)[0]


class MetaMachine:
    """The metadata state machine. ``nodes`` is the cluster's fixed membership."""

    def __init__(self, nodes: list[int], compat: bool = False, replicas: int = 1) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        self.nodes = tuple(sorted(nodes))
        self.compat = compat
        self.replicas = replicas
        self.alive = frozenset(self.nodes)
        self.renew_seq: dict[int, int] = {n: 0 for n in self.nodes}
        self.topics: dict[str, TopicMeta] = {}
        self.applied = 0
        self._results: OrderedDict[str, str] = OrderedDict()

    def view(self) -> MetaView:
        """The current state as an immutable snapshot (nothing here is mutated in place)."""
        return MetaView(
            self.nodes, self.alive, self.renew_seq, self.topics, self.applied, self.compat
        )

    # --- bookkeeping ---------------------------------------------------------------------------

    def _once(self, req: str, fn: Callable[[], str]) -> str:
        self.applied += 1
        if req in self._results:
            return self._results[req]
        result = fn()
        self._results[req] = result
        if len(self._results) > _RESULTS_KEPT:
            self._results.popitem(last=False)
        return result

    def _set_topic(self, topic: TopicMeta) -> None:
        self.topics = {**self.topics, topic.name: topic}

    def _candidates(self) -> list[int]:
        if self.compat:
            return list(self.nodes)
        return sorted(self.alive) or list(self.nodes)

    def _open(self, segment: int, leader: int, epoch: int) -> SegmentMeta:
        """A new open segment led by ``leader``, with its R-1 followers: the next live nodes
        after it in id order, then the next others."""
        live = set(self._candidates())
        order = sorted(self.nodes, key=lambda n: (n not in live, n <= leader, n))
        followers = tuple(n for n in order if n != leader)[: self.replicas - 1]
        return SegmentMeta(segment, leader, epoch, OPEN, replicas=(leader, *followers))

    # --- commands --------------------------------------------------------------------------------

    def register(self, topic: str, req: str) -> str:
        """Create ``topic`` with segment 1 open, unless it exists: "created" or "exists"."""

        def run() -> str:
            if topic in self.topics:
                return "exists"
            candidates = self._candidates()
            leader = candidates[crc32c(topic.encode()) % len(candidates)]
            first = self._open(1, leader, 1)
            self._set_topic(TopicMeta(topic, (first,), cursor=1))
            return "created"

        return self._once(req, run)

    def renew(self, node: int, req: str) -> str:
        """Record a node's lease renewal (and that it is alive): "renewed" or "stale".

        Every applied renew bumps the node's renew counter, so a takeover decided on an
        older counter value fails; the counter lives here, not in the node, so a restarted
        node cannot replay a value the machine has already seen.
        """

        def run() -> str:
            if node not in self.renew_seq:
                return f"stale: unknown node {node}"
            self.renew_seq = {**self.renew_seq, node: self.renew_seq[node] + 1}
            if node not in self.alive:
                self.alive = self.alive | {node}
            return "renewed"

        return self._once(req, run)

    def rollover(self, topic: str, segment: int, epoch: int, count: int, req: str) -> str:
        """Seal the open ``segment`` at ``count`` and open the next on the next live node.

        In compat mode the segment named is ignored: whatever is current gets sealed.
        """

        def run() -> str:
            t = self.topics.get(topic)
            if t is None:
                return "stale: no such topic"
            cur = t.current
            if not self.compat and (cur.id != segment or cur.epoch != epoch):
                return f"stale: segment {segment} epoch {epoch} is not open"
            sealed = replace(cur, state=SEALED, count=count)
            leader = _next_node(self._candidates(), cur.leader)
            nxt = self._open(cur.id + 1, leader, cur.epoch + 1)
            self._set_topic(replace(t, segments=(*t.segments[:-1], sealed, nxt)))
            return f"rolled {nxt.id} {leader}"

        return self._once(req, run)

    def takeover(self, node: int, renew_seq: int, req: str) -> str:
        """Declare ``node`` dead if its last renew is still ``renew_seq``: its open segments
        become sealed-pending-count and the next segment of each opens on a live node."""

        def run() -> str:
            if self.compat:
                return "stale: no takeover in compat mode"
            if self.renew_seq.get(node) != renew_seq:
                return "stale: the node renewed"
            self.alive = self.alive - {node}
            moved = 0
            for t in list(self.topics.values()):
                cur = t.current
                if cur.leader != node:
                    continue
                pending = replace(cur, state=PENDING)
                leader = _next_node(self._candidates(), node)
                nxt = self._open(cur.id + 1, leader, cur.epoch + 1)
                self._set_topic(replace(t, segments=(*t.segments[:-1], pending, nxt)))
                moved += 1
            return f"taken-over {moved}"

        return self._once(req, run)

    def report_count(self, topic: str, segment: int, count: int, req: str) -> str:
        """The old holder's true count for a sealed-pending-count segment."""

        def run() -> str:
            t = self.topics.get(topic)
            seg = t.segment(segment) if t else None
            if t is None or seg is None or seg.state != PENDING:
                return "stale: not pending"
            sealed = replace(seg, state=SEALED, count=count)
            segments = list(t.segments)
            segments[segment - 1] = sealed
            self._set_topic(replace(t, segments=tuple(segments)))
            return "reported"

        return self._once(req, run)

    def disk_lost(self, node: int, req: str) -> str:
        """``node`` came back with an empty store: its copy of every segment it held is lost.
        A segment whose every copy is lost is ``lost`` (readers pass over it; with one copy
        per segment that is every segment the node led); an open segment it led is taken over
        (sealed from the other copies, or lost) and the next opens on the next live node; one
        it follows goes on without that copy (a majority of the others acknowledges, and the
        copy is repaired once the segment is sealed). "lost N" names how many segments went
        entirely.

        The metadata says so rather than leaving readers waiting for entries no node has, and
        so that an empty copy is never counted as a short one."""

        def run() -> str:
            if self.compat:
                return "stale: no disk-loss accounting in compat mode"
            if node not in self.renew_seq:
                return f"stale: unknown node {node}"
            gone = 0
            for t in list(self.topics.values()):
                segments = list(t.segments)
                for i, seg in enumerate(segments):
                    if node not in seg.replicas or seg.state == LOST:
                        continue
                    lost = seg.lost | {node}
                    state = seg.state
                    if lost >= set(seg.replicas):
                        state = LOST
                        gone += 1
                    elif state == OPEN and seg.leader == node:
                        state = PENDING
                    segments[i] = replace(seg, state=state, lost=lost)
                cur = segments[-1]
                if cur.state != OPEN:
                    leader = _next_node(self._candidates(), cur.leader)
                    segments.append(self._open(cur.id + 1, leader, cur.epoch + 1))
                self._set_topic(replace(t, segments=tuple(segments)))
            return f"lost {gone}"

        return self._once(req, run)

    def repaired(self, topic: str, segment: int, node: int, req: str) -> str:
        """``node`` holds its copy of ``segment`` again: a sealed one fetched whole from another
        replica, or an open one that has caught up with its leader."""

        def run() -> str:
            t = self.topics.get(topic)
            seg = t.segment(segment) if t else None
            if t is None or seg is None or seg.state not in (OPEN, SEALED) or node not in seg.lost:
                return "stale: not a lost copy of an open or sealed segment"
            segments = list(t.segments)
            segments[segment - 1] = replace(seg, lost=seg.lost - {node})
            self._set_topic(replace(t, segments=tuple(segments)))
            return "repaired"

        return self._once(req, run)

    def take(self, topic: str, segment: int, first: int, count: int, req: str) -> str:
        """Hand out ``count`` entries of the cursor's replicated ``segment`` from ``first``, if
        the position is still ``first``: "took", or "stale: ..." when another holder did."""

        def run() -> str:
            t = self.topics.get(topic)
            if t is None or t.cursor != segment:
                return "stale: cursor elsewhere"
            if t.position != first:
                return f"stale: position is {t.position}"
            self._set_topic(replace(t, position=first + count))
            return "took"

        return self._once(req, run)

    def advance_cursor(self, topic: str, segment: int, req: str) -> str:
        """Move the cursor from ``segment`` (sealed with a known count and fully read, or lost)
        to the next."""

        def run() -> str:
            t = self.topics.get(topic)
            if t is None or t.cursor != segment:
                return "stale: cursor elsewhere"
            seg = t.segment(segment)
            assert seg is not None  # the cursor's segment
            if seg.state not in (SEALED, LOST):
                return "stale: segment not sealed with a known count"
            self._set_topic(replace(t, cursor=segment + 1, position=0))
            return "advanced"

        return self._once(req, run)


def state_json(topic: TopicMeta) -> dict[str, object]:
    """The STATE reply: Walrus's keys first, then ours (epochs, cursor, pending seals)."""
    cursor = topic.segment(topic.cursor)
    assert cursor is not None
    sealed = {str(s.id): s.count for s in topic.segments if s.state == SEALED}
    return {
        "current_segment": topic.current.id,
        "leader_node": topic.current.leader,
        "last_sealed_entry_offset": sum(s.known_count for s in topic.segments if s.state == SEALED),
        "sealed_segments": sealed,
        "segment_leaders": {str(s.id): s.leader for s in topic.segments},
        "segment_epochs": {str(s.id): s.epoch for s in topic.segments},
        "segment_replicas": {str(s.id): list(s.replicas) for s in topic.segments},
        "lost_copies": {str(s.id): sorted(s.lost) for s in topic.segments if s.lost},
        "pending_seals": [s.id for s in topic.pending],
        "lost_segments": [s.id for s in topic.segments if s.state == LOST],
        "cursor_segment": topic.cursor,
        **({"cursor_position": topic.position} if len(cursor.replicas) > 1 else {}),
    }
