"""The storage audit: what the nodes hold, read without consuming it (SCAN), against the history.

- every acknowledged ``PUTX`` is stored at the position it was acknowledged at;
- nothing is stored that no put ever attempted;
- entries stored past a sealed segment's count can never be read (Walrus 0.3's rollover race);
  if any of them was acknowledged, that is data loss.

Segments that could not be scanned make the verdict ``"unknown"`` unless a violation is proven.
"""

from collections.abc import Callable

import numpy as np

from harness.checker.result import MAX_PER_KIND, Anomaly, CheckResult, Json, keep
from harness.checker.verdict import UNKNOWN
from harness.history.columns import NO, PUT, Columns, hash_values, last_per_value, lookup

MAX_ERRORS = 20
"""Scan errors kept in the details."""


def check(c: Columns, audit: Json) -> CheckResult:
    """Compare the audit (``workload.audit``) with the history; stored values are compared with
    the history's by their hashes, and read as text only for the anomalies reported."""
    found: list[Anomaly] = []
    counts: dict[str, int] = {}

    def add(kind: str, build: Callable[..., Anomaly], *args: object) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= MAX_PER_KIND:
            found.append(build(c, *args))

    segments = audit.get("segments", {})
    stored_total = beyond_total = 0
    codes = {t: k for k, t in enumerate(c.topics)}
    for topic in sorted(set(codes) | set(segments)):
        mine = c.topic == codes.get(topic, -1)
        attempted = np.unique(c.value[mine & (c.f == PUT)])
        acked = np.flatnonzero(mine & c.acked_put & (c.seg != NO))
        acked_values, acked_last = last_per_value(c.value[acked], acked)
        stored = {
            int(k): (seg, hash_values(seg["values"])) for k, seg in segments.get(topic, {}).items()
        }
        for r in acked.tolist():
            if (seg := stored.get(int(c.seg[r]))) is None:
                continue
            values, hashes = seg[0]["values"], seg[1]
            off = int(c.off[r])
            if off >= len(values) or hashes[off] != c.value[r]:
                add("acknowledged_not_stored", _not_stored, topic, r, values)
        for segment, (seg, hashes) in stored.items():
            values = seg["values"]
            stored_total += len(values)
            for i in np.flatnonzero(~np.isin(hashes, attempted)).tolist():
                add("phantom", _phantom, topic, segment, values[i])
            count = seg.get("count")
            if seg.get("state") == "sealed" and count is not None and len(values) > count:
                beyond = hashes[count:]
                beyond_total += len(beyond)
                rows = _rows_of(acked_values, acked_last, beyond)[:5]
                if rows:
                    add("acknowledged_beyond_count", _beyond, topic, rows, segment, seg)
    errors = audit.get("errors", [])
    valid: bool | str = False if counts else (UNKNOWN if errors else True)
    details = {
        "stored": stored_total,
        "stored_beyond_count": beyond_total,
        "errors": errors[:MAX_ERRORS],
    }
    return CheckResult(valid, counts, keep(found), details)


def _rows_of(values: np.ndarray, rows: np.ndarray, wanted: np.ndarray) -> list[int]:
    """The rows holding each of ``wanted`` that ``values`` (sorted) has, in ``wanted``'s order."""
    at, found = lookup(values, wanted)
    picked: list[int] = rows[at[found]].tolist()
    return picked


def _not_stored(c: Columns, topic: str, r: int, values: list[str]) -> Anomaly:
    off = int(c.off[r])
    return Anomaly(
        "acknowledged_not_stored",
        topic,
        (int(c.invoke_index[r]),),
        positions=((int(c.seg[r]), off),),
        values=(c.op(r).value,),
        facts={"found": values[off] if off < len(values) else "nothing"},
    )


def _phantom(c: Columns, topic: str, segment: int, value: str) -> Anomaly:
    return Anomaly("phantom", topic, values=(value,), facts={"segment": segment})


def _beyond(c: Columns, topic: str, rows: list[int], segment: int, seg: Json) -> Anomaly:
    return Anomaly(
        "acknowledged_beyond_count",
        topic,
        tuple(int(c.invoke_index[r]) for r in rows),
        values=tuple(c.op(r).value for r in rows),
        facts={"segment": segment, "count": seg["count"], "stored": len(seg["values"])},
    )
