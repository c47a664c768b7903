"""Each checker is shown to catch the bug it exists for.

A correct run is simulated — one writer per segment, renewed leases, PUTX positions, the
nodes' event logs and the final STATE — and then exactly one bug is injected. The run must check
valid before and the named checker must flag it after. (The ``--compat walrus`` runs in
``tests/integration/test_harness.py`` show the same on a real cluster.)
"""

import copy

import pytest

from harness.checker import lease, queue, storage, totals
from harness.history import Op
from harness.history.columns import from_ops
from harness.history.node_events import parse

LEASE_S = 2.0


def simulate():
    """Two segments: node 1 writes segment 1 (values v0..v4), node 2 segment 2 (v5..v9); every
    value is read back in order, then EMPTY."""
    ops, events, t = [], [], 0.0
    for node, segment in ((1, 1), (2, 2)):
        events.append({"kind": "start", "node": node, "true_ns": int(t * 1e9), "node_time": t})
        events.append(
            {
                "kind": "lease-acquire",
                "node": node,
                "true_ns": int(t * 1e9),
                "node_time": t,
                "sent": t,
                "expiry": t + LEASE_S * 0.9,
            }
        )
        for offset in range(5):
            value = f"v{(segment - 1) * 5 + offset}"
            op = Op(
                node * 10 + offset,
                "put",
                "t",
                value,
                t * 1e9,
                (t + 0.01) * 1e9,
                "ok",
                len(ops),
                len(ops),
            )
            op.pos, op.node, op.epoch = (segment, offset), node, segment
            ops.append(op)
            events.append(
                {
                    "kind": "append",
                    "node": node,
                    "true_ns": int((t + 0.005) * 1e9),
                    "node_time": t + 0.005,
                    "topic": "t",
                    "segment": segment,
                    "offset": offset,
                    "count": 1,
                    "epoch": segment,
                }
            )
            t += 0.05
        t += 0.5
    for i in range(10):
        ops.append(Op(100 + i, "get", "t", f"v{i}", t * 1e9, (t + 0.01) * 1e9, "ok", len(ops), 0))
        t += 0.05
    ops.append(Op(200, "get", "t", None, t * 1e9, (t + 0.01) * 1e9, "ok", len(ops), 0))
    for index, cmd in ((2, "noop"), (3, "register"), (4, "renew"), (5, "rollover")):
        for node in (1, 2):  # both nodes applied the same metadata entries
            e = {
                "kind": "meta-apply",
                "node": node,
                "true_ns": index * 10**8 + node,
                "node_time": 0,
            }
            events.append({**e, "index": index, "term": 1, "hash": f"{cmd}-{index}", "cmd": cmd})
    state = {
        "t": {
            "segment_leaders": {"1": 1, "2": 2},
            "segment_epochs": {"1": 1, "2": 2},
            "sealed_segments": {"1": 5},
        }
    }
    audit = {
        "states": state,
        "errors": [],
        "segments": {
            "t": {
                "1": {"values": [f"v{i}" for i in range(5)], "state": "sealed", "count": 5},
                "2": {"values": [f"v{i}" for i in range(5, 10)], "state": "open", "count": None},
            }
        },
    }
    return ops, events, audit


def results(ops, events, audit):
    logged = [parse(e) for e in events]
    return {
        "queue": queue.check(from_ops(ops)),
        "totals": totals.check(from_ops(ops)),
        "lease": lease.check(from_ops(ops), audit["states"], logged, LEASE_S),
        "storage": storage.check(from_ops(ops), audit),
    }


def verdicts(ops, events, audit):
    return {name: r.valid for name, r in results(ops, events, audit).items()}


def test_the_simulated_run_is_valid():
    assert set(verdicts(*simulate()).values()) == {True}


# Each bug returns what it planted: the operations (invoke indexes) or, for bugs in the nodes'
# event logs, the (segment, offset) positions an anomaly must name as its witnesses.


