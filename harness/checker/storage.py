"""The storage audit: what the nodes hold, read without consuming it (SCAN), against the history.

- every acknowledged ``PUTX`` is stored at the position it was acknowledged at;
- nothing is stored that no put ever attempted;
- entries stored past a sealed segment's count can never be read (Walrus 0.3's rollover race);
  if any of them was acknowledged, that is data loss.

Segments that could not be scanned make the verdict ``"unknown"`` unless a violation is proven.
"""

from collections import defaultdict

from harness.history import Op

MAX_REPORTED = 20


def check(ops: list[Op], audit: dict) -> dict:
    """Compare the audit (``workload.audit``) with the history."""
    problems: dict[str, list[str]] = defaultdict(list)
    segments = audit.get("segments", {})
    attempted = defaultdict(set)
    for op in ops:
        if op.f == "put":
            attempted[op.topic].add(op.value)
    acked_at = {}
    for op in ops:
        if op.f == "put" and op.ok and op.pos is not None:
            acked_at[(op.topic, op.value)] = op
            seg = segments.get(op.topic, {}).get(str(op.pos[0]))
            if seg is None:
                continue
            values = seg["values"]
            if op.pos[1] >= len(values) or values[op.pos[1]] != op.value:
                found = values[op.pos[1]] if op.pos[1] < len(values) else "nothing"
                problems["acknowledged_not_stored"].append(
                    f"{op.describe()} was acknowledged at {op.topic} segment {op.pos[0]} offset "
                    f"{op.pos[1]}, where the store holds {found!r}"
                )
    stored_total = beyond_total = 0
    for topic, segs in segments.items():
        for segment, seg in segs.items():
            values = seg["values"]
            stored_total += len(values)
            for v in values:
                if v not in attempted[topic]:
                    problems["phantom"].append(
                        f"{topic} segment {segment} stores {v!r}, which no put attempted"
                    )
            count = seg.get("count")
            if seg.get("state") == "sealed" and count is not None and len(values) > count:
                beyond = values[count:]
                beyond_total += len(beyond)
                acked = [v for v in beyond if (topic, v) in acked_at]
                if acked:
                    problems["acknowledged_beyond_count"].append(
                        f"{topic} segment {segment} was sealed at {count} entries but stores "
                        f"{len(values)}; acknowledged values past the count, never readable: "
                        + ", ".join(repr(v) for v in acked[:5])
                    )
    counts = {k: len(v) for k, v in problems.items() if v}
    errors = audit.get("errors", [])
    valid: bool | str = False if counts else ("unknown" if errors else True)
    return {
        "valid": valid,
        "counts": counts,
        "stored": stored_total,
        "stored_beyond_count": beyond_total,
        "anomalies": {k: v[:MAX_REPORTED] for k, v in problems.items() if v},
        "errors": errors[:MAX_REPORTED],
    }
