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

Each topic is judged by what its system promises (``harness.history.delivery``). Walrus promises
each value once, in order: all four patterns apply. A system that delivers at least once may
hand a value out again (``redelivery`` says when that is explained: then it is counted as
``redelivered``, no VRepet), and a value handed to a get whose outcome is unknown may come back
later, so its first dequeue may have been that get's: VOrd and VWit allow for it. A system that
promises no order is not checked for VOrd.

Operations with unknown outcome (``info``) are handled soundly. An info put never completes: its
value may or may not be in the queue, and it orders nothing. An info get may have consumed one
value that nobody else dequeued; one resolved from the nodes' logs (``resolve``) dequeued a known
value and never returned. A verdict of ``False`` is given only for violations that no
choice of what the info gets consumed could explain; ``True`` only when the history has no bad
pattern, or when a concrete choice (each unexplained value matched to an info get, earliest
first) removes them all; otherwise ``"unknown"``.
"""

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from harness.checker.redelivery import explained
from harness.checker.result import MAX_PER_KIND, MAX_REPORTED, Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN, merge
from harness.history.columns import FAIL, GET, INFO, OK, PUT, Columns, lookup
from harness.history.delivery import EXACTLY_ONCE_IN_ORDER, Delivery

INF = np.inf


class _Topic:
    """One topic's values as arrays: each put value's enqueue, and its (first) dequeue. Rows
    are rows of the history's columns; -1 where there is none."""

    def __init__(self, c: Columns, rows: np.ndarray, delivery: Delivery) -> None:
        self.c = c
        self.delivery = delivery
        f, kind, has = c.f[rows], c.type[rows], c.has_value[rows]
        puts = rows[f == PUT]
        values = c.value[puts]
        order = np.argsort(values, kind="stable")
        sorted_values = values[order]
        twice = np.flatnonzero(sorted_values[1:] == sorted_values[:-1])
        self.repeated = int(puts[np.sort(order[twice + 1])[0]]) if len(twice) else None
        self.put_rows = puts
        self.put_inv, self.put_ret = c.inv[puts], c.ret[puts]
        self.put_kind = c.type[puts]
        gets = rows[(f == GET) & has & ((kind == OK) | (kind == INFO))]
        self.empties = rows[(f == GET) & ~has & (kind == OK)]
        self.info_gets = rows[(f == GET) & ~has & (kind == INFO)]
        n = len(puts)
        at, found = lookup(sorted_values, c.value[gets])
        self.ghosts = gets[~found]
        gets, k = gets[found], order[at[found]]
        self.get_rows, self.get_put = gets, k
        self.deq_count = np.bincount(k, minlength=n).astype(np.int64)
        by_put = np.lexsort((c.inv[gets], k))
        first = np.full(n, -1, np.int64)
        starts: np.ndarray | list[int] = (
            np.flatnonzero(np.r_[True, k[by_put][1:] != k[by_put][:-1]]) if len(k) else []
        )
        first[k[by_put][starts]] = gets[by_put][starts]
        self.first_deq = first
        self.deq_inv = np.where(first >= 0, c.inv[np.maximum(first, 0)], INF)
        self.deq_ret = np.where(first >= 0, c.ret[np.maximum(first, 0)], INF)
        min_ret = np.full(n, INF)
        np.minimum.at(min_ret, k, c.ret[gets])
        self.deq_min_ret = min_ret
        self.min_info_inv = c.inv[self.info_gets].min() if len(self.info_gets) else INF

    @functools.cached_property
    def redelivered(self) -> np.ndarray:
        """The put values dequeued more than once whose repeats the delivery promise explains
        (``redelivery``), read once however often the patterns are looked for."""
        if self.delivery.once:
            return np.zeros(0, np.int64)
        repeated = np.flatnonzero(self.deq_count > 1).tolist()
        ops = {k: self.c.rows_as_ops(self.dequeues(k)) for k in repeated}
        return np.array([k for k in repeated if explained(ops[k], self.delivery)], np.int64)

    def index(self, row: int) -> int:
        """The invoke index of a row."""
        return int(self.c.invoke_index[row])

    def value(self, k: int) -> str | None:
        """The text of put value ``k``."""
        return self.c.op(int(self.put_rows[k])).value

    def dequeues(self, k: int) -> np.ndarray:
        """Every get that returned put value ``k``, in invocation order."""
        return np.sort(self.get_rows[self.get_put == k])

    def witness(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dequeue times with values never dequeued matched to info gets, earliest first."""
        deq_inv, deq_ret, first = self.deq_inv.copy(), self.deq_ret.copy(), self.first_deq.copy()
        missing = np.flatnonzero((self.put_kind == OK) & (self.deq_count == 0))
        missing = missing[np.argsort(self.put_inv[missing], kind="stable")]
        gets = self.info_gets[np.argsort(self.c.inv[self.info_gets], kind="stable")]
        m = min(len(missing), len(gets))
        deq_inv[missing[:m]] = self.c.inv[gets[:m]]
        deq_ret[missing[:m]] = INF
        first[missing[:m]] = gets[:m]
        return deq_inv, deq_ret, first


def _vfresh_vrepet(t: _Topic, found: "_Findings") -> None:
    c = t.c
    ghost_values = c.value[t.ghosts]
    distinct = np.unique(ghost_values)

    def ghosts(room: int) -> list[Anomaly]:
        out = []
        for v in distinct[:room].tolist():
            deqs = t.ghosts[ghost_values == v]
            out.append(
                Anomaly(
                    "VFresh",
                    ops=tuple(t.index(r) for r in deqs),
                    values=(c.op(int(deqs[0])).value,),
                    facts={"cause": "never put"},
                )
            )
        return out

    found.add("VFresh", len(distinct), len(distinct), ghosts)
    failed = np.flatnonzero((t.put_kind == FAIL) & (t.deq_count > 0))
    early = np.flatnonzero((t.put_kind != FAIL) & (t.deq_min_ret < t.put_inv))

    def fresh(
        ks: np.ndarray, cause: str, pick: Callable[[int], int]
    ) -> Callable[[int], list[Anomaly]]:
        def examples(room: int) -> list[Anomaly]:
            return [
                Anomaly(
                    "VFresh",
                    ops=(t.index(t.put_rows[k]), t.index(pick(k))),
                    values=(t.value(k),),
                    facts={"cause": cause},
                )
                for k in ks[:room].tolist()
            ]

        return examples

    def earliest_return(k: int) -> int:
        deqs = t.dequeues(k)
        return int(deqs[np.argmin(c.ret[deqs])])

    found.add(
        "VFresh", len(failed), len(failed), fresh(failed, "put failed", t.first_deq.__getitem__)
    )
    found.add("VFresh", len(early), len(early), fresh(early, "before its put", earliest_return))
    repeated = np.setdiff1d(np.flatnonzero(t.deq_count > 1), t.redelivered)
    found.redelivered += len(t.redelivered)

    def repeats(room: int) -> list[Anomaly]:
        return [
            Anomaly("VRepet", ops=tuple(t.index(r) for r in t.dequeues(k)), values=(t.value(k),))
            for k in repeated[:room].tolist()
        ]

    found.add("VRepet", len(repeated), len(repeated), repeats)


def _vord(
    t: _Topic, deq_inv: np.ndarray, deq_ret: np.ndarray, first: np.ndarray, found: "_Findings"
) -> None:
    """enq(x) < enq(y) and deq(y) < deq(x) (deq(x) invoked at INF if x was never dequeued);
    nothing to find for a system that promises no order."""
    xs = np.flatnonzero(t.put_kind == OK)
    if not len(xs) or t.delivery.order == "none":
        return
    xs = xs[np.argsort(t.put_ret[xs], kind="stable")]
    x_deq = deq_inv[xs]
    best = np.maximum.accumulate(x_deq)
    best_at = np.maximum.accumulate(np.where(x_deq == best, np.arange(len(xs)), 0))
    ys = np.flatnonzero((t.put_kind != FAIL) & (deq_ret < INF))
    before = np.searchsorted(t.put_ret[xs], t.put_inv[ys], side="left")
    has = before > 0
    ys, before = ys[has], before[has]
    bad = best[before - 1] > deq_ret[ys]
    ys = ys[bad]
    x_of = xs[best_at[before[bad] - 1]]
    # A violation with x never dequeued is explained if an info get invoked before deq(y)
    # returned took x; delivered at least once, x may have gone to that info get first and
    # come back later, so that explains it whether or not x was dequeued.
    took = t.min_info_inv < deq_ret[ys]
    certain = ~took if not t.delivery.once else ~(np.isinf(deq_inv[x_of]) & took)

    def examples(room: int) -> list[Anomaly]:
        order = np.argsort(~certain, kind="stable")[:room]
        return [
            _vord_anomaly(t, int(x_of[i]), int(ys[i]), first, bool(certain[i]))
            for i in order.tolist()
        ]

    found.add("VOrd", len(ys), int(certain.sum()), examples)


def _vord_anomaly(t: _Topic, x: int, y: int, first: np.ndarray, certain: bool) -> Anomaly:
    ops: tuple[int, ...] = (t.index(t.put_rows[x]), t.index(t.put_rows[y]), t.index(first[y]))
    if first[x] >= 0:
        ops = (*ops, t.index(first[x]))
    return Anomaly("VOrd", ops=ops, values=(t.value(x), t.value(y)), certain=certain)


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


def _covering(
    pieces: tuple[np.ndarray, np.ndarray], inv: np.ndarray, ret: np.ndarray
) -> np.ndarray:
    starts, ends = pieces
    if not len(starts):
        return np.zeros(len(inv), bool)
    j = np.searchsorted(starts, inv, side="left") - 1
    ok = j >= 0
    j = np.clip(j, 0, None)
    covered: np.ndarray = ok & (starts[j] < inv) & (ret < ends[j])
    return covered


def _vwit(t: _Topic, deq_inv: np.ndarray, found: "_Findings") -> None:
    if not len(t.empties):
        return
    ok = t.put_kind == OK
    pieces = _union(t.put_ret[ok], deq_inv[ok])
    e_inv, e_ret = t.c.inv[t.empties], t.c.ret[t.empties]
    covered = np.flatnonzero(_covering(pieces, e_inv, e_ret))
    if not len(covered):
        return
    # Where an info get may have taken a value (any value, if it may have come back later), the
    # window in which that value was certainly queued may have closed at the info get.
    may_take = (t.deq_count[ok] == 0) | (not t.delivery.once)
    cut = np.where(may_take, np.minimum(deq_inv[ok], t.min_info_inv), deq_inv[ok])
    certain = _covering(_union(t.put_ret[ok], cut), e_inv[covered], e_ret[covered])

    def examples(room: int) -> list[Anomaly]:
        out = []
        for i in np.argsort(~certain, kind="stable")[:room].tolist():
            e = int(t.empties[int(covered[i])])
            inside = np.flatnonzero(ok & (t.put_ret < t.c.ret[e]) & (deq_inv > t.c.inv[e]))[:5]
            ops = (t.index(e), *(t.index(t.put_rows[k]) for k in inside.tolist()))
            values = tuple(t.value(k) for k in inside.tolist())
            out.append(Anomaly("VWit", ops=ops, values=values, certain=bool(certain[i])))
        return out

    found.add("VWit", len(covered), int(certain.sum()), examples)


class _Findings:
    """Bad patterns found: counts per kind, how many no info op could explain, and examples."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.certain = 0
        self.examples: list[Anomaly] = []
        self.redelivered = 0
        """Repeats the system's at-least-once promise explains (not patterns)."""

    def add(
        self, kind: str, count: int, certain: int, examples: Callable[[int], list[Anomaly]]
    ) -> None:
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


def _patterns(t: _Topic, deq_inv: np.ndarray, deq_ret: np.ndarray, first: np.ndarray) -> _Findings:
    found = _Findings()
    _vfresh_vrepet(t, found)
    _vord(t, deq_inv, deq_ret, first, found)
    _vwit(t, deq_inv, found)
    return found


def check_topic(
    c: Columns,
    rows: np.ndarray,
    topic: str | None = None,
    delivery: Delivery = EXACTLY_ONCE_IN_ORDER,
) -> CheckResult:
    """The queue checker's verdict for one topic's operations (its rows of the columns), by
    what ``delivery`` promises."""
    t = _Topic(c, rows, delivery)
    if t.repeated is not None:
        op = c.op(t.repeated)
        return CheckResult(
            UNKNOWN,
            details={
                "why": f"value {op.value!r} was put more than once "
                f"({op.describe()}): values must be unique per topic for this checker"
            },
        )
    found = _patterns(t, t.deq_inv, t.deq_ret, t.first_deq)
    noted = {"redelivered": found.redelivered} if found.redelivered else {}
    if not found.total:
        return CheckResult(True, details=noted)
    anomalies = tuple(replace(a, topic=topic) for a in found.examples)
    if found.certain:
        return CheckResult(False, dict(found.counts), anomalies, noted)
    if not _patterns(t, *t.witness()).total:
        return CheckResult(True, details={**noted, "explained_by_info_gets": found.total})
    return CheckResult(
        UNKNOWN,
        dict(found.counts),
        anomalies,
        {
            **noted,
            "why": "these patterns vanish only if info gets consumed some values; no simple "
            "assignment of values to info gets was found to confirm it",
        },
    )


def check(c: Columns, delivery: Delivery = EXACTLY_ONCE_IN_ORDER) -> CheckResult:
    """Queue linearizability of every topic, by what ``delivery`` promises."""
    topics = {topic: check_topic(c, rows, topic, delivery) for topic, rows in c.rows_of_topic()}
    counts: dict[str, int] = defaultdict(int)
    for result in topics.values():
        for kind, n in result.counts.items():
            counts[kind] += n
    return CheckResult(
        merge([r.valid for r in topics.values()]),
        dict(counts),
        keep([a for r in topics.values() for a in r.anomalies]),
        {
            "delivery": delivery.describe(),
            "topics": {topic: {"valid": r.valid, **r.details} for topic, r in topics.items()},
        },
    )
