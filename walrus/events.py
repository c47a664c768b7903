"""The node's event log, ``<data-dir>/events.jsonl``: evidence for the lease checker.

One JSON object per line; lines go out with single ``write`` calls, so they never interleave and a
crash cuts at most the last line, which the next start trims away before it appends (else its first
line would be glued to the cut one). Append events, the hot path, are buffered and written before
the append is acknowledged (``flush``, also called every 50 ms): a crash can lose the events of
appends that were never acknowledged, never those of acknowledged ones. Every event carries
``true_ns`` (the machine's CLOCK_MONOTONIC, shared by every node on the host and the harness) and
``node_time`` (this node's own clock, which drifts at its rate: what its leases are timed on), so
the checker can place it on one true timeline and also see what the node believed; events other
than appends also carry ``node_wall``, the node's wall-clock reading (node time plus its offset).
The kinds and their fields are in ``docs/events.md``; the harness reads the logs with
``harness.history.node_events``, which checks each line against that schema. The metadata's Raft
thread records its ``meta-*`` events here too: the buffer and the writes are under a lock.
"""

import json
import os
import threading
import time
from pathlib import Path

from walrus.clock import NodeClock

EVENT_LOG = "events.jsonl"
"""The event log's file name in a node's data directory."""


class EventLog:
    """Appends events for one node."""

    def __init__(self, path: Path, node: int, clock: NodeClock) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.trimmed = _trim_cut_line(self._fd)
        """Bytes of a line a crash cut short, trimmed from the end of the log on opening."""
        self._node = node
        self._clock = clock
        self._buffer: list[str] = []
        self._lock = threading.Lock()

    def record(self, kind: str, **fields: object) -> None:
        """Write one event now (after any buffered ones), stamped with true and node time."""
        event = {
            "true_ns": time.monotonic_ns(),
            "node_time": self._clock.now(),
            "node_wall": self._clock.wall(),
            "node": self._node,
            "kind": kind,
            **fields,
        }
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with self._lock:
            self._buffer.append(line)
            self._flush()

    def record_append(
        self, topic: str, segment: int, offset: int, count: int, epoch: int, node_time: float
    ) -> None:
        """Buffer an ``append`` event sequenced at ``node_time`` (the node clock's reading the
        lease was checked at; topic names need no JSON escaping)."""
        line = (
            f'{{"true_ns":{time.monotonic_ns()},"node_time":{node_time!r},'
            f'"node":{self._node},"kind":"append","topic":"{topic}","segment":{segment},'
            f'"offset":{offset},"count":{count},"epoch":{epoch}}}\n'
        )
        with self._lock:
            self._buffer.append(line)

    def flush(self) -> None:
        """Write every buffered event."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            data = "".join(self._buffer).encode()
            self._buffer.clear()
            while data:
                data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        """Flush and close the file (after the metadata's Raft thread has stopped)."""
        with self._lock:
            self._flush()
            os.close(self._fd)


def _trim_cut_line(fd: int, chunk: int = 1 << 16) -> int:
    """Truncate the file after its last newline (the end of a line a crash cut short); how many
    bytes that removed."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - chunk)
        tail = os.pread(fd, end - start, start)
        newline = tail.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end != size:
        os.ftruncate(fd, end)
    return size - end
