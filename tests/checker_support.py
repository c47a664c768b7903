"""Building queue histories for checker tests."""

import numpy as np

from harness.checker import queue
from harness.checker.result import CheckResult
from harness.history import INF, Op
from harness.history.columns import from_ops

_counter = [0]


def op(f: str, value, inv: float, ret: float | None, type_: str = "ok", topic: str = "t") -> Op:
    """An operation; ``ret=None`` means it never completed (info)."""
    _counter[0] += 1
    if ret is None:
        ret, type_ = INF, "info"
    return Op(_counter[0], f, topic, value, inv, ret, type_, _counter[0], None)


def put(value: str, inv: float, ret: float | None, type_: str = "ok") -> Op:
    return op("put", value, inv, ret, type_)


def get(value, inv: float, ret: float | None, type_: str = "ok") -> Op:
    return op("get", value, inv, ret, type_)


def check_topic(ops: list[Op]) -> CheckResult:
    """The queue checker on one topic's operations."""
    c = from_ops(ops)
    return queue.check_topic(c, np.arange(len(c)), ops[0].topic if ops else None)
