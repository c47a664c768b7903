"""Totals: what was written, acknowledged, read back, lost, duplicated, or surprising.

Jepsen's ``total-queue`` in spirit. Per topic:

- *attempted*: puts invoked; *acknowledged*: puts that returned ok;
- *lost*: acknowledged, never returned by any get — counted only when the history proves the
  queue was drained (an ok EMPTY get invoked after every acknowledged put returned), else those
  values are merely *unread*;
- *unexpected*: returned by a get but never put (or put failed);
- *duplicated*: returned by more than one get, where the system's delivery promise
  (``harness.history.delivery``) does not explain it (``redelivery``);
- *redelivered*: returned again as an at-least-once system may (its acknowledgement failed, was
  unknown, or may not have been processed yet): reported, not a violation;
- *recovered*: returned by a get although the put's outcome was unknown (info).

A get with unknown outcome whose value the nodes' logs resolved (``resolve``) counts as a read.

Valid when nothing is lost, unexpected or duplicated. A lost value that an info get may have
consumed cannot be told from a real loss, so then the verdict is ``"unknown"`` — unless the
system promises to hand out again, within its redelivery time, whatever it handed out and never
saw acknowledged (JetStream's AckWait): then, once a drain's EMPTY comes that long after the last
info get and the last fault, an info get cannot have taken a value for good, and a value never
read is lost.

Everything is counted on the history's columns (values by their hashes, sorted once); values
are read back as text only for the few anomalies reported.
"""

from typing import cast

import numpy as np

from harness.checker.redelivery import explained
from harness.checker.result import MAX_PER_KIND, Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN, merge
from harness.history import Op
from harness.history.columns import FAIL, GET, INFO, OK, PUT, Columns, last_per_value, lookup
from harness.history.delivery import EXACTLY_ONCE_IN_ORDER, Delivery

NUMBERS = (
    "attempted",
    "acknowledged",
    "read",
    "lost",
    "unread",
    "unexpected",
    "duplicated",
    "redelivered",
    "recovered",
    "info_gets",
)
"""The totals every topic reports, and the run sums, in its details."""


def check_topic(
    c: Columns,
    rows: np.ndarray,
    topic: str,
    delivery: Delivery = EXACTLY_ONCE_IN_ORDER,
    settled: float | None = None,
) -> CheckResult:
    """Totals for one topic (its rows of the columns, in invocation order), judged by
    ``delivery``; ``settled``: when (ns) no value an info get may have been handed can still be
    unread for good (None: never, so info gets may have consumed values)."""
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
    drained = empties[c.inv[empties] > max(last_ack, settled or 0)]
    # Values an info get may have consumed for good: none, once the system has had time to hand
    # out again whatever it handed them.
    may_consume = 0 if settled is not None else info_gets
    drain = int(drained[0]) if len(drained) else None
    at, was_put = lookup(put_values, uniq_read)
    put_kind_of_read = np.where(was_put, put_kind[at] if len(put_kind) else 0, FAIL)
    unexpected = np.flatnonzero(~was_put | (put_kind_of_read == FAIL))
    repeated = np.flatnonzero(read_count > 1)

    # Each repeated value's gets, read once, where a repeat may be a redelivery.
    reads: dict[int, list[Op]] = (
        {}
        if delivery.once
        else {
            k: c.rows_as_ops(read_rows_sorted[read_start[k] : read_start[k] + read_count[k]])
            for k in repeated.tolist()
        }
    )
    allowed = np.array(
        [k in reads and explained(reads[k], delivery) for k in repeated.tolist()], dtype=np.bool_
    )
    duplicated, redelivered = repeated[~allowed], repeated[allowed]
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
        "redelivered": len(redelivered),
        "recovered": int(recovered),
        "info_gets": info_gets,
        "drained": drain is not None,
    }
    details: dict[str, object] = dict(numbers)
    if len(redelivered):
        details["redelivered_examples"] = [
            {
                "value": value_of(read_rows_sorted[read_start[k]]),
                "deliveries": [op.describe() + _ack(op) for op in reads[k]],
            }
            for k in redelivered[:MAX_PER_KIND].tolist()
        ]
    if drain is None:
        details["unread_values"] = [value_of(r) for r in never_read_rows[:10].tolist()]
    if (
        len(unexpected)
        or len(duplicated)
        or (drain is not None and len(never_read_rows) > may_consume)
    ):
        valid: bool | str = False
    elif len(never_read_rows):
        valid = UNKNOWN
    else:
        valid = True
    counts = {k: numbers[k] for k in ("lost", "unexpected", "duplicated") if numbers.get(k)}
    return CheckResult(valid, counts, tuple(anomalies), details)


def check(
    c: Columns, delivery: Delivery = EXACTLY_ONCE_IN_ORDER, last_fault: float = 0.0
) -> CheckResult:
    """Totals of every topic, summed, judged by ``delivery``; ``last_fault``: when (ns) the last
    fault started or stopped (INF: one never stopped)."""
    settled = settled_after(c, delivery, last_fault)
    topics = {
        topic: check_topic(c, rows, topic, delivery, settled) for topic, rows in c.rows_of_topic()
    }
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


def _ack(op: Op) -> str:
    return "" if op.ack is None else f" (ack {op.ack})"


def settled_after(c: Columns, delivery: Delivery, last_fault: float) -> float | None:
    """When (ns) every value an info get may have been handed is back in its topic, by the
    system's redelivery promise: the redelivery time after the last info get completed or the
    last fault, whichever is later (a paused or cut-off server may hand out late a request it
    received before). None when the system promises no redelivery time, or an info get never
    completed."""
    if delivery.once or delivery.redelivery_s is None:
        return None
    info = np.flatnonzero((c.f == GET) & (c.type == INFO))
    last = 0.0
    if len(info):
        last = c.op(int(info[np.argmax(c.complete_index[info])])).end
        if (c.complete_index[info] < 0).any():
            return None
    latest = max(last, last_fault)
    return None if not np.isfinite(latest) else latest + delivery.redelivery_s * 1e9
