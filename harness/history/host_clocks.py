"""Hosts' clocks set against the control node's: the measured offsets, and events aligned by them.

On one machine every node and the harness read one CLOCK_MONOTONIC, so a node event's
``true_ns`` and the history's times lie on one time line. Nodes on hosts over SSH each read their
own. The control node measures each host's offset the way NTP does (``harness.remote.clocks``):
it notes its time, asks the host for its time, notes its time again, and takes the host's reading
minus the middle of that round trip as the offset, true within half the round trip (the host
read its clock somewhere inside it); of several round trips the shortest wins. Samples are taken
before the nodes start, every few seconds while they run and after they stop, and kept in the
run's ``clocks.json``.

An event's host time maps onto the control node's time by the offset interpolated between the
two samples around it, within a bound: the larger of the two samples' errors plus half the
change of offset between them (where the offset went in between is not known), and, outside the
samples, the nearest one's error plus ``MAX_DRIFT`` of the distance to it. A run's bound is the
largest over its events: a check that compares two hosts' events needs their times further
apart than twice it to tell which came first.
"""

import bisect
import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from harness.history.node_events import NodeEvent

MAX_DRIFT = 500e-6
"""How far (s/s) a host's clock may run from the control node's between samples: the limit
Linux's NTP discipline keeps a clock's frequency within (500 ppm)."""


@dataclass(frozen=True)
class Sample:
    """One measurement of a host's clock: when (the control node's ns, the round trip's
    middle), the offset (host minus control, ns) and its error (half the round trip, ns)."""

    at_ns: int
    offset_ns: int
    error_ns: int


@dataclass(frozen=True)
class HostClocks:
    """Every node's host's samples, in time order; ``t0_ns``: when the history's clock started
    (the control node's ns), so that samples can be drawn on the history's time line."""

    samples: dict[int, tuple[Sample, ...]]
    t0_ns: int = 0

    def to_json(self) -> dict[str, object]:
        """As ``clocks.json`` keeps it."""
        return {
            "t0_ns": self.t0_ns,
            "nodes": {
                str(node): [[s.at_ns, s.offset_ns, s.error_ns] for s in samples]
                for node, samples in sorted(self.samples.items())
            },
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> "HostClocks":
        """From ``to_json``'s form; ValueError if it is not that."""
        nodes = raw.get("nodes")
        if not isinstance(nodes, dict):
            raise ValueError("clocks.json has no nodes")
        try:
            samples = {
                int(node): tuple(Sample(int(a), int(o), int(e)) for a, o, e in rows)
                for node, rows in nodes.items()
            }
        except (TypeError, ValueError):
            raise ValueError("clocks.json: a sample is not [at_ns, offset_ns, error_ns]") from None
        t0 = raw.get("t0_ns", 0)
        return cls(samples, int(t0) if isinstance(t0, int | float) else 0)

    @classmethod
    def read(cls, path: Path) -> "HostClocks":
        """A run's ``clocks.json``."""
        return cls.from_json(json.loads(path.read_text()))

    def align(self, node: int, host_ns: int) -> tuple[int, int]:
        """The control node's time for ``host_ns`` on ``node``'s host, and the bound on it (ns);
        ValueError if the node's host was never measured."""
        samples = self.samples.get(node)
        if not samples:
            raise ValueError(f"node {node}'s host clock was never measured")
        host_times = self._host_times[node]
        k = bisect.bisect_right(host_times, host_ns)
        if k == 0 or k == len(samples):
            near = samples[0] if k == 0 else samples[-1]
            distance = abs(host_ns - (near.at_ns + near.offset_ns))
            return host_ns - near.offset_ns, near.error_ns + int(distance * MAX_DRIFT)
        a, b = samples[k - 1], samples[k]
        span = host_times[k] - host_times[k - 1]
        part = (host_ns - host_times[k - 1]) / span if span else 0.0
        offset = a.offset_ns + (b.offset_ns - a.offset_ns) * part
        bound = max(a.error_ns, b.error_ns) + abs(b.offset_ns - a.offset_ns) // 2
        return host_ns - round(offset), bound

    def aligned(self, events: list[NodeEvent]) -> tuple[list[NodeEvent], int]:
        """``events`` with ``true_ns`` moved onto the control node's time, and the largest bound
        among them (ns)."""
        out, bound = [], 0
        for e in events:
            at, error = self.align(e.node, e.true_ns)
            bound = max(bound, error)
            out.append(dataclasses.replace(e, true_ns=at))
        return out, bound

    @functools.cached_property
    def _host_times(self) -> dict[int, list[int]]:
        """Per node, when each sample was taken on its host's clock (made once: ``align`` runs
        per event)."""
        return {n: [s.at_ns + s.offset_ns for s in ss] for n, ss in self.samples.items()}

    def widest(self) -> int:
        """The largest error of any sample (ns): the bound when no event was logged."""
        return max((s.error_ns for ss in self.samples.values() for s in ss), default=0)
