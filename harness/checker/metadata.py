"""The metadata checker: the nodes' Raft logs held against each other, from their event logs.

The node's metadata is a Raft log (``walrus/raft.py``); each node records every entry it applies,
every proposal of its own it is told committed, every truncation of its log and every entry it
refused (``meta-*`` events, ``docs/events.md``). From those, Raft's safety properties (Ongaro and
Ousterhout, Figure 3), on what was applied:

- ``apply_divergence`` — State Machine Safety: two nodes applied different commands at one index;
- ``reapplied_differently``: one node applied one index twice (a restart applies its journal
  again) with different commands;
- ``log_matching``: two nodes applied entries of the same index and term, yet applied different
  commands at that index or below it;
- ``committed_lost``: a command a node was told committed is not what a node that later applied
  past its index applied there; or a leader sent a node an entry conflicting with one the node
  had committed (it refused it: the leader's log lacked a committed entry);
- ``applied_truncated``: a node deleted entries from its log that it had applied or committed
  (pysyncobj as shipped does, ``walrus/raft.py``).

An acknowledged command whose index a node applied past without applying it (a snapshot moved it
on) cannot be compared, and is counted as unverified. Without ``meta-apply`` events (a node that
does not write them) the verdict is ``"unknown"``.
"""

import bisect
from collections import defaultdict
from itertools import combinations

from harness.checker.fields import carried
from harness.checker.result import Anomaly, CheckResult, keep
from harness.checker.verdict import UNKNOWN
from harness.history.node_events import NodeEvent

KINDS = (
    "apply_divergence",
    "reapplied_differently",
    "log_matching",
    "committed_lost",
    "applied_truncated",
)
"""Every anomaly kind this checker reports."""


def command(event: NodeEvent) -> dict[str, object]:
    """An applied or acknowledged entry's command as an anomaly's facts hold it."""
    return {"term": event.term, "cmd": event.cmd, "hash": event.hash}


def _same(a: NodeEvent, b: NodeEvent) -> bool:
    return a.term == b.term and a.hash == b.hash


def check(events: list[NodeEvent] | None, bound_ns: int = 0) -> CheckResult:
    """Check the ``meta-*`` events of every node of one run; ``bound_ns``: how far apart the
    hosts' clocks may be after alignment (``harness.history.host_clocks``; 0: one clock)."""
    if events is None:
        return CheckResult(UNKNOWN, details={"why": "no node event logs were collected"})
    applies = [e for e in events if e.kind == "meta-apply"]
    if not applies:
        why = "the node event logs hold no meta-apply events (a node that does not write them)"
        return CheckResult(UNKNOWN, details={"why": why})
    applied = _by_node_and_index(applies)
    found: list[Anomaly] = []
    found += _reapplied(applied)
    first = {node: {i: r[0] for i, r in by_index.items()} for node, by_index in applied.items()}
    found += _divergent(first)
    found += _log_matching(first)
    lost, unverified, unsure = _lost_acks(events, applied, bound_ns)
    found += lost
    found += [_refused(e) for e in events if e.kind == "meta-refuse"]
    found += [_truncated(e) for e in events if e.kind == "meta-truncate" and _cut_applied(e)]
    counts: dict[str, int] = defaultdict(int)
    for a in found:
        counts[a.kind] += 1
    truncations = [e for e in events if e.kind == "meta-truncate"]
    details: dict[str, object] = {}
    if unsure and not found:
        details["why"] = (
            f"{unsure} acknowledged command(s) would be lost if the hosts' clocks were more than "
            f"{bound_ns / 1e6:.3f} ms (the measured bound) from where they were measured"
        )
    return CheckResult(
        False if found else UNKNOWN if unsure else True,
        dict(counts),
        keep(found),
        details
        | {
            "clock_bound_ns": bound_ns,
            "unsure_order": unsure,
            "nodes": sorted(applied),
            "applied_entries": len(applies),
            "highest_index": max(carried(e.index) for e in applies),
            "acknowledged": sum(1 for e in events if e.kind == "meta-ack"),
            "acknowledged_unverified": unverified,
            "truncations": len(truncations),
            "snapshots": sum(1 for e in events if e.kind == "meta-snapshot"),
        },
    )


def _by_node_and_index(applies: list[NodeEvent]) -> dict[int, dict[int, list[NodeEvent]]]:
    """node -> index -> its applications of that index, in true-time order."""
    out: dict[int, dict[int, list[NodeEvent]]] = defaultdict(lambda: defaultdict(list))
    for e in sorted(applies, key=lambda e: e.true_ns):
        out[e.node][carried(e.index)].append(e)
    return out


def _reapplied(applied: dict[int, dict[int, list[NodeEvent]]]) -> list[Anomaly]:
    found = []
    for node, by_index in applied.items():
        for index, runs in sorted(by_index.items()):
            other = next((e for e in runs[1:] if not _same(e, runs[0])), None)
            if other is not None:
                found.append(
                    Anomaly(
                        "reapplied_differently",
                        nodes=(node,),
                        times_ns=(runs[0].true_ns, other.true_ns),
                        facts={"index": index, "first": command(runs[0]), "then": command(other)},
                    )
                )
    return found


