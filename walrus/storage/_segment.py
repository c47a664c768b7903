"""One segment: an append-only file of framed records, its recovery, its index and its reads."""

import os
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import numpy as np

from walrus import codec
from walrus.storage._commit import GroupCommit, Guard, Request
from walrus.storage._errors import (
    CorruptSegment,
    PayloadTooLarge,
    ReadPastEnd,
    SegmentFailed,
    SegmentSealed,
)
from walrus.storage._policy import FsyncPolicy


@dataclass(frozen=True)
class SegmentInfo:
    """What the store knows of one segment."""

    topic: str
    segment: int
    count: int
    sealed: bool
    bytes: int


def _read_file(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8)


def _recover(path: Path) -> tuple[np.ndarray, int, bool, str | None]:
    """Scan a segment file; truncate a torn tail; refuse damage that is not one.

    Returns the record positions, the data size, whether a seal trailer ends it, and a note of
    what was truncated (None if nothing).
    """
    data = _read_file(path)
    positions, end, status = codec.scan_records(data, 0)
    n = len(positions)
    if status == codec.SCAN_SEALED:
        if end != len(data):
            raise CorruptSegment(str(path), end, "bytes after the seal trailer")
        return positions, end - codec.HEADER_SIZE, True, None
    if status == codec.SCAN_CLEAN:
        return positions, end, False, None
    later = codec.find_later_record(data, end + 1, n)
    if later >= 0:
        raise CorruptSegment(
            str(path),
            end,
            f"record {n} is damaged but a later record at byte {later} is intact "
            "(bit rot, not a torn write); refusing to serve this segment",
        )
    with open(path, "r+b") as f:
        f.truncate(end)
        os.fsync(f.fileno())
    kind = "partial record" if status == codec.SCAN_SHORT else "damaged record"
    note = f"{path}: truncated a torn tail of {len(data) - end} bytes ({kind} after record {n - 1})"
    return positions, end, False, note


# Batches at least this large are written with the GIL released.
_NOGIL_BYTES = 32 * 1024


