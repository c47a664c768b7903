"""Resolving what info gets consumed, from the nodes' own records.

A GET whose reply was lost may have taken an entry off the queue; the client cannot know which.
The workload tags every ``GETX`` and the node that hands out an entry logs the tag with the
entry's position and value (a ``cursor`` event) before it replies. An info get whose tag appears
there consumed exactly that value: the checkers then treat it as a dequeue of that value that
never returned. Tags with no log entry stay unresolved.
"""

from harness.history import Op


def deliveries(events: list[dict]) -> dict[str, tuple[str, int, int, str | None]]:
    """tag -> (topic, segment, offset, value) from every node's cursor events."""
    out = {}
    for e in events:
        if e.get("kind") != "cursor":
            continue
        tags, values = e.get("tags") or [], e.get("values") or []
        for i, tag in enumerate(tags):
            if tag:
                value = values[i] if i < len(values) else None
                out[tag] = (e["topic"], e["segment"], e["first"] + i, value)
    return out


def resolve_info_gets(ops: list[Op], events: list[dict] | None, audit: dict | None) -> int:
    """Give each info get whose tag a node logged the value it consumed; returns how many.

    The value comes from the event (small payloads are logged) or, failing that, from the
    storage audit at the logged position.
    """
    if not events:
        return 0
    handed = deliveries(events)
    segments = (audit or {}).get("segments", {})
    resolved = 0
    for op in ops:
        if op.f != "get" or op.type != "info" or not op.tag or op.tag not in handed:
            continue
        topic, segment, offset, value = handed[op.tag]
        if topic != op.topic:
            continue
        if value is None:
            stored = segments.get(topic, {}).get(str(segment), {}).get("values", [])
            value = stored[offset] if offset < len(stored) else None
        if value is not None:
            op.value, op.resolved, op.pos = value, True, (segment, offset)
            resolved += 1
    return resolved
