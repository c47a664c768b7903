"""A brute-force linearizability check of a FIFO queue history (Wing and Gong, 1993).

Searches for a sequential order of the operations that respects real time (an operation may go
next only if no pending operation returned before it was invoked) and the queue's semantics.
Operations with unknown outcome may take effect at any point after their invocation, or never.
Exponential: for cross-checking the bad-pattern checker on small histories, nothing more.
"""

from functools import cache

from harness.history import Op


def linearizable(ops: list[Op]) -> bool:
    """True if the operations (one topic) have a legal FIFO linearization."""
    ops = [o for o in ops if o.type != "fail"]
    n = len(ops)
    required = sum(1 << i for i, o in enumerate(ops) if o.type == "ok")

    @cache
    def search(done: int, queue: tuple[str | None, ...]) -> bool:
        if done & required == required:
            return True
        pending = [i for i in range(n) if not done >> i & 1]
        horizon = min(ops[i].ret for i in pending)
        for i in pending:
            op = ops[i]
            if op.inv > horizon:
                continue
            for after in _effects(op, queue):
                if search(done | 1 << i, after):
                    return True
        return False

    return search(0, ())


def _effects(op: Op, queue: tuple[str | None, ...]) -> list[tuple[str | None, ...]]:
    """The queue after ``op`` takes effect, for each way it may."""
    if op.f == "put":
        return [(*queue, op.value)]
    if op.type == "ok":
        if op.value is None:
            return [queue] if not queue else []
        return [queue[1:]] if queue and queue[0] == op.value else []
    return [queue[1:]] if queue else [queue]