def _put(ops, value):
    return next(o for o in ops if o.f == "put" and o.value == value)


def _get(ops, value):
    return next(o for o in ops if o.f == "get" and o.value == value)


def lose_a_write(ops, events, audit):
    ops.remove(_get(ops, "v3"))
    return {"ops": {_put(ops, "v3").invoke_index}}


def deliver_twice(ops, events, audit):
    again = copy.copy(_get(ops, "v2"))
    again.inv, again.ret, again.process = ops[-1].inv + 1e8, ops[-1].ret + 1e8, 999
    again.invoke_index = len(ops)
    ops.append(again)
    return {"ops": {again.invoke_index}}


def reorder(ops, events, audit):
    a, b = _get(ops, "v1"), _get(ops, "v6")
    a.value, b.value = b.value, a.value
    return {"ops": {a.invoke_index, b.invoke_index}}


def stale_empty(ops, events, audit):
    early = _get(ops, "v8")
    early.value = None
    return {"ops": {early.invoke_index}}


def reuse_an_offset(ops, events, audit):
    _put(ops, "v4").pos = (1, 3)
    return {"ops": {_put(ops, "v4").invoke_index}}


def ack_from_the_wrong_leader(ops, events, audit):
    _put(ops, "v7").node = 1
    return {"ops": {_put(ops, "v7").invoke_index}}


def overlapping_writers(ops, events, audit):
    late = next(
        e for e in events if e["kind"] == "append" and e["segment"] == 1 and e["offset"] == 4
    )
    first_of_2 = next(e for e in events if e["kind"] == "append" and e["segment"] == 2)
    late["true_ns"] = first_of_2["true_ns"] + 1
    return {"positions": {(1, 4)}}


def append_after_lease(ops, events, audit):
    e = next(e for e in events if e["kind"] == "append" and e["node"] == 2)
    e["node_time"] += 10
    return {"positions": {(e["segment"], e["offset"])}}


def lose_from_storage(ops, events, audit):
    audit["segments"]["t"]["2"]["values"][1] = "v-other"
    return {"ops": {_put(ops, "v6").invoke_index}}


BUGS = [
    (lose_a_write, {"queue", "totals"}),
    (deliver_twice, {"queue", "totals"}),
    (reorder, {"queue"}),
    (stale_empty, {"queue"}),
    (reuse_an_offset, {"lease"}),
    (ack_from_the_wrong_leader, {"lease"}),
    (overlapping_writers, {"lease"}),
    (append_after_lease, {"lease"}),
    (lose_from_storage, {"storage"}),
]


@pytest.mark.parametrize(("bug", "catches"), BUGS)
def test_each_bug_is_caught_by_its_checker(bug, catches):
    ops, events, audit = simulate()
    bug(ops, events, audit)
    found = verdicts(ops, events, audit)
    for name in catches:
        assert found[name] is False, f"{name} missed {bug.__name__}: {found}"


@pytest.mark.parametrize(("bug", "catches"), BUGS)
def test_each_anomaly_names_what_was_planted_in_a_small_witness(bug, catches):
    """The anomaly is data: some anomaly of each catching checker names the planted operations
    (or positions) among at most 20 witnesses, and reads as one line."""
    from harness.checker.explain import explain

    ops, events, audit = simulate()
    planted = bug(ops, events, audit)
    by_index = {o.invoke_index: o for o in ops}
    for name, result in results(ops, events, audit).items():
        if name not in catches:
            continue
        witnessed = [
            a
            for a in result.anomalies
            if planted.get("ops", set()) <= set(a.ops)
            and planted.get("positions", set()) <= set(a.positions)
        ]
        assert witnessed, f"{name}: no anomaly names {planted}: {result.anomalies}"
        for a in witnessed:
            assert len(a.ops) <= 20
            text = explain(a, by_index)
            assert text and "\n" not in text
