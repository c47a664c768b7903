"""The storage audit: what the nodes hold, read without consuming it (SCAN), against the history.

- every acknowledged ``PUTX`` is stored at the position it was acknowledged at;
- nothing is stored that no put ever attempted;
- entries stored past a sealed segment's count can never be read (Walrus 0.3's rollover race);
  if any of them was acknowledged, that is data loss.

Segments that could not be scanned make the verdict ``"unknown"`` unless a violation is proven.
"""

from harness.checker.result import Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN
from harness.history import Op

MAX_ERRORS = 20
"""Scan errors kept in the details."""


def check(ops: list[Op], audit: dict) -> CheckResult:
    """Compare the audit (``workload.audit``) with the history."""
    found: list[Anomaly] = []
    segments = audit.get("segments", {})
    attempted: dict[str, set] = {}
    for op in ops:
        if op.f == "put":
            attempted.setdefault(op.topic, set()).add(op.value)
    acked_at = {}
    for op in ops:
        if op.f == "put" and op.ok and op.pos is not None:
            acked_at[(op.topic, op.value)] = op
            seg = segments.get(op.topic, {}).get(str(op.pos[0]))
            if seg is None:
                continue
            values = seg["values"]
            if op.pos[1] >= len(values) or values[op.pos[1]] != op.value:
                stored = values[op.pos[1]] if op.pos[1] < len(values) else "nothing"
                found.append(
                    Anomaly(
                        "acknowledged_not_stored",
                        op.topic,
                        (op.invoke_index,),
                        positions=(tuple(op.pos),),
                        values=(op.value,),
                        facts={"found": stored},
                    )
                )
    stored_total = beyond_total = 0
    for topic, segs in segments.items():
        for segment, seg in segs.items():
            values = seg["values"]
            stored_total += len(values)
            for v in values:
                if v not in attempted.get(topic, ()):
                    found.append(
                        Anomaly("phantom", topic, values=(v,), facts={"segment": int(segment)})
                    )
            count = seg.get("count")
            if seg.get("state") == "sealed" and count is not None and len(values) > count:
                beyond = values[count:]
                beyond_total += len(beyond)
                acked = [acked_at[(topic, v)] for v in beyond if (topic, v) in acked_at]
                if acked:
                    found.append(
                        Anomaly(
                            "acknowledged_beyond_count",
                            topic,
                            tuple(o.invoke_index for o in acked[:5]),
                            values=tuple(o.value for o in acked[:5]),
                            facts={"segment": int(segment), "count": count, "stored": len(values)},
                        )
                    )
    counts: dict[str, int] = {}
    for a in found:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    errors = audit.get("errors", [])
    valid: bool | str = False if counts else (UNKNOWN if errors else True)
    details = {
        "stored": stored_total,
        "stored_beyond_count": beyond_total,
        "errors": errors[:MAX_ERRORS],
    }
    return CheckResult(valid, counts, keep(found), details)
