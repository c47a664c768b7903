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

import numpy as np

from harness.checker.fields import carried
from harness.checker.result import Json
from harness.history.columns import GET, INFO, OK, Columns, hash_value, lookup
from harness.history.node_events import NodeEvent


@dataclass(frozen=True)
class Resolution:
    """An info get's outcome, as the node that handed its entry out logged it."""

    invoke_index: int
    topic: str
    value: str
    pos: tuple[int, int]


def deliveries(events: list[NodeEvent]) -> dict[str, tuple[str, int, int, str | None, int]]:
    """tag -> (topic, segment, offset, value, true_ns) from every node's cursor events."""
    out: dict[str, tuple[str, int, int, str | None, int]] = {}
    for e in events:
        if e.kind != "cursor":
            continue
        for i, tag in enumerate(e.tags):
            if tag:
                value = e.values[i] if i < len(e.values) else None
                out[tag] = (
                    carried(e.topic),
                    carried(e.segment),
                    carried(e.first) + i,
                    value,
                    e.true_ns,
                )
    return out


def resolve_info_gets(
    c: Columns, events: list[NodeEvent] | None, audit: Json | None
) -> list[Resolution]:
    """The value each info get whose tag a node logged consumed.

    The value comes from the event (small payloads are logged) or, failing that, from the
    storage audit at the logged position. Only the info gets are read back as operations.
    """
    if not events:
        return []
    handed = deliveries(events)
    segments = (audit or {}).get("segments", {})
    returned_rows = np.flatnonzero((c.f == GET) & (c.type == OK) & c.has_value)
    returned = {
        code: np.unique(c.value[returned_rows[c.topic[returned_rows] == code]])
        for code in range(len(c.topics))
    }
    codes = {t: k for k, t in enumerate(c.topics)}
    claims: dict[tuple[str, str], tuple[int, int, tuple[int, int]]] = {}
    for row in np.flatnonzero((c.f == GET) & (c.type == INFO) & c.has_tag).tolist():
        op = c.op(row)
        if not op.tag or op.tag not in handed:
            continue
        topic, segment, offset, value, when = handed[op.tag]
        if topic != op.topic:
            continue
        if value is None:
            stored = segments.get(topic, {}).get(str(segment), {}).get("values", [])
            value = stored[offset] if offset < len(stored) else None
        if (
            value is None
            or lookup(returned[codes[topic]], np.asarray([hash_value(value)[0]]))[1][0]
        ):
            continue
        key = (topic, value)
        if key not in claims or when > claims[key][0]:
            claims[key] = (when, op.invoke_index, (segment, offset))
    return [
        Resolution(index, topic, value, pos) for (topic, value), (_, index, pos) in claims.items()
    ]


def apply(c: Columns, resolutions: list[Resolution]) -> Columns:
    """The history with each resolved info get carrying its value and position (new columns;
    ``c`` is left as it was)."""
    if not resolutions:
        return c
    value, has_value, seg, off, resolved = (
        a.copy() for a in (c.value, c.has_value, c.seg, c.off, c.resolved)
    )
    overrides = {}
    for r in resolutions:
        row = c.row(r.invoke_index)
        if row is None or c.f[row] != GET:
            continue
        value[row], has_value[row], resolved[row] = hash_value(r.value)[0], True, True
        seg[row], off[row] = r.pos
        overrides[row] = {"value": r.value, "resolved": True, "pos": r.pos}
    return replace(
        c,
        value=value,
        has_value=has_value,
        seg=seg,
        off=off,
        resolved=resolved,
        source=c.source.over(overrides),
    )