def _divergent(first: dict[int, dict[int, NodeEvent]]) -> list[Anomaly]:
    """One anomaly per index where two nodes applied different commands."""
    by_index: dict[int, list[NodeEvent]] = defaultdict(list)
    for by_node in first.values():
        for index, e in by_node.items():
            by_index[index].append(e)
    found = []
    for index, applied in sorted(by_index.items()):
        pair = next(((a, b) for a, b in combinations(applied, 2) if not _same(a, b)), None)
        if pair is not None:
            a, b = pair
            found.append(
                Anomaly(
                    "apply_divergence",
                    nodes=(a.node, b.node),
                    times_ns=(a.true_ns, b.true_ns),
                    facts={"index": index, "commands": [command(a), command(b)]},
                )
            )
    return found


def _log_matching(first: dict[int, dict[int, NodeEvent]]) -> list[Anomaly]:
    """Pairs of nodes whose applied entries share an index and term above a difference."""
    found = []
    for x, y in combinations(sorted(first), 2):
        both = sorted(set(first[x]) & set(first[y]))
        differ = [i for i in both if not _same(first[x][i], first[y][i])]
        agree = [i for i in both if first[x][i].term == first[y][i].term]
        if differ and agree and differ[0] <= agree[-1]:
            at, matched = differ[0], agree[-1]
            found.append(
                Anomaly(
                    "log_matching",
                    nodes=(x, y),
                    times_ns=(first[x][at].true_ns, first[y][at].true_ns),
                    facts={
                        "index": at,
                        "matched_index": matched,
                        "matched_term": first[x][matched].term,
                        "commands": [command(first[x][at]), command(first[y][at])],
                    },
                )
            )
    return found


def _lost_acks(
    events: list[NodeEvent], applied: dict[int, dict[int, list[NodeEvent]]], bound_ns: int = 0
) -> tuple[list[Anomaly], int, int]:
    """Acknowledged commands that a node applied past without applying them; how many
    acknowledgements could not be compared (the node's snapshot moved it past the index); and
    how many would be lost only if another host's clock were more than ``bound_ns`` (how well
    the hosts' clocks are aligned) from where it was measured: the order of the acknowledgement
    and the applications that would show it is not known."""
    snapshots: dict[int, list[int]] = defaultdict(list)
    for e in events:
        if e.kind == "meta-snapshot":
            snapshots[e.node].append(carried(e.index))
    reach = {node: _reach(by_index) for node, by_index in applied.items()}
    found, unverified, unsure = [], 0, 0
    for ack in (e for e in events if e.kind == "meta-ack"):
        index = carried(ack.index)
        for node, by_index in applied.items():
            times, highest = reach[node]
            margin = 0 if node == ack.node else 2 * bound_ns
            after = bisect.bisect_right(times, ack.true_ns + margin)
            if after == len(times) or highest[after] <= index:
                # it never applied past the index after the acknowledgement, unless the clocks
                # were further apart than measured
                early = bisect.bisect_right(times, ack.true_ns - margin)
                if early < len(times) and highest[early] > index and not _kept(ack, by_index):
                    unsure += 1
                continue
            runs = by_index.get(index, [])
            if _kept(ack, by_index):
                continue
            if not runs and any(s >= index for s in snapshots[node]):
                unverified += 1
                continue
            there = runs[0] if runs else None
            found.append(
                Anomaly(
                    "committed_lost",
                    nodes=(ack.node, node),
                    times_ns=(ack.true_ns,) + ((there.true_ns,) if there else ()),
                    facts={
                        "index": index,
                        "acknowledged": command(ack),
                        "applied": command(there) if there else None,
                    },
                )
            )
    return found, unverified, unsure


def _kept(ack: NodeEvent, by_index: dict[int, list[NodeEvent]]) -> bool:
    """Whether the node applied the acknowledged command at its index."""
    return any(_same(e, ack) for e in by_index.get(carried(ack.index), []))


def _reach(by_index: dict[int, list[NodeEvent]]) -> tuple[list[int], list[int]]:
    """A node's applications in true-time order, and for each the highest index it applied
    from then on."""
    ordered = sorted((e.true_ns, carried(e.index)) for runs in by_index.values() for e in runs)
    highest = [0] * len(ordered)
    top = 0
    for k in range(len(ordered) - 1, -1, -1):
        top = max(top, ordered[k][1])
        highest[k] = top
    return [t for t, _ in ordered], highest


def _refused(e: NodeEvent) -> Anomaly:
    return Anomaly(
        "committed_lost",
        nodes=(e.node,),
        times_ns=(e.true_ns,),
        facts={
            "index": e.index,
            "refused": True,
            "held_term": e.term,
            "sent_term": e.sent_term,
            "applied": e.applied,
            "commit": e.commit,
        },
    )


def _cut_applied(e: NodeEvent) -> bool:
    return carried(e.start) <= max(carried(e.applied), carried(e.commit))


def _truncated(e: NodeEvent) -> Anomaly:
    return Anomaly(
        "applied_truncated",
        nodes=(e.node,),
        times_ns=(e.true_ns,),
        facts={
            "start": e.start,
            "end": e.end,
            "applied": e.applied,
            "commit": e.commit,
            "dropped": [list(d) for d in e.dropped],
        },
    )
