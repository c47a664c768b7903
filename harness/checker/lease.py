"""Lease safety: one writer per topic at a time, and only under a lease.

Evidence comes from two places. The history's acknowledged ``PUTX`` replies say where each write
landed (segment, offset) and which node, under which epoch, acknowledged it; the final ``STATE``
of each topic says who led each segment. The nodes' event logs (``events.jsonl``) time-stamp every
accepted append and every lease renewal with the host's CLOCK_MONOTONIC (one true clock shared by
every node on the machine) and with the node's own, possibly skewed, clock. Checks:

- no two acknowledged writes share (topic, segment, offset);
- every acknowledged write's segment was led by the node and epoch that acknowledged it, and its
  offset lies within the segment's sealed count;
- a segment's appends all come from one node, and for one topic every append to a segment
  precedes, in true time, every append to a later segment: at no instant do two nodes write one
  topic;
- every append lies inside its node's lease: on the node's clock, before the expiry of the last
  renewal it had committed; and in true time, within ``L`` of that renewal's commit — a lease
  lasts at most ``L`` true seconds while clocks drift within the bound, so an append later than
  that proves a clock ran outside it (the ``drift-unsafe`` nemesis). Nodes in ``--compat walrus``
  mode have no leases; for them only the first three checks apply.

Without event logs the verdict can be at best ``"unknown"``.
"""

from collections import defaultdict

from harness.checker.result import Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN
from harness.history import Op
from harness.node_events import NodeEvent


def _positions(ops: list[Op], states: dict[str, dict]) -> list[Anomaly]:
    found: list[Anomaly] = []
    seen: dict[tuple, Op] = {}
    for op in ops:
        if op.f != "put" or not op.ok or op.pos is None:
            continue
        key = (op.topic, op.pos[0], op.pos[1])
        pos = (tuple(op.pos),)
        if key in seen:
            found.append(
                Anomaly(
                    "duplicate_positions",
                    op.topic,
                    (seen[key].invoke_index, op.invoke_index),
                    positions=pos,
                )
            )
        seen[key] = op
        state = states.get(op.topic)
        if state is None:
            continue
        seg = str(op.pos[0])
        leader = state.get("segment_leaders", {}).get(seg)
        epoch = state.get("segment_epochs", {}).get(seg)
        if leader is not None and (leader != op.node or (epoch is not None and epoch != op.epoch)):
            found.append(
                Anomaly(
                    "wrong_leader",
                    op.topic,
                    (op.invoke_index,),
                    nodes=(op.node,),
                    positions=pos,
                    facts={"epoch": op.epoch, "leader": leader, "leader_epoch": epoch},
                )
            )
        sealed = state.get("sealed_segments", {}).get(seg)
        if sealed is not None and op.pos[1] >= sealed:
            found.append(
                Anomaly(
                    "beyond_sealed_count",
                    op.topic,
                    (op.invoke_index,),
                    positions=pos,
                    facts={"sealed": sealed},
                )
            )
    return found


def _writers(events: list[NodeEvent]) -> list[Anomaly]:
    found: list[Anomaly] = []
    spans: dict[tuple[str, int], list] = {}
    for e in events:
        if e.kind != "append":
            continue
        key = (e.topic, e.segment)
        span = spans.setdefault(key, [e.true_ns, e.true_ns, {e.node}, e, e])
        if e.true_ns < span[0]:
            span[0], span[3] = e.true_ns, e
        if e.true_ns > span[1]:
            span[1], span[4] = e.true_ns, e
        span[2].add(e.node)
    by_topic: dict[str, list] = defaultdict(list)
    for (topic, segment), span in spans.items():
        if len(span[2]) > 1:
            found.append(
                Anomaly(
                    "several_writers_per_segment",
                    topic,
                    nodes=tuple(sorted(span[2])),
                    facts={"segment": segment},
                )
            )
        by_topic[topic].append((segment, *span))
    for topic, segs in by_topic.items():
        segs.sort()
        latest = None
        for segment, first, last, _, first_e, last_e in segs:
            if latest is not None and first <= latest[1]:
                prev_segment, prev_last, prev_e = latest
                found.append(
                    Anomaly(
                        "overlapping_writers",
                        topic,
                        nodes=(first_e.node, prev_e.node),
                        positions=(
                            (segment, first_e.offset),
                            (prev_segment, prev_e.offset),
                        ),
                        times_ns=(first, prev_last),
                        facts={"segment": segment, "previous_segment": prev_segment},
                    )
                )
            if latest is None or last > latest[1]:
                latest = (segment, last, last_e)
    return found


def _leases(events: list[NodeEvent], lease_s: float) -> list[Anomaly]:
    found: list[Anomaly] = []
    by_node: dict[int, list[NodeEvent]] = defaultdict(list)
    for e in events:
        by_node[e.node].append(e)
    for node, evs in by_node.items():
        evs.sort(key=lambda e: e.true_ns)
        compat = False
        renew = None
        for e in evs:
            kind = e.kind
            if kind == "start":
                compat, renew = e.compat, None
            elif kind in ("lease-acquire", "lease-renew"):
                if renew is None or e.expiry > renew.expiry:
                    renew = e
            elif kind == "append" and not compat:
                where = {
                    "topic": e.topic,
                    "nodes": (node,),
                    "positions": ((e.segment, e.offset),),
                }
                if renew is None:
                    found.append(Anomaly("append_without_lease", **where, times_ns=(e.true_ns,)))
                elif e.node_time >= renew.expiry:
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
    ops: list[Op], states: dict[str, dict], events: list[NodeEvent] | None, lease_s: float
) -> CheckResult:
    """Lease safety from positions, final states and (if given) the nodes' event logs."""
    found = _positions(ops, states)
    if events is not None:
        found += _writers(events) + _leases(events, lease_s)
    counts: dict[str, int] = {}
    for a in found:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    if counts:
        valid: bool | str = False
    elif events is None:
        valid = UNKNOWN
    else:
        valid = True
    details: dict = {
        "positions_checked": sum(1 for o in ops if o.f == "put" and o.ok and o.pos),
        "events_checked": 0 if events is None else len(events),
    }
    if events is None:
        details["why"] = "no node event logs given: lease intervals and writers not checked"
    return CheckResult(valid, counts, keep(found), details)
