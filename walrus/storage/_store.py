"""The store: a directory of topics, each a directory of segment files and a durable cursor.

Layout under the store's root::

    topics/<topic>.topic/<segment, 20 digits>.seg    one append-only file per segment
    topics/<topic>.topic/cursor.json                 {"segment": s, "offset": o}, atomic replace
"""

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from walrus import codec
from walrus.durable import atomic_write_json, fsync_dir, fsync_file, make_dirs
from walrus.names import check_topic
from walrus.storage import _layout as layout
from walrus.storage._commit import Guard, Request
from walrus.storage._errors import SegmentExists, StorageError, StoreClosed, UnknownSegment
from walrus.storage._policy import FsyncPolicy
from walrus.storage._segment import Segment, SegmentInfo

DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024


@dataclass(frozen=True)
class Cursor:
    """A topic's read position: the next entry to hand out is ``offset`` of ``segment``."""

    segment: int
    offset: int


class Store:
    """Every segment this node holds, opened (and recovered) together.

    Blocking methods are for plain threads; ``*_async`` methods are for trio tasks and never
    block the event loop on disk I/O.
    """

    def __init__(
        self,
        root: str | Path,
        fsync: str | FsyncPolicy = "each",
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        codec.warm_up()
        self.root = Path(root)
        self.policy = fsync if isinstance(fsync, FsyncPolicy) else FsyncPolicy.parse(fsync)
        self.max_payload = max_payload
        self._topics_dir = layout.topics_dir(self.root)
        make_dirs(self._topics_dir)
        self._lock = threading.Lock()
        self._segments: dict[tuple[str, int], Segment] = {}
        self._closed = False
        self.recovery_notes: list[str] = []
        for topic, segment, path in layout.segment_files(self.root):
            seg = Segment(path, topic, segment, self.policy, max_payload)
            self._segments[(topic, seg.segment)] = seg
            if seg.recovery_note:
                self.recovery_notes.append(seg.recovery_note)
        self._recover_cursors()
        self._unsynced_cursors: set[Path] = set()
        self._syncer: threading.Thread | None = None
        self._stop_syncer = threading.Event()
        if self.policy.mode == "interval":
            self._syncer = threading.Thread(target=self._sync_loop, name="store-sync", daemon=True)
            self._syncer.start()

    def _recover_cursors(self) -> None:
        """Drop each cursor a power loss left unreadable, where the policy allowed it.

        Unless the policy is ``each``, a cursor is renamed into place without a sync, and a power
        loss can keep the new name with none of its bytes (an empty file). Such a cursor moved
        back to the topic's start: the file is removed (the topic's entries are handed out again,
        as ``set_cursor`` allows) and a recovery note says so. Under ``each`` an unreadable
        cursor is damage, and reading it stays an error.
        """
        if self.policy.mode == "each":
            return
        for topic, path in layout.cursor_files(self.root):
            try:
                self.cursor(topic)
            except StorageError as exc:
                path.unlink()
                fsync_dir(path.parent)
                self.recovery_notes.append(f"{exc}: removed, {topic} is read from its start")

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _topic_dir(self, topic: str) -> Path:
        return layout.topic_dir(self.root, topic)

    def _segment(self, topic: str, segment: int) -> Segment:
        if self._closed:
            raise StoreClosed("the store is closed")
        try:
            return self._segments[(topic, segment)]
        except KeyError:
            check_topic(topic)
            raise UnknownSegment(topic, segment) from None

    # --- segments --------------------------------------------------------------------------

    def create_segment(self, topic: str, segment: int) -> None:
        """Create an empty, open segment file (durably); SegmentExists if it is there already."""
        if segment < 0:
            raise ValueError(f"segment ids are non-negative, not {segment}")
        topic_dir = self._topic_dir(topic)
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            if (topic, segment) in self._segments:
                raise SegmentExists(topic, segment)
            self._make_topic_dir(topic_dir)
            path = layout.segment_path(self.root, topic, segment)
            seg = Segment(path, topic, segment, self.policy, self.max_payload, create=True)
            fsync_dir(topic_dir)
            self._segments[(topic, segment)] = seg

    def _make_topic_dir(self, topic_dir: Path) -> None:
        """Make a topic's directory, durably, if it is missing (under the lock)."""
        if not topic_dir.exists():
            topic_dir.mkdir()
            fsync_dir(self._topics_dir)

    def install_sealed(self, topic: str, segment: int, payloads: Sequence[bytes]) -> None:
        """Replace a segment's copy (or make one) with exactly ``payloads``, sealed: written to a
        file beside it, sealed durably, then renamed over it (a crash leaves the old copy or the
        new, never a mix). For a replica brought to a count another copy holds."""
        topic_dir = self._topic_dir(topic)
        path = layout.segment_path(self.root, topic, segment)
        staged = path.with_suffix(".install")
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            self._make_topic_dir(topic_dir)
        staged.unlink(missing_ok=True)
        copy = Segment(staged, topic, segment, self.policy, self.max_payload, create=True)
        try:
            if payloads:
                copy.append(payloads)
            copy.seal()
        finally:
            copy.close()
        with self._lock:
            old = self._segments.pop((topic, segment), None)
        if old is not None:
            old.close()
        staged.rename(path)
        fsync_dir(topic_dir)
        with self._lock:
            self._segments[(topic, segment)] = Segment(
                path, topic, segment, self.policy, self.max_payload
            )

    async def install_sealed_async(
        self, topic: str, segment: int, payloads: Sequence[bytes]
    ) -> None:
        """install_sealed() from a trio task."""
        await trio.to_thread.run_sync(self.install_sealed, topic, segment, payloads)

    def has_segment(self, topic: str, segment: int) -> bool:
        """True if this store holds a file for the segment."""
        return (topic, segment) in self._segments

    def topics(self) -> list[str]:
        """Every topic with at least one segment here, sorted."""
        return sorted({t for t, _ in self._segments})

    def segments(self, topic: str) -> list[SegmentInfo]:
        """The segments of ``topic`` held here, by id."""
        check_topic(topic)
        return [s.info() for (t, _), s in sorted(self._segments.items()) if t == topic]

    def info(self, topic: str, segment: int) -> SegmentInfo:
        """Count, sealed state and size of one segment."""
        return self._segment(topic, segment).info()

    def count(self, topic: str, segment: int) -> int:
        """Committed entries in a segment."""
        return self._segment(topic, segment).count

    def seal(self, topic: str, segment: int) -> int:
        """Seal a segment (idempotent): no append lands after this returns. Returns its count."""
        return self._segment(topic, segment).seal()

    async def seal_async(self, topic: str, segment: int) -> int:
        """seal() from a trio task."""
        seg = self._segment(topic, segment)
        return await trio.to_thread.run_sync(seg.seal)

    # --- appends ---------------------------------------------------------------------------

    def append(self, topic: str, segment: int, payload: bytes) -> int:
        """Append one entry; returns its offset once it is committed per the fsync policy."""
        seg = self._segments.get((topic, segment))
        if seg is None or self._closed:
            seg = self._segment(topic, segment)
        return seg.append((payload,))

    def append_batch(self, topic: str, segment: int, payloads: Sequence[bytes]) -> int:
        """Append entries in order, all or none; returns the first one's offset."""
        if not payloads:
            raise ValueError("append_batch needs at least one payload")
        return self._segment(topic, segment).append(payloads)

    def begin_append(
        self, topic: str, segment: int, payloads: Sequence[bytes], guard: Guard | None = None
    ) -> Request:
        """From a trio task: sequence entries now, without blocking (so several begun in order
        get offsets in that order); ``await request.wait()`` returns the first offset once the
        entries are committed. ``guard(first, count)`` runs atomically with the sequencing and
        may refuse it by raising."""
        if not payloads:
            raise ValueError("an append needs at least one payload")
        return self._segment(topic, segment).begin_append(payloads, guard)

    async def append_async(self, topic: str, segment: int, payload: bytes) -> int:
        """append() from a trio task."""
        return await self.begin_append(topic, segment, (payload,)).wait()

    async def append_batch_async(self, topic: str, segment: int, payloads: Sequence[bytes]) -> int:
        """append_batch() from a trio task."""
        return await self.begin_append(topic, segment, payloads).wait()

    # --- reads -----------------------------------------------------------------------------

    def read(self, topic: str, segment: int, offset: int, max_count: int = 1) -> list[bytes]:
        """Up to ``max_count`` entries from ``offset``: [] at the end, ReadPastEnd beyond it."""
        return self._segment(topic, segment).read(offset, max_count)

    async def read_async(
        self, topic: str, segment: int, offset: int, max_count: int = 1
    ) -> list[bytes]:
        """read() from a trio task."""
        seg = self._segment(topic, segment)
        return await trio.to_thread.run_sync(seg.read, offset, max_count)

    def scan(self, topic: str, batch: int = 4096) -> Iterator[tuple[int, int, bytes]]:
        """Every committed entry of ``topic`` held here, as (segment, offset, payload), in order."""
        for info in self.segments(topic):
            offset = 0
            while True:
                chunk = self.read(topic, info.segment, offset, batch)
                if not chunk:
                    break
                for payload in chunk:
                    yield info.segment, offset, payload
                    offset += 1

    # --- cursors ---------------------------------------------------------------------------

    def cursor(self, topic: str) -> Cursor | None:
        """The durable cursor of ``topic``, or None if it was never set."""
        path = layout.cursor_path(self.root, topic)
        try:
            raw = json.loads(path.read_text())
            return Cursor(int(raw["segment"]), int(raw["offset"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{path}: unreadable cursor ({exc})") from exc

    def set_cursor(self, topic: str, cursor: Cursor) -> None:
        """Replace the cursor of ``topic`` as durably as the fsync policy makes appends: synced
        before it returns under ``each``, by the syncer within the interval under ``interval``,
        left to the page cache under ``none``. A crash of the process loses no cursor under any
        policy; a power loss may move one back (entries handed out again, under ``none`` or
        ``interval`` at worst from the start: see ``_recover_cursors``), never forward."""
        topic_dir = self._topic_dir(topic)
        if cursor.segment < 0 or cursor.offset < 0:
            raise ValueError(f"a cursor is non-negative, not {cursor}")
        with self._lock:
            if not topic_dir.exists():
                topic_dir.mkdir()
                fsync_dir(self._topics_dir)
        path = layout.cursor_path(self.root, topic)
        sync = self.policy.mode == "each"
        atomic_write_json(path, {"segment": cursor.segment, "offset": cursor.offset}, sync)
        if self.policy.mode == "interval":
            with self._lock:
                self._unsynced_cursors.add(path)

    async def set_cursor_async(self, topic: str, cursor: Cursor) -> None:
        """``set_cursor`` from trio: in a worker thread when it waits for the disk (policy
        ``each``), else at once (a write and a rename cost less than the hop to a thread)."""
        if self.policy.mode == "each":
            await trio.to_thread.run_sync(self.set_cursor, topic, cursor)
        else:
            self.set_cursor(topic, cursor)

    # --- lifecycle -------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        interval = self.policy.interval_ms / 1000
        while not self._stop_syncer.wait(interval):
            for seg in list(self._segments.values()):
                seg.sync()
            self._sync_cursors()

    def _sync_cursors(self) -> None:
        with self._lock:
            cursors, self._unsynced_cursors = self._unsynced_cursors, set()
        for path in cursors:
            fsync_file(path)

    def close(self) -> None:
        """Finish queued appends, sync per policy and close every file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop_syncer.set()
        if self._syncer is not None:
            self._syncer.join()
            self._sync_cursors()
        for seg in self._segments.values():
            seg.close()
