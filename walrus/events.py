"""The node's event log, ``<data-dir>/events.jsonl``: evidence for the lease checker.

One JSON object per line, appended with a single ``write`` so that lines from concurrent
writers never interleave and a crash loses at most the line being written. Every event carries
``true_ns`` (the machine's CLOCK_MONOTONIC, shared by every node on the host and the harness) and
``node_time`` (this node's own, possibly skewed, clock), so the checker can place it on one
true timeline and also see what the node believed. Kinds:

- ``lease-acquire`` / ``lease-renew`` / ``lease-loss``: ``sent`` (node time of the renew send)
  and ``expiry`` (node time the lease ends);
- ``append``: ``topic``, ``segment``, ``offset``, ``count`` (records from ``offset``), ``epoch``;
- ``seal``: ``topic``, ``segment``, ``count``; ``takeover``: ``node`` (the silent node),
  ``result``; ``cursor``: ``topic``, ``segment``, ``offset``; ``start`` / ``stop``.
"""

import json
import os
import time
from pathlib import Path

from walrus.clock import NodeClock


class EventLog:
    """Appends events for one node."""

    def __init__(self, path: Path, node: int, clock: NodeClock) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._node = node
        self._clock = clock

    def record(self, kind: str, **fields: object) -> None:
        """Append one event, stamped with true and node time."""
        event = {
            "true_ns": time.monotonic_ns(),
            "node_time": self._clock.now(),
            "node": self._node,
            "kind": kind,
            **fields,
        }
        os.write(self._fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def read_events(path: Path) -> list[dict]:
    """Every complete event in a log (a torn last line, from a crash, is skipped)."""
    events = []
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                events.append(json.loads(line))
    return events
