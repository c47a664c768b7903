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
"""

from collections import defaultdict

from harness.checker.result import Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN, merge
from harness.history import Op, by_topic

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


def check_topic(ops: list[Op]) -> CheckResult:
    """Totals for one topic."""
    puts: dict[str, Op] = {}
    reads: dict[str, list[Op]] = defaultdict(list)
    info_gets = 0
    empties: list[Op] = []
    for o in ops:
        if o.f == "put":
            puts[o.value] = o
        elif o.value is not None:
            if o.type != "fail":
                reads[o.value].append(o)
        elif o.type == "info":
            info_gets += 1
        elif o.type == "ok":
            empties.append(o)
    topic = ops[0].topic if ops else None
    acked = {v for v, o in puts.items() if o.type == "ok"}
    last_ack = max((puts[v].ret for v in acked), default=0)
    drain = next((e for e in empties if e.inv > last_ack), None)
    never_read = sorted(acked - set(reads))
    unexpected = sorted(v for v in reads if v not in puts or puts[v].type == "fail")
    duplicated = sorted(v for v, got in reads.items() if len(got) > 1)
    recovered = sorted(v for v in reads if v in puts and puts[v].type == "info")
    anomalies = [
        Anomaly(kind, topic, tuple(o.invoke_index for o in reads[v]), values=(v,))
        for kind, values in (("unexpected", unexpected), ("duplicated", duplicated))
        for v in values
    ]
    if drain is not None:
        anomalies += [
            Anomaly("lost", topic, (puts[v].invoke_index, drain.invoke_index), values=(v,))
            for v in never_read
        ]
    numbers = {
        "attempted": len(puts),
        "acknowledged": len(acked),
        "read": sum(len(got) for got in reads.values()),
        "lost" if drain is not None else "unread": len(never_read),
        "unexpected": len(unexpected),
        "duplicated": len(duplicated),
        "recovered": len(recovered),
        "info_gets": info_gets,
        "drained": drain is not None,
    }
    if drain is None:
        numbers["unread_values"] = never_read[:10]
    if unexpected or duplicated or (drain is not None and len(never_read) > info_gets):
        valid: bool | str = False
    elif never_read:
        valid = UNKNOWN
    else:
        valid = True
    counts = {k: numbers[k] for k in ("lost", "unexpected", "duplicated") if numbers.get(k)}
    return CheckResult(valid, counts, tuple(anomalies), numbers)


def check(ops: list[Op]) -> CheckResult:
    """Totals of every topic, summed."""
    topics = {topic: check_topic(topic_ops) for topic, topic_ops in by_topic(ops)}
    summed = {k: sum(t.details.get(k, 0) for t in topics.values()) for k in NUMBERS}
    return CheckResult(
        merge([t.valid for t in topics.values()]),
        {k: summed[k] for k in ("lost", "unexpected", "duplicated") if summed[k]},
        keep([a for t in topics.values() for a in t.anomalies]),
        {
            **summed,
            "topics": {topic: {"valid": t.valid, **t.details} for topic, t in topics.items()},
        },
    )
