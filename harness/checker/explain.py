"""Anomalies in words: the one line a person reads, made from an anomaly's data at the edge.

Checkers never write prose (``harness.checker.result``); this module renders each kind from
the anomaly's fields and the operations it names, as Elle's ``explain-pair-data`` does, so the
same data can be drawn on a timeline, filtered in a browser or printed here.
"""

from collections.abc import Callable, Mapping
from typing import cast

from harness.checker.result import Anomaly
from harness.history import Op

Describe = Callable[[int], str]


def _at(a: Anomaly, i: int = 0) -> str:
    segment, offset = a.positions[i]
    return f"{a.topic} segment {segment} offset {offset}"


def _vfresh(a: Anomaly, d: Describe) -> str:
    value = a.values[0]
    cause = a.facts.get("cause")
    if cause == "never put":
        return f"{d(a.ops[0])} returned {value!r}, which no put ever wrote"
    if cause == "put failed":
        return f"{d(a.ops[1])} returned {value!r}, whose put failed ({d(a.ops[0])})"
    return f"{d(a.ops[1])} returned {value!r} before its put began ({d(a.ops[0])})"


def _vrepet(a: Anomaly, d: Describe) -> str:
    shown = "; ".join(d(i) for i in a.ops[:3])
    return f"{a.values[0]!r} was dequeued {len(a.ops)} times: {shown}"


def _vord(a: Anomaly, d: Describe) -> str:
    x, y = a.values
    head = (
        f"{x!r} was enqueued ({d(a.ops[0])}) before {y!r} was ({d(a.ops[1])}), yet {y!r} was "
        f"dequeued ({d(a.ops[2])})"
    )
    if len(a.ops) == 3:
        return f"{head} and {x!r} never was: it was skipped or lost"
    return f"{head} before {x!r} was ({d(a.ops[3])})"


def _vwit(a: Anomaly, d: Describe) -> str:
    shown = ", ".join(repr(v) for v in a.values)
    return (
        f"{d(a.ops[0])} answered EMPTY, but throughout it values were certainly in the queue "
        f"(enqueued before, dequeued after or never): {shown}"
    )


def _lost(a: Anomaly, d: Describe) -> str:
    return (
        f"{d(a.ops[0])} was acknowledged and never read back, though {d(a.ops[1])} found "
        f"{a.topic} empty after it"
    )


def _unexpected(a: Anomaly, d: Describe) -> str:
    return f"{d(a.ops[0])} returned {a.values[0]!r}, which no successful put wrote"


def _duplicated(a: Anomaly, d: Describe) -> str:
    shown = "; ".join(d(i) for i in a.ops[:3])
    return f"{a.values[0]!r} was read {len(a.ops)} times: {shown}"


def _duplicate_positions(a: Anomaly, d: Describe) -> str:
    return f"{d(a.ops[0])} and {d(a.ops[1])} were both acknowledged at {_at(a)}"


def _wrong_leader(a: Anomaly, d: Describe) -> str:
    f = a.facts
    return (
        f"{d(a.ops[0])} was acknowledged by node {a.nodes[0]} epoch {f['epoch']} in {a.topic} "
        f"segment {a.positions[0][0]}, which node {f['leader']} led (epoch {f['leader_epoch']})"
    )


def _beyond_sealed_count(a: Anomaly, d: Describe) -> str:
    segment, offset = a.positions[0]
    return (
        f"{d(a.ops[0])} was acknowledged at offset {offset} of {a.topic} segment {segment}, but "
        f"the segment was sealed with {a.facts['sealed']} entries: it will never be read"
    )


def _several_writers(a: Anomaly, d: Describe) -> str:
    nodes = sorted(n for n in a.nodes if n is not None)  # every writer is named
    return f"{a.topic} segment {a.facts['segment']} was appended to by nodes {nodes}"


def _overlapping_writers(a: Anomaly, d: Describe) -> str:
    f = a.facts
    return (
        f"{a.topic}: node {a.nodes[0]} appended to segment {f['segment']} at "
        f"{a.times_ns[0] / 1e9:.3f}s (true time), before node {a.nodes[1]}'s last append to "
        f"segment {f['previous_segment']} at {a.times_ns[1] / 1e9:.3f}s: two writers at once"
    )


def _append(a: Anomaly) -> str:
    return f"node {a.nodes[0]} appended to {_at(a)} at {a.times_ns[0] / 1e9:.3f}s (true time)"


def _without_lease(a: Anomaly, d: Describe) -> str:
    return f"{_append(a)} with no lease committed"


def _after_expiry_node_clock(a: Anomaly, d: Describe) -> str:
    f = a.facts
    return (
        f"{_append(a)}, at its clock's {f['node_time']:.3f} after its lease expired at "
        f"{f['expiry']:.3f}"
    )


