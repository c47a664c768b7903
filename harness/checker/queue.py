"""Queue linearizability by bad patterns, in O(n log n).

For a FIFO queue whose enqueued values are unique, Henzinger, Sezgin and Vafeiadis ("Aspect-
Oriented Linearizability Proofs", CONCUR 2013) and Bouajjani, Emmi, Enea and Hamza ("On Reducing
Linearizability to State Reachability", ICALP 2015) show that a history is linearizable exactly
when it contains none of four bad patterns. Writing ``a < b`` for "a returned before b was
invoked":

- **VFresh**: a dequeue returns a value that was never enqueued, or returns it before the enqueue
  was invoked;
- **VRepet**: a value is dequeued twice;
- **VOrd**: ``enq(x) < enq(y)`` but ``deq(y) < deq(x)`` — including when x is never dequeued at
  all while y is (x was skipped);
- **VWit**: a dequeue answers EMPTY during an interval entirely covered by the union of the
  windows ``(enq(v) returned, deq(v) invoked)`` — at every instant of it some value was certainly
  in the queue. The union matters: no single window need cover it.

Each pattern is found with sorting and sweeps (numpy), so the whole check is O(n log n), where a
search for a linearization (Knossos, Porcupine) is exponential in the worst case.

Operations with unknown outcome (``info``) are handled soundly. An info put never completes: its
value may or may not be in the queue, and it orders nothing. An info get may have consumed one
value that nobody else dequeued; one resolved from the nodes' logs (``resolve``) dequeued a known
value and never returned. A verdict of ``False`` is given only for violations that no
choice of what the info gets consumed could explain; ``True`` only when the history has no bad
pattern, or when a concrete choice (each unexplained value matched to an info get, earliest
first) removes them all; otherwise ``"unknown"``.
"""

from collections import defaultdict
from dataclasses import replace

import numpy as np

from harness.checker.result import MAX_PER_KIND, MAX_REPORTED, Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN, merge
from harness.history import INF, Op, by_topic

_OK, _INFO, _FAIL = 0, 1, 2
_KINDS = {"ok": _OK, "info": _INFO, "fail": _FAIL}


class _Topic:
    """One topic's values as arrays: each put value's enqueue, and its (first) dequeue."""

    def __init__(self, ops: list[Op]) -> None:
        self.values: list[str] = []
        self.put_ops: list[Op] = []
        self.ghosts: dict[str, list[Op]] = defaultdict(list)
        self.empties: list[Op] = []
        self.info_gets: list[Op] = []
        self.repeated: Op | None = None
        self.repeats: dict[int, list[Op]] = {}
        index: dict[str, int] = {}
        gets = []
        for op in ops:
            if op.f == "put":
                if op.value in index:
                    self.repeated = self.repeated or op
                    continue
                index[op.value] = len(self.values)
                self.values.append(op.value)
                self.put_ops.append(op)
            elif op.type == "ok":
                if op.value is None:
                    self.empties.append(op)
                else:
                    gets.append(op)
            elif op.type == "info":
                # An info get resolved from the nodes' logs dequeued a known value, never returning.
                (gets if op.value is not None else self.info_gets).append(op)
        n = len(self.values)
        first: list[Op | None] = [None] * n
        count = [0] * n
        min_ret = [INF] * n
        for op in gets:
            k = index.get(op.value)
            if k is None:
                self.ghosts[op.value].append(op)
                continue
            c = count[k]
            if c == 0:
                first[k] = op
                min_ret[k] = op.ret
            else:
                self.repeats.setdefault(k, [first[k]]).append(op)
                if op.inv < first[k].inv:
                    first[k] = op
                min_ret[k] = min(min_ret[k], op.ret)
            count[k] = c + 1
        self.first_deq = first
        self.put_inv = np.array([o.inv for o in self.put_ops], float)
        self.put_ret = np.array([o.ret for o in self.put_ops], float)
        self.put_kind = np.array([_KINDS[o.type] for o in self.put_ops], np.int8)
        self.deq_count = np.array(count, np.int64)
        self.deq_inv = np.array([INF if d is None else d.inv for d in first], float)
        self.deq_ret = np.array([INF if d is None else d.ret for d in first], float)
        self.deq_min_ret = np.array(min_ret, float)
        self.min_info_inv = min((g.inv for g in self.info_gets), default=INF)

    def witness(self) -> tuple[np.ndarray, np.ndarray, list]:
        """Dequeue times with values never dequeued matched to info gets, earliest first."""
        deq_inv, deq_ret, first = self.deq_inv.copy(), self.deq_ret.copy(), list(self.first_deq)
        missing = np.flatnonzero((self.put_kind == _OK) & (self.deq_count == 0))
        missing = missing[np.argsort(self.put_inv[missing], kind="stable")]
        gets = sorted(self.info_gets, key=_inv)
        for k, get in zip(missing.tolist(), gets, strict=False):
            deq_inv[k], deq_ret[k] = get.inv, INF
            first[k] = get
        return deq_inv, deq_ret, first