class Segment:
    """An open segment file: appends go through group commit, reads through the index."""

    def __init__(
        self,
        path: Path,
        topic: str,
        segment: int,
        policy: FsyncPolicy,
        max_payload: int,
        create: bool = False,
    ) -> None:
        self.path = path
        self.topic = topic
        self.segment = segment
        self._policy = policy
        self._sync_each = policy.mode == "each"
        self._max_payload = max_payload
        self.recovery_note: str | None = None
        if create:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            positions, size, sealed = np.empty(0, dtype=np.int64), 0, False
        else:
            fd = os.open(path, os.O_RDWR)
            positions, size, sealed, self.recovery_note = _recover(path)
        self._fd = fd
        self._positions = np.empty(max(1024, 2 * len(positions)), dtype=np.int64)
        self._positions[: len(positions)] = positions
        self._count = len(positions)
        self._next = self._count
        self._size = size
        self._sealed = sealed
        self._sealing = sealed
        self._failed: BaseException | None = None
        self._dirty = False
        self._scratch = np.empty(64 * 1024, dtype=np.uint8)
        self._one_end = np.empty(1, dtype=np.int64)
        self._lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._commit = GroupCommit(self._lock, self._admit, self._write, f"{topic}/{segment}")

    # --- appends ---------------------------------------------------------------------------

    def _admit(self, payloads: Sequence[bytes], guard: Guard | None) -> int:
        if self._failed is not None:
            raise SegmentFailed(
                f"segment {self.segment} of topic {self.topic!r} failed: {self._failed}"
            )
        if self._sealing:
            raise SegmentSealed(self.topic, self.segment, self._count if self._sealed else None)
        if len(payloads) == 1:
            kinds: Collection[type] = () if type(payloads[0]) is bytes else (type(payloads[0]),)
            longest = len(payloads[0])
        else:
            kinds = set(map(type, payloads)) - {bytes}
            longest = max(map(len, payloads))
        if kinds:
            raise TypeError(f"payloads are bytes, not {next(iter(kinds)).__name__}")
        if longest > self._max_payload:
            raise PayloadTooLarge(longest, self._max_payload)
        first = self._next
        self._next += len(payloads)
        if guard is not None:
            try:
                guard(first, len(payloads))
            except BaseException:
                self._next = first
                raise
        return first

    def _write(self, first: int, payloads: Sequence[bytes]) -> None:
        n = len(payloads)
        if n == 1:
            src = payloads[0]
            ends = self._one_end
            ends[0] = len(src)
        else:
            src = b"".join(payloads)
            ends = np.fromiter(accumulate(map(len, payloads)), dtype=np.int64, count=n)
        framed = codec.HEADER_SIZE * n + len(src)
        if framed > len(self._scratch):
            self._scratch = np.empty(max(framed, 2 * len(self._scratch)), dtype=np.uint8)
        if self._count + n > len(self._positions):
            grown = np.empty(max(self._count + n, 2 * len(self._positions)), dtype=np.int64)
            grown[: self._count] = self._positions[: self._count]
            self._positions = grown
        kernel = codec.write_batch if len(src) < _NOGIL_BYTES else codec.write_batch_nogil
        try:
            done, need = kernel(
                self._fd,
                src,
                ends,
                first,
                self._scratch,
                self._size,
                self._positions,
                self._count,
            )
            if done != need:
                rest = self._scratch.data[done:need]
                while rest:
                    rest = rest[os.pwrite(self._fd, rest, self._size + need - len(rest)) :]
            if self._sync_each:
                os.fdatasync(self._fd)
            else:
                self._dirty = True
        except OSError as exc:
            self._failed = exc
            raise SegmentFailed(
                f"segment {self.segment} of topic {self.topic!r}: write failed ({exc}); "
                "no further appends until the store is reopened"
            ) from exc
        with self._lock:
            self._size += need
            self._count += n

    def append(self, payloads: Sequence[bytes], guard: Guard | None = None) -> int:
        """Append records from a plain thread; returns the first one's offset once committed."""
        return self._commit.submit(payloads, guard)

    def begin_append(self, payloads: Sequence[bytes], guard: Guard | None = None) -> Request:
        """Sequence records from a trio task; ``await`` the returned request's ``wait()``."""
        return self._commit.begin(payloads, guard)

    def sync(self) -> None:
        """fdatasync the file if anything was written since the last sync.

        A failed sync fails the segment: after an fsync error the kernel may have dropped the
        dirty pages, so retrying could report success for data that is gone.
        """
        if self._dirty and self._failed is None:
            self._dirty = False
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self._failed = exc

    def seal(self) -> int:
        """Refuse new appends, wait for queued ones, write the trailer durably, return the count."""
        with self._seal_lock:
            if self._sealed:
                return self._count
            with self._lock:
                self._sealing = True
            self._commit.drain()
            if self._failed is not None:
                raise SegmentFailed(
                    f"segment {self.segment} of topic {self.topic!r} failed: {self._failed}"
                )
            trailer = np.empty(codec.HEADER_SIZE, dtype=np.uint8)
            codec.encode_seal(self._count, trailer)
            os.pwrite(self._fd, trailer.tobytes(), self._size)
            os.fdatasync(self._fd)
            self._sealed = True
            return self._count

    # --- reads -----------------------------------------------------------------------------

    def _snapshot(self) -> tuple[np.ndarray, int, int]:
        with self._lock:
            return self._positions, self._count, self._size

    def info(self) -> SegmentInfo:
        """Count, sealed state and size, as of now."""
        _, count, size = self._snapshot()
        return SegmentInfo(self.topic, self.segment, count, self._sealed, size)

    @property
    def count(self) -> int:
        """Committed records (the only ones a read can see)."""
        return self._snapshot()[1]

    @property
    def sealed(self) -> bool:
        """True once the seal trailer is durable."""
        return self._sealed

    def read(self, offset: int, max_count: int) -> list[bytes]:
        """Up to ``max_count`` committed payloads from ``offset``; checksums verified."""
        positions, count, size = self._snapshot()
        if offset < 0 or offset > count:
            raise ReadPastEnd(self.topic, self.segment, offset, count)
        k = min(max_count, count - offset)
        if k <= 0:
            return []
        start = int(positions[offset])
        stop = int(positions[offset + k]) if offset + k < count else size
        data = os.pread(self._fd, stop - start, start)
        payloads, ends, end, _ = codec.decode_batch(data, offset)
        if len(ends) != k or end != len(data):
            raise CorruptSegment(
                str(self.path), start + int(end), f"record {offset + len(ends)} fails its checksum"
            )
        raw = payloads.tobytes()
        out = []
        prev = 0
        for e in ends.tolist():
            out.append(raw[prev:e])
            prev = e
        return out

    def close(self) -> None:
        """Wait for queued appends, stop the helper thread, sync per policy and close the file."""
        self._commit.close()
        if self._policy.mode != "none" and not self._failed:
            self.sync()
        os.close(self._fd)
