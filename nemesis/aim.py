"""Faults aimed at events: ``kill@seal`` kills the node that sealed a segment 0-50 ms after it did.

Faults on a timer hit the dangerous instants — a rollover, a lease hand-off, a takeover — only by
luck. An aimed fault ``FAULT@EVENT`` is planned like any other (its steps, parameters and a
delay drawn from the seed) but a start only *arms* it: from the step's time, the nodes' event
logs (``docs/events.md``) are watched for the next ``EVENT``, and the fault fires ``delay_ms``
after it on the event's node: the one that wrote it, except for a takeover, where it is the node
the silent node's segments moved to (``partition@takeover`` isolates the new segment's leader
before it has heard of its segment), and for a truncation of the metadata's Raft log, the leader
whose AppendEntries made it (``kill@meta-truncate`` kills that leader right after). A partition
isolates that node. The delay is drawn from 0-50 ms, or from the range the name gives:
``kill@seal+5`` (5 ms), ``kill@seal+0-20``. Once
fired, it stays in force for its planned hold (drawn like the schedule's intervals) whatever the
steps say, so that "pause the new leader right after a takeover" pauses it long enough to matter;
a stop step that comes before the event disarms it. The start is recorded with its trigger: the
event, its node, and the lag from the event's true time to the firing, measured on the one
CLOCK_MONOTONIC the nodes and the harness share on a host.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import trio

EVENTS = (
    "seal",
    "lease-acquire",
    "lease-renew",
    "lease-loss",
    "takeover",
    "cursor",
    "start",
    "meta-truncate",
)
"""The event kinds a fault can be aimed at."""

MAX_DELAY_MS = 50.0
"""A planned delay is drawn from 0 to this."""

POLL_S = 0.002
"""How often the event logs are read while a fault is armed."""


TARGET_FIELD = {"takeover": "moved_to", "meta-truncate": "leader"}
"""Events whose fault hits a node the event names (in this field, or the first of its list), not
its writer; one that names none (a takeover of a node that led nothing) triggers nothing."""


def split(name: str) -> tuple[str, str | None]:
    """``"kill@seal+5"`` -> ``("kill", "seal")``; a plain name -> ``(name, None)``."""
    base, _, aimed = name.partition("@")
    return base, (aimed.partition("+")[0] or None)


def delay_range(name: str) -> tuple[float, float]:
    """The delay, in ms, an aimed name asks for: ``+D`` is D to D, ``+A-B`` A to B, none 0 to
    ``MAX_DELAY_MS``; ValueError, in one line, for anything else."""
    _, plus, text = name.partition("+")
    if not plus:
        return 0.0, MAX_DELAY_MS
    low, dash, high = text.partition("-")
    try:
        lo, hi = float(low), float(high if dash else low)
    except ValueError:
        raise ValueError(
            f"{name}: the delay after + is MS or LOW-HIGH in ms, not {text!r}"
        ) from None
    if not 0 <= lo <= hi:
        raise ValueError(f"{name}: the delay range must satisfy 0 <= LOW <= HIGH")
    return lo, hi


@dataclass(frozen=True)
class NodeEvent:
    """An event read from a node's log, as much as aiming needs."""

    kind: str
    node: int
    true_ns: int
    target: int | None
    """The node a fault aimed at this event hits; None: the event triggers nothing."""


class EventWatch:
    """Reads the nodes' event logs as they grow (each from where it stood when watched)."""

    def __init__(self, logs: dict[int, Path]) -> None:
        self._logs = logs
        self._at = {node: _size(path) for node, path in logs.items()}
        self._partial = {node: b"" for node in logs}

    def poll(self) -> list[NodeEvent]:
        """Events written since the last poll."""
        out = []
        for node, path in self._logs.items():
            size = _size(path)
            if size < self._at[node]:  # the log was replaced: read it from its start
                self._at[node], self._partial[node] = 0, b""
            if size == self._at[node]:
                continue
            with open(path, "rb") as f:
                f.seek(self._at[node])
                data = self._partial[node] + f.read(size - self._at[node])
            self._at[node] = size
            *lines, self._partial[node] = data.split(b"\n")
            for line in lines:
                try:
                    raw = json.loads(line)
                    node, true_ns = int(raw["node"]), int(raw["true_ns"])
                    field = TARGET_FIELD.get(raw["kind"])
                    named = raw.get(field) if field in raw else node
                    if isinstance(named, list):
                        named = named[0] if named else None
                    target = None if named is None else int(named)
                    out.append(NodeEvent(raw["kind"], node, true_ns, target))
                except (ValueError, KeyError, TypeError, IndexError):
                    continue
        return out

    async def next(self, kind: str, after_ns: int) -> NodeEvent:
        """The first ``kind`` event whose true time is at or after ``after_ns``."""
        while True:
            for event in self.poll():
                if event.kind == kind and event.true_ns >= after_ns and event.target is not None:
                    return event
            await trio.sleep(POLL_S)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def lag_ms(event: NodeEvent) -> float:
    """Milliseconds from the event's true time to now."""
    return round((time.monotonic_ns() - event.true_ns) / 1e6, 3)
