"""Resolving what info gets consumed, from the nodes' own records.

A GET whose reply was lost may have taken an entry off the queue; the client cannot know which.
The workload tags every ``GETX`` and the node that hands out an entry logs the tag with the
entry's position and value (a ``cursor`` event) before it persists the new position and replies.
So a logged hand-out either took effect, or the node crashed before persisting it and the entry
was handed out again later. An info get whose tag is logged therefore consumed that value unless
another GET returned the same value (then the logged hand-out never took effect); when several
info gets were logged with one value, the last one took it. Tags with no log entry stay
unresolved.

Resolutions are data: ``resolve_info_gets`` says which info get took which value, and ``apply``
makes the history the checkers read from them, leaving the loaded operations as they were.
"""

from dataclasses import dataclass, replace

from harness.history import Op
from harness.node_events import NodeEvent


@dataclass(frozen=True)
class Resolution:
    """An info get's outcome, as the node that handed its entry out logged it."""

    invoke_index: int
    topic: str
    value: str
    pos: tuple[int, int]


def deliveries(events: list[NodeEvent]) -> dict[str, tuple[str, int, int, str | None, int]]:
    """tag -> (topic, segment, offset, value, true_ns) from every node's cursor events."""
    out = {}
    for e in events:
        if e.kind != "cursor":
            continue
        for i, tag in enumerate(e.tags):
            if tag:
                value = e.values[i] if i < len(e.values) else None
                out[tag] = (e.topic, e.segment, e.first + i, value, e.true_ns)
    return out


def resolve_info_gets(
    ops: list[Op], events: list[NodeEvent] | None, audit: dict | None
) -> list[Resolution]:
    """The value each info get whose tag a node logged consumed.

    The value comes from the event (small payloads are logged) or, failing that, from the
    storage audit at the logged position.
    """
    if not events:
        return []
    handed = deliveries(events)
    segments = (audit or {}).get("segments", {})
    returned = {(o.topic, o.value) for o in ops if o.f == "get" and o.ok and o.value is not None}
    claims: dict[tuple[str, str], tuple[int, Op, tuple[int, int]]] = {}
    for op in ops:
        if op.f != "get" or op.type != "info" or not op.tag or op.tag not in handed:
            continue
        topic, segment, offset, value, when = handed[op.tag]
        if topic != op.topic:
            continue
        if value is None:
            stored = segments.get(topic, {}).get(str(segment), {}).get("values", [])
            value = stored[offset] if offset < len(stored) else None
        if value is None or (topic, value) in returned:
            continue
        key = (topic, value)
        if key not in claims or when > claims[key][0]:
            claims[key] = (when, op, (segment, offset))
    return [
        Resolution(op.invoke_index, topic, value, pos)
        for (topic, value), (_, op, pos) in claims.items()
    ]


def apply(ops: list[Op], resolutions: list[Resolution]) -> list[Op]:
    """The history with each resolved info get carrying its value and position (new operations;
    ``ops`` is left as it was)."""
    by_index = {r.invoke_index: r for r in resolutions}
    return [
        replace(op, value=r.value, resolved=True, pos=r.pos)
        if (r := by_index.get(op.invoke_index)) is not None and op.f == "get"
        else op
        for op in ops
    ]