def _after_expiry_true_time(a: Anomaly, d: Describe) -> str:
    f = a.facts
    return (
        f"{_append(a)}, {f['after_renewal_s']:.3f}s after its last renewal committed: beyond "
        f"the lease duration {f['lease_s']:g}s in true time, so its clock ran slower than the "
        "drift bound allows"
    )


def _not_stored(a: Anomaly, d: Describe) -> str:
    return f"{d(a.ops[0])} was acknowledged at {_at(a)}, where the store holds {a.facts['found']!r}"


def _phantom(a: Anomaly, d: Describe) -> str:
    return f"{a.topic} segment {a.facts['segment']} stores {a.values[0]!r}, which no put attempted"


def _beyond_count(a: Anomaly, d: Describe) -> str:
    f = a.facts
    shown = ", ".join(repr(v) for v in a.values)
    return (
        f"{a.topic} segment {f['segment']} was sealed at {f['count']} entries but stores "
        f"{f['stored']}; acknowledged values past the count, never readable: {shown}"
    )


def _command(c: object) -> str:
    """A command as ``harness.checker.metadata.command`` put it in the facts (None: none)."""
    if c is None:
        return "nothing"
    assert isinstance(c, Mapping)
    return f"{c['cmd']} (term {c['term']}, {c['hash']})"


def _commands(a: Anomaly) -> tuple[object, object]:
    """The two commands an anomaly's facts hold under ``commands``."""
    x, y = cast("list[object]", a.facts["commands"])
    return x, y


def _apply_divergence(a: Anomaly, d: Describe) -> str:
    x, y = _commands(a)
    return (
        f"nodes {a.nodes[0]} and {a.nodes[1]} applied different metadata commands at Raft index "
        f"{a.facts['index']}: {_command(x)} and {_command(y)}"
    )


def _reapplied_differently(a: Anomaly, d: Describe) -> str:
    f = a.facts
    return (
        f"node {a.nodes[0]} applied Raft index {f['index']} twice, first {_command(f['first'])} "
        f"then {_command(f['then'])}"
    )


def _log_matching(a: Anomaly, d: Describe) -> str:
    f = a.facts
    x, y = _commands(a)
    return (
        f"nodes {a.nodes[0]} and {a.nodes[1]} both applied Raft index {f['matched_index']} of "
        f"term {f['matched_term']}, yet at index {f['index']} they applied {_command(x)} and "
        f"{_command(y)}"
    )


def _committed_lost(a: Anomaly, d: Describe) -> str:
    f = a.facts
    if f.get("refused"):
        return (
            f"node {a.nodes[0]} was sent an entry of term {f['sent_term']} at Raft index "
            f"{f['index']}, where it had committed one of term {f['held_term']} (applied "
            f"{f['applied']}, commit {f['commit']}): the leader lacked a committed entry"
        )
    return (
        f"node {a.nodes[0]} was told {_command(f['acknowledged'])} committed at Raft index "
        f"{f['index']}, but node {a.nodes[1]} applied past it with {_command(f['applied'])} there"
    )


def _applied_truncated(a: Anomaly, d: Describe) -> str:
    f = a.facts
    return (
        f"node {a.nodes[0]} deleted Raft entries {f['start']}-{f['end']} from its log, having "
        f"applied up to {f['applied']} (commit {f['commit']})"
    )


RENDER: dict[str, Callable[[Anomaly, Describe], str]] = {
    "VFresh": _vfresh,
    "VRepet": _vrepet,
    "VOrd": _vord,
    "VWit": _vwit,
    "lost": _lost,
    "unexpected": _unexpected,
    "duplicated": _duplicated,
    "duplicate_positions": _duplicate_positions,
    "wrong_leader": _wrong_leader,
    "beyond_sealed_count": _beyond_sealed_count,
    "several_writers_per_segment": _several_writers,
    "overlapping_writers": _overlapping_writers,
    "append_without_lease": _without_lease,
    "append_after_expiry_node_clock": _after_expiry_node_clock,
    "append_after_expiry_true_time": _after_expiry_true_time,
    "acknowledged_not_stored": _not_stored,
    "phantom": _phantom,
    "acknowledged_beyond_count": _beyond_count,
    "apply_divergence": _apply_divergence,
    "reapplied_differently": _reapplied_differently,
    "log_matching": _log_matching,
    "committed_lost": _committed_lost,
    "applied_truncated": _applied_truncated,
}
"""Every anomaly kind a checker reports, and how it reads."""


def explain(anomaly: Anomaly, ops: Mapping[int, Op]) -> str:
    """The anomaly's one line, naming its operations by their descriptions."""

    def describe(index: int) -> str:
        op = ops.get(index)
        return op.describe() if op is not None else f"op #{index}"

    return RENDER[anomaly.kind](anomaly, describe)
