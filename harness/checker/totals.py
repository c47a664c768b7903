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

from collections import Counter

from harness.checker.verdict import merge
from harness.history import Op, by_topic


def check_topic(ops: list[Op]) -> dict:
    """Totals for one topic."""
    puts: dict[str, Op] = {}
    reads: Counter = Counter()
    info_gets = 0
    empties: list[float] = []
    for o in ops:
        if o.f == "put":
            puts[o.value] = o
        elif o.value is not None:
            if o.type != "fail":
                reads[o.value] += 1
        elif o.type == "info":
            info_gets += 1
        elif o.type == "ok":
            empties.append(o.inv)
    acked = {v for v, o in puts.items() if o.type == "ok"}
    last_ack = max((puts[v].ret for v in acked), default=0)
    drained = any(inv > last_ack for inv in empties)
    never_read = sorted(acked - set(reads))
    unexpected = sorted(v for v in reads if v not in puts or puts[v].type == "fail")
    duplicated = sorted(v for v, n in reads.items() if n > 1)
    recovered = sorted(v for v in reads if v in puts and puts[v].type == "info")
    result = {
        "attempted": len(puts),
        "acknowledged": len(acked),
        "read": sum(reads.values()),
        "lost" if drained else "unread": len(never_read),
        "unexpected": len(unexpected),
        "duplicated": len(duplicated),
        "recovered": len(recovered),
        "info_gets": info_gets,
        "drained": drained,
        "examples": {
            "lost" if drained else "unread": never_read[:10],
            "unexpected": unexpected[:10],
            "duplicated": duplicated[:10],
        },
    }
    if unexpected or duplicated or (drained and len(never_read) > info_gets):
        valid: bool | str = False
    elif never_read:
        valid = "unknown"
    else:
        valid = True
    result["valid"] = valid
    return result


def check(ops: list[Op]) -> dict:
    """Totals of every topic, summed, with ``valid``."""
    topics = {topic: check_topic(topic_ops) for topic, topic_ops in by_topic(ops)}
    keys = (
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
    summed = {k: sum(t.get(k, 0) for t in topics.values()) for k in keys}
    return {
        "valid": merge([t["valid"] for t in topics.values()]),
        "counts": {k: summed[k] for k in ("lost", "unexpected", "duplicated") if summed[k]},
        **summed,
        "topics": topics,
    }
