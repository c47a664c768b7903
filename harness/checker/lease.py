"""Lease safety: one writer per topic at a time, and only under a lease.

Evidence comes from two places. The history's acknowledged ``PUTX`` replies say where each write
landed (segment, offset) and which node, under which epoch, acknowledged it; the final ``STATE``
of each topic says who led each segment. The nodes' event logs (``events.jsonl``) time-stamp every
accepted append and every lease renewal with the host's CLOCK_MONOTONIC (one true clock shared by
every node on the machine) and with the node's own, possibly skewed, clock; nodes on hosts over SSH
each read their host's, set on the control node's time line by measured offsets within a bound
(``harness.history.host_clocks``), and two hosts' events closer than twice that bound are in an
unknown order. Checks:

- no two acknowledged writes share (topic, segment, offset);
- every acknowledged write's segment was led by the node and epoch that acknowledged it, and its
  offset lies within the segment's sealed count;
- a segment's appends all come from one node, and for one topic every append to a segment
  precedes, in true time, every append to a later segment: at no instant do two nodes write one
  topic (two hosts' appends in an unknown order make it ``unknown``, with the bound deciding
  them would have needed);
- every append lies inside its node's lease: on the node's clock, before the expiry of the last
  renewal it had committed; and in true time, within ``L`` of that renewal's commit — a lease
  lasts at most ``L`` true seconds while clocks drift within the bound, so an append later than
  that proves a clock ran outside it (the ``drift-unsafe`` nemesis). Nodes in ``--compat walrus``
  mode have no leases; for them only the first three checks apply.

Without event logs the verdict can be at best ``"unknown"``.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from harness.checker.fields import carried
from harness.checker.result import MAX_PER_KIND, Anomaly, CheckResult, Json, keep
from harness.checker.verdict import UNKNOWN
from harness.history.columns import NO, Columns, lookup
from harness.history.node_events import NodeEvent


def _positions(c: Columns, states: dict[str, Json]) -> tuple[list[Anomaly], dict[str, int]]:
    """Positions of acknowledged puts: none shared, each by its segment's leader and epoch and
    within its sealed count. Counted on the columns; anomalies made for a few of each kind."""
    found: list[Anomaly] = []
    rows = np.flatnonzero(c.acked_put & (c.seg != NO))
    key_order = np.lexsort((rows, c.off[rows], c.seg[rows], c.topic[rows]))
    by_key = rows[key_order]
    same = (
        (c.topic[by_key][1:] == c.topic[by_key][:-1])
        & (c.seg[by_key][1:] == c.seg[by_key][:-1])
        & (c.off[by_key][1:] == c.off[by_key][:-1])
    )
    pairs = np.flatnonzero(same)
    order = np.argsort(by_key[pairs + 1], kind="stable")
    for k in pairs[order][:MAX_PER_KIND].tolist():
        first, second = int(by_key[k]), int(by_key[k + 1])
        found.append(
            Anomaly(
                "duplicate_positions",
                c.topics[c.topic[second]],
                (int(c.invoke_index[first]), int(c.invoke_index[second])),
                positions=((int(c.seg[second]), int(c.off[second])),),
            )
        )
    counts = {"duplicate_positions": len(pairs)}
    wrong, beyond = [], []
    for code, topic in enumerate(c.topics):
        state = states.get(topic)
        if state is None:
            continue
        mine = rows[c.topic[rows] == code]
        seg = c.seg[mine]
        leader = _per_segment(state.get("segment_leaders", {}), seg)
        epoch = _per_segment(state.get("segment_epochs", {}), seg)
        sealed = _per_segment(state.get("sealed_segments", {}), seg)
        bad = (leader != NO) & (
            (leader != c.node[mine]) | ((epoch != NO) & (epoch != c.epoch[mine]))
        )
        wrong.append((topic, mine[bad], leader[bad], epoch[bad]))
        over = (sealed != NO) & (c.off[mine] >= sealed)
        beyond.append((topic, mine[over], sealed[over]))
    counts["wrong_leader"] = sum(len(w[1]) for w in wrong)
    counts["beyond_sealed_count"] = sum(len(b[1]) for b in beyond)
    for topic, bad, leader, epoch in wrong:
        for r, lead, ep in list(zip(bad.tolist(), leader.tolist(), epoch.tolist(), strict=True))[
            :MAX_PER_KIND
        ]:
            found.append(
                Anomaly(
                    "wrong_leader",
                    topic,
                    (int(c.invoke_index[r]),),
                    nodes=(_opt(c.node[r]),),
                    positions=((int(c.seg[r]), int(c.off[r])),),
                    facts={"epoch": _opt(c.epoch[r]), "leader": lead, "leader_epoch": _opt(ep)},
                )
            )
    for topic, over, sealed in beyond:
        for r, count in list(zip(over.tolist(), sealed.tolist(), strict=True))[:MAX_PER_KIND]:
            found.append(
                Anomaly(
                    "beyond_sealed_count",
                    topic,
                    (int(c.invoke_index[r]),),
                    positions=((int(c.seg[r]), int(c.off[r])),),
                    facts={"sealed": count},
                )
            )
    return found, {k: v for k, v in counts.items() if v}


def _opt(x: int | np.integer[Any]) -> int | None:
    return None if x == NO else int(x)


def _per_segment(
    table: dict[str, int | None], segments: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """``table`` (segment number as text -> integer) looked up for each segment; NO if absent."""
    if not table:
        return np.full(len(segments), NO, np.int64)
    keys = np.array([int(k) for k in table], np.int64)
    vals = np.array([NO if v is None else int(v) for v in table.values()], np.int64)
    order = np.argsort(keys)
    at, found = lookup(keys[order], segments)
    return np.where(found, vals[order][at], NO)


@dataclass
class _Span:
    """A segment's appends: the first and last true times, the nodes, the first and last."""

    first: int
    last: int
    nodes: set[int]
    first_e: NodeEvent
    last_e: NodeEvent