def _inv(op: Op) -> float:
    return op.inv


def _vfresh_vrepet(t: _Topic) -> list[Anomaly]:
    out = []
    for value, deqs in t.ghosts.items():
        ops = tuple(d.invoke_index for d in deqs)
        out.append(Anomaly("VFresh", ops=ops, values=(value,), facts={"cause": "never put"}))
    failed = np.flatnonzero((t.put_kind == _FAIL) & (t.deq_count > 0))
    early = np.flatnonzero((t.put_kind != _FAIL) & (t.deq_min_ret < t.put_inv))
    for k in failed.tolist():
        put, deq = t.put_ops[k], t.first_deq[k]
        out.append(
            Anomaly(
                "VFresh",
                ops=(put.invoke_index, deq.invoke_index),
                values=(put.value,),
                facts={"cause": "put failed"},
            )
        )
    for k in early.tolist():
        put = t.put_ops[k]
        deq = min(t.repeats.get(k, [t.first_deq[k]]), key=lambda o: o.ret)
        out.append(
            Anomaly(
                "VFresh",
                ops=(put.invoke_index, deq.invoke_index),
                values=(put.value,),
                facts={"cause": "before its put"},
            )
        )
    for k in np.flatnonzero(t.deq_count > 1).tolist():
        deqs = t.repeats[k]
        out.append(
            Anomaly("VRepet", ops=tuple(d.invoke_index for d in deqs), values=(t.values[k],))
        )
    return out


def _vord(
    t: _Topic, deq_inv: np.ndarray, deq_ret: np.ndarray, first: list, found: "_Findings"
) -> None:
    """enq(x) < enq(y) and deq(y) < deq(x) (deq(x) invoked at INF if x was never dequeued)."""
    xs = np.flatnonzero(t.put_kind == _OK)
    if not len(xs):
        return
    xs = xs[np.argsort(t.put_ret[xs], kind="stable")]
    x_deq = deq_inv[xs]
    best = np.maximum.accumulate(x_deq)
    best_at = np.maximum.accumulate(np.where(x_deq == best, np.arange(len(xs)), 0))
    ys = np.flatnonzero((t.put_kind != _FAIL) & (deq_ret < INF))
    before = np.searchsorted(t.put_ret[xs], t.put_inv[ys], side="left")
    has = before > 0
    ys, before = ys[has], before[has]
    bad = best[before - 1] > deq_ret[ys]
    ys = ys[bad]
    x_of = xs[best_at[before[bad] - 1]]
    # A violation with x never dequeued is explained if an info get invoked before deq(y)
    # returned took x.
    certain = ~(np.isinf(deq_inv[x_of]) & (t.min_info_inv < deq_ret[ys]))

    def examples(room: int) -> list[Anomaly]:
        order = np.argsort(~certain, kind="stable")[:room]
        return [
            _vord_anomaly(t, int(x_of[i]), int(ys[i]), first, bool(certain[i]))
            for i in order.tolist()
        ]

    found.add("VOrd", len(ys), int(certain.sum()), examples)


def _vord_anomaly(t: _Topic, x: int, y: int, first: list, certain: bool) -> Anomaly:
    put_x, put_y, deq_y, deq_x = t.put_ops[x], t.put_ops[y], first[y], first[x]
    ops = (put_x.invoke_index, put_y.invoke_index, deq_y.invoke_index)
    if deq_x is not None:
        ops = (*ops, deq_x.invoke_index)
    return Anomaly("VOrd", ops=ops, values=(put_x.value, put_y.value), certain=certain)


