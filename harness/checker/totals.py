"""Totals: what was written, acknowledged, read back, lost, duplicated, or surprising.

Jepsen's ``total-queue`` in spirit. Per topic:

- *attempted*: puts invoked; *acknowledged*: puts that returned ok;
- *lost*: acknowledged, never returned by any get — counted only when the history proves the
  queue was drained (an ok EMPTY get invoked after every acknowledged put returned), else those
  values are merely *unread*;
- *unexpected*: returned by a get but never put (or put failed);
- *duplicated*: returned by more than one get;
- *recovered*: returned by a get although the put's outcome was unknown (info).

A get with unknown outcome whose value the nodes' logs resolved (``resolve``) counts as a read.

Valid when nothing is lost, unexpected or duplicated. A lost value that an info get may have
consumed cannot be told from a real loss, so then the verdict is ``"unknown"``.

Everything is counted on the history's columns (values by their hashes, sorted once); values
are read back as text only for the few anomalies reported.
"""

from typing import cast

import numpy as np

from harness.checker.result import MAX_PER_KIND, Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN, merge
from harness.history.columns import FAIL, GET, INFO, OK, PUT, Columns, last_per_value, lookup

NUMBERS = (
    "attempted",
    "acknowledged",
    "read",
    "lost",
    "unread",
    "unexpected",
    "duplicated",
    "recovered",
    "info_gets",
)
"""The totals every topic reports, and the run sums, in its details."""


def check_topic(c: Columns, rows: np.ndarray, topic: str) -> CheckResult:
    """Totals for one topic (its rows of the columns, in invocation order)."""
    f, kind, has = c.f[rows], c.type[rows], c.has_value[rows]
    put_rows = rows[f == PUT]
    put_values, put_last = last_per_value(c.value[put_rows], put_rows)
    put_kind = c.type[put_last]
    read_rows = rows[(f == GET) & has & (kind != FAIL)]
    read_values = c.value[read_rows]
    order = np.argsort(read_values, kind="stable")
    read_sorted, read_rows_sorted = read_values[order], read_rows[order]
    uniq_read, read_start, read_count = np.unique(
        read_sorted, return_index=True, return_counts=True
    )
    info_gets = int(np.count_nonzero((f == GET) & ~has & (kind == INFO)))
    empties = rows[(f == GET) & ~has & (kind == OK)]

    acked = put_kind == OK
    last_ack = c.ret[put_last[acked]].max() if acked.any() else 0
    drained = empties[c.inv[empties] > last_ack]
    drain = int(drained[0]) if len(drained) else None
    at, was_put = lookup(put_values, uniq_read)
    put_kind_of_read = np.where(was_put, put_kind[at] if len(put_kind) else 0, FAIL)
    unexpected = np.flatnonzero(~was_put | (put_kind_of_read == FAIL))
    duplicated = np.flatnonzero(read_count > 1)
    recovered = np.count_nonzero(was_put & (put_kind_of_read == INFO))
    _, was_read = lookup(uniq_read, put_values[acked])
    never_read_rows = np.sort(put_last[acked][~was_read])

    def reads_of(k: int) -> tuple[int, ...]:
        got = read_rows_sorted[read_start[k] : read_start[k] + read_count[k]]
        return tuple(int(i) for i in c.invoke_index[np.sort(got)])

    def value_of(row: int) -> str | None:
        return c.op(int(row)).value

    anomalies = [
        Anomaly(kind_, topic, reads_of(k), values=(value_of(read_rows_sorted[read_start[k]]),))
        for kind_, found in (("unexpected", unexpected), ("duplicated", duplicated))
        for k in found[:MAX_PER_KIND].tolist()
    ]
    if drain is not None:
        anomalies += [
            Anomaly(
                "lost",
                topic,
                (int(c.invoke_index[r]), int(c.invoke_index[drain])),
                values=(value_of(r),),
            )
            for r in never_read_rows[:MAX_PER_KIND].tolist()
        ]
    numbers: dict[str, int] = {
        "attempted": len(put_values),
        "acknowledged": int(acked.sum()),
        "read": len(read_rows),
        "lost" if drain is not None else "unread": len(never_read_rows),
        "unexpected": len(unexpected),
        "duplicated": len(duplicated),
        "recovered": int(recovered),
        "info_gets": info_gets,
        "drained": drain is not None,
    }
    details: dict[str, object] = dict(numbers)
    if drain is None:
        details["unread_values"] = [value_of(r) for r in never_read_rows[:10].tolist()]
    if (
        len(unexpected)
        or len(duplicated)
        or (drain is not None and len(never_read_rows) > info_gets)
    ):
        valid: bool | str = False
    elif len(never_read_rows):
        valid = UNKNOWN
    else:
        valid = True
    counts = {k: numbers[k] for k in ("lost", "unexpected", "duplicated") if numbers.get(k)}
    return CheckResult(valid, counts, tuple(anomalies), details)


def check(c: Columns) -> CheckResult:
    """Totals of every topic, summed."""
    topics = {topic: check_topic(c, rows, topic) for topic, rows in c.rows_of_topic()}
    # each topic's details hold its NUMBERS as ints (check_topic)
    summed = {k: sum(cast(int, t.details.get(k, 0)) for t in topics.values()) for k in NUMBERS}
    return CheckResult(
        merge([t.valid for t in topics.values()]),
        {k: summed[k] for k in ("lost", "unexpected", "duplicated") if summed[k]},
        keep([a for t in topics.values() for a in t.anomalies]),
        {
            **summed,
            "topics": {topic: {"valid": t.valid, **t.details} for topic, t in topics.items()},
        },
    )