def _writers(events: list[NodeEvent], bound_ns: int = 0) -> tuple[list[Anomaly], int]:
    """Segments written by several nodes, and a topic's segments written at once; with the
    bound (ns) the hosts' clocks would need to be within for the closest undecided pair to be
    decided (-1: none undecided). A pair is undecided when one segment's last append and the
    next one's first, on different hosts, are within twice ``bound_ns`` of each other, in either
    order: which came first is not known."""
    found: list[Anomaly] = []
    needed = -1
    spans: dict[tuple[str, int], _Span] = {}
    for e in events:
        if e.kind != "append":
            continue
        key = (carried(e.topic), carried(e.segment))
        span = spans.setdefault(key, _Span(e.true_ns, e.true_ns, {e.node}, e, e))
        if e.true_ns < span.first:
            span.first, span.first_e = e.true_ns, e
        if e.true_ns > span.last:
            span.last, span.last_e = e.true_ns, e
        span.nodes.add(e.node)
    by_topic: dict[str, list[tuple[int, int, int, set[int], NodeEvent, NodeEvent]]]
    by_topic = defaultdict(list)
    for (topic, segment), span in spans.items():
        if len(span.nodes) > 1:
            found.append(
                Anomaly(
                    "several_writers_per_segment",
                    topic,
                    nodes=tuple(sorted(span.nodes)),
                    facts={"segment": segment},
                )
            )
        by_topic[topic].append(
            (segment, span.first, span.last, span.nodes, span.first_e, span.last_e)
        )
    for topic, segs in by_topic.items():
        segs.sort()
        latest: tuple[int, int, NodeEvent] | None = None
        for segment, first, last, _, first_e, last_e in segs:
            margin = 2 * bound_ns if latest and first_e.node != latest[2].node else 0
            overlap = latest[1] - first if latest else -1
            if -margin < overlap < margin and (needed < 0 or abs(overlap) // 2 < needed):
                needed = abs(overlap) // 2
            if latest is not None and overlap >= margin:
                prev_segment, prev_last, prev_e = latest
                found.append(
                    Anomaly(
                        "overlapping_writers",
                        topic,
                        nodes=(first_e.node, prev_e.node),
                        positions=(
                            (segment, carried(first_e.offset)),
                            (prev_segment, carried(prev_e.offset)),
                        ),
                        times_ns=(first, prev_last),
                        facts={"segment": segment, "previous_segment": prev_segment},
                    )
                )
            if latest is None or last > latest[1]:
                latest = (segment, last, last_e)
    return found, needed


class _Where(TypedDict):
    """Where an append was made, as an anomaly about it says."""

    topic: str | None
    nodes: tuple[int, ...]
    positions: tuple[tuple[int, int], ...]


def _leases(events: list[NodeEvent], lease_s: float) -> list[Anomaly]:
    found: list[Anomaly] = []
    by_node: dict[int, list[NodeEvent]] = defaultdict(list)
    for e in events:
        by_node[e.node].append(e)
    for node, evs in by_node.items():
        evs.sort(key=lambda e: e.true_ns)
        compat = False
        renew: NodeEvent | None = None
        for e in evs:
            kind = e.kind
            if kind == "start":
                compat, renew = e.compat, None
            elif kind in ("lease-acquire", "lease-renew"):
                if renew is None or carried(e.expiry) > carried(renew.expiry):
                    renew = e
            elif kind == "append" and not compat:
                where: _Where = {
                    "topic": e.topic,
                    "nodes": (node,),
                    "positions": ((carried(e.segment), carried(e.offset)),),
                }
                if renew is None:
                    found.append(Anomaly("append_without_lease", **where, times_ns=(e.true_ns,)))
                elif e.node_time >= carried(renew.expiry):
                    found.append(
                        Anomaly(
                            "append_after_expiry_node_clock",
                            **where,
                            times_ns=(e.true_ns, renew.true_ns),
                            facts={"node_time": e.node_time, "expiry": renew.expiry},
                        )
                    )
                elif e.true_ns > renew.true_ns + lease_s * 1e9:
                    found.append(
                        Anomaly(
                            "append_after_expiry_true_time",
                            **where,
                            times_ns=(e.true_ns, renew.true_ns),
                            facts={
                                "after_renewal_s": (e.true_ns - renew.true_ns) / 1e9,
                                "lease_s": lease_s,
                            },
                        )
                    )
    return found


def check(
    c: Columns,
    states: dict[str, Json],
    events: list[NodeEvent] | None,
    lease_s: float,
    bound_ns: int | None = None,
) -> CheckResult:
    """Lease safety from positions, final states and (if given) the nodes' event logs;
    ``bound_ns``: how far apart the hosts' clocks may be after alignment
    (``harness.history.host_clocks``; None: every node read one machine's clock)."""
    found, counts = _positions(c, states)
    needed = -1
    if events is not None:
        writers, needed = _writers(events, bound_ns or 0)
        logged = writers + _leases(events, lease_s)
        found += logged
        for a in logged:
            counts[a.kind] = counts.get(a.kind, 0) + 1
    if counts:
        valid: bool | str = False
    elif events is None or needed >= 0:
        valid = UNKNOWN
    else:
        valid = True
    details: dict[str, object] = {
        "positions_checked": int(np.count_nonzero(c.acked_put & (c.seg != NO))),
        "events_checked": 0 if events is None else len(events),
        "clock": "one machine's CLOCK_MONOTONIC"
        if bound_ns is None
        else f"each host's CLOCK_MONOTONIC on the control node's, ±{bound_ns / 1e6:.3f} ms",
        "clock_bound_ns": bound_ns or 0,
    }
    if events is None:
        details["why"] = "no node event logs given: lease intervals and writers not checked"
    elif needed >= 0 and not counts:
        details["why"] = (
            "which of two hosts' appends to a topic came first is not known: deciding it needs "
            f"the hosts' clocks within ±{needed / 1e6:.3f} ms, and they were measured within "
            f"±{(bound_ns or 0) / 1e6:.3f} ms"
        )
        details["bound_needed_ns"] = needed
    return CheckResult(valid, counts, keep(found), details)