def _union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of open intervals (start, end), as sorted disjoint pieces."""
    keep = starts < ends
    starts, ends = starts[keep], ends[keep]
    if not len(starts):
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(len(starts), bool)
    new[1:] = starts[1:] >= reach[:-1]
    piece = np.cumsum(new) - 1
    last = np.flatnonzero(np.append(new[1:], True))
    return starts[new], reach[last][: piece[-1] + 1]


def _covering(pieces, inv: np.ndarray, ret: np.ndarray) -> np.ndarray:
    starts, ends = pieces
    if not len(starts):
        return np.zeros(len(inv), bool)
    j = np.searchsorted(starts, inv, side="left") - 1
    ok = j >= 0
    j = np.clip(j, 0, None)
    return ok & (starts[j] < inv) & (ret < ends[j])


def _vwit(t: _Topic, deq_inv: np.ndarray, found: "_Findings") -> None:
    if not t.empties:
        return
    ok = t.put_kind == _OK
    pieces = _union(t.put_ret[ok], deq_inv[ok])
    e_inv = np.fromiter((e.inv for e in t.empties), float, len(t.empties))
    e_ret = np.fromiter((e.ret for e in t.empties), float, len(t.empties))
    covered = np.flatnonzero(_covering(pieces, e_inv, e_ret))
    if not len(covered):
        return
    cut = np.where(t.deq_count[ok] == 0, np.minimum(deq_inv[ok], t.min_info_inv), deq_inv[ok])
    certain = _covering(_union(t.put_ret[ok], cut), e_inv[covered], e_ret[covered])

    def examples(room: int) -> list[Anomaly]:
        out = []
        for i in np.argsort(~certain, kind="stable")[:room].tolist():
            e = t.empties[int(covered[i])]
            inside = np.flatnonzero(ok & (t.put_ret < e.ret) & (deq_inv > e.inv))[:5].tolist()
            ops = (e.invoke_index, *(t.put_ops[k].invoke_index for k in inside))
            values = tuple(t.values[k] for k in inside)
            out.append(Anomaly("VWit", ops=ops, values=values, certain=bool(certain[i])))
        return out

    found.add("VWit", len(covered), int(certain.sum()), examples)


class _Findings:
    """Bad patterns found: counts per kind, how many no info op could explain, and examples."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.certain = 0
        self.examples: list[Anomaly] = []

    def add(self, kind: str, count: int, certain: int, examples) -> None:
        """Record ``count`` patterns of ``kind``; ``examples(room)`` builds reports for some."""
        if not count:
            return
        self.counts[kind] += count
        self.certain += certain
        room = min(
            MAX_REPORTED - len(self.examples),
            MAX_PER_KIND - sum(1 for a in self.examples if a.kind == kind),
        )
        if room > 0:
            self.examples += examples(room)

    @property
    def total(self) -> int:
        """All patterns found."""
        return sum(self.counts.values())


def _patterns(t: _Topic, deq_inv, deq_ret, first) -> _Findings:
    found = _Findings()
    fresh = _vfresh_vrepet(t)
    for anomaly in fresh:
        found.add(anomaly.kind, 1, 1, lambda room, a=anomaly: [a])
    _vord(t, deq_inv, deq_ret, first, found)
    _vwit(t, deq_inv, found)
    return found


def check_topic(ops: list[Op]) -> CheckResult:
    """The queue checker's verdict for one topic's operations."""
    t = _Topic(ops)
    topic = ops[0].topic if ops else None
    if t.repeated is not None:
        return CheckResult(
            UNKNOWN,
            details={
                "why": f"value {t.repeated.value!r} was put more than once "
                f"({t.repeated.describe()}): values must be unique per topic for this checker"
            },
        )
    found = _patterns(t, t.deq_inv, t.deq_ret, t.first_deq)
    if not found.total:
        return CheckResult(True)
    anomalies = tuple(replace(a, topic=topic) for a in found.examples)
    if found.certain:
        return CheckResult(False, dict(found.counts), anomalies)
    if not _patterns(t, *t.witness()).total:
        return CheckResult(True, details={"explained_by_info_gets": found.total})
    return CheckResult(
        UNKNOWN,
        dict(found.counts),
        anomalies,
        {
            "why": "these patterns vanish only if info gets consumed some values; no simple "
            "assignment of values to info gets was found to confirm it"
        },
    )


def check(ops: list[Op]) -> CheckResult:
    """Queue linearizability of every topic."""
    topics = {topic: check_topic(topic_ops) for topic, topic_ops in by_topic(ops)}
    counts: dict[str, int] = defaultdict(int)
    for result in topics.values():
        for kind, n in result.counts.items():
            counts[kind] += n
    return CheckResult(
        merge([r.valid for r in topics.values()]),
        dict(counts),
        keep([a for r in topics.values() for a in r.anomalies]),
        {"topics": {topic: {"valid": r.valid, **r.details} for topic, r in topics.items()}},
    )
