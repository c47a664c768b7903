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

from harness.history import Op

MAX_REPORTED = 20


def _positions(ops: list[Op], states: dict[str, dict]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = defaultdict(list)
    seen: dict[tuple, Op] = {}
    for op in ops:
        if op.f != "put" or not op.ok or op.pos is None:
            continue
        key = (op.topic, op.pos[0], op.pos[1])
        if key in seen:
            problems["duplicate_positions"].append(
                f"{seen[key].describe()} and {op.describe()} were both acknowledged at "
                f"{op.topic} segment {op.pos[0]} offset {op.pos[1]}"
            )
        seen[key] = op
        state = states.get(op.topic)
        if state is None:
            continue
        seg = str(op.pos[0])
        leader = state.get("segment_leaders", {}).get(seg)
        epoch = state.get("segment_epochs", {}).get(seg)
        if leader is not None and (leader != op.node or (epoch is not None and epoch != op.epoch)):
            problems["wrong_leader"].append(
                f"{op.describe()} was acknowledged by node {op.node} epoch {op.epoch} in "
                f"{op.topic} segment {seg}, which node {leader} led (epoch {epoch})"
            )
        sealed = state.get("sealed_segments", {}).get(seg)
        if sealed is not None and op.pos[1] >= sealed:
            problems["beyond_sealed_count"].append(
                f"{op.describe()} was acknowledged at offset {op.pos[1]} of {op.topic} segment "
                f"{seg}, but the segment was sealed with {sealed} entries: it will never be read"
            )
    return problems


def _writers(events: list[dict]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = defaultdict(list)
    spans: dict[tuple[str, int], list] = {}
    for e in events:
        if e["kind"] != "append":
            continue
        key = (e["topic"], e["segment"])
        span = spans.setdefault(key, [e["true_ns"], e["true_ns"], {e["node"]}, e, e])
        if e["true_ns"] < span[0]:
            span[0], span[3] = e["true_ns"], e
        if e["true_ns"] > span[1]:
            span[1], span[4] = e["true_ns"], e
        span[2].add(e["node"])
    by_topic: dict[str, list] = defaultdict(list)
    for (topic, segment), span in spans.items():
        if len(span[2]) > 1:
            problems["several_writers_per_segment"].append(
                f"{topic} segment {segment} was appended to by nodes {sorted(span[2])}"
            )
        by_topic[topic].append((segment, *span))
    for topic, segs in by_topic.items():
        segs.sort()
        latest = None
        for segment, first, last, _, first_e, last_e in segs:
            if latest is not None and first <= latest[1]:
                prev_segment, prev_last, prev_e = latest
                problems["overlapping_writers"].append(
                    f"{topic}: node {first_e['node']} appended to segment {segment} at "
                    f"{first / 1e9:.3f}s (true time), before node {prev_e['node']}'s last append "
                    f"to segment {prev_segment} at {prev_last / 1e9:.3f}s: two writers at once"
                )
            if latest is None or last > latest[1]:
                latest = (segment, last, last_e)
    return problems


def _leases(events: list[dict], lease_s: float) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = defaultdict(list)
    by_node: dict[int, list[dict]] = defaultdict(list)
    for e in events:
        by_node[e["node"]].append(e)
    for node, evs in by_node.items():
        evs.sort(key=lambda e: e["true_ns"])
        compat = False
        renew = None
        for e in evs:
            kind = e["kind"]
            if kind == "start":
                compat, renew = bool(e.get("compat")), None
            elif kind in ("lease-acquire", "lease-renew"):
                if renew is None or e["expiry"] > renew["expiry"]:
                    renew = e
            elif kind == "append" and not compat:
                where = (
                    f"node {node} appended to {e['topic']} segment {e['segment']} offset "
                    f"{e['offset']} at {e['true_ns'] / 1e9:.3f}s (true time)"
                )
                if renew is None:
                    problems["append_without_lease"].append(f"{where} with no lease committed")
                elif e["node_time"] >= renew["expiry"]:
                    problems["append_after_expiry_node_clock"].append(
                        f"{where}, at its clock's {e['node_time']:.3f} after its lease expired at "
                        f"{renew['expiry']:.3f}"
                    )
                elif e["true_ns"] > renew["true_ns"] + lease_s * 1e9:
                    problems["append_after_expiry_true_time"].append(
                        f"{where}, {(e['true_ns'] - renew['true_ns']) / 1e9:.3f}s after its last "
                        f"renewal committed: beyond the lease duration {lease_s:g}s in true time, "
                        "so its clock ran slower than the drift bound allows"
                    )
    return problems


def check(
    ops: list[Op], states: dict[str, dict], events: list[dict] | None, lease_s: float
) -> dict:
    """Lease safety from positions, final states and (if given) the nodes' event logs."""
    problems = _positions(ops, states)
    if events is not None:
        problems.update(_writers(events))
        problems.update(_leases(events, lease_s))
    counts = {k: len(v) for k, v in problems.items() if v}
    if counts:
        valid: bool | str = False
    elif events is None:
        valid = "unknown"
    else:
        valid = True
    result = {
        "valid": valid,
        "counts": counts,
        "anomalies": {k: v[:MAX_REPORTED] for k, v in problems.items() if v},
        "positions_checked": sum(1 for o in ops if o.f == "put" and o.ok and o.pos),
        "events_checked": 0 if events is None else len(events),
    }
    if events is None:
        result["why"] = "no node event logs given: lease intervals and writers not checked"
    return result
