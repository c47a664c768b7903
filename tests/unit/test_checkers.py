"""Totals, lease, storage and perf checkers on hand-made evidence."""

from harness.checker import lease, perf, storage, totals
from harness.history import INF, Op
from harness.history.columns import from_ops
from harness.history.node_events import parse


def put(value, inv, ret, pos=None, node=1, epoch=1, type_="ok", topic="t"):
    op = Op(1, "put", topic, value, inv, ret if type_ != "info" else INF, type_, int(inv), None)
    op.pos, op.node, op.epoch = pos, node, epoch
    return op


def get(value, inv, ret, type_="ok", topic="t"):
    return Op(2, "get", topic, value, inv, ret if type_ != "info" else INF, type_, int(inv), None)


def test_totals_counts_and_verdicts():
    ops = [
        put("a", 0, 1),
        put("b", 0, 1),
        put("c", 0, 1, type_="info"),
        put("d", 0, 1, type_="fail"),
        get("a", 2, 3),
        get("c", 2, 3),
        get(None, 4, 5),
    ]
    r = totals.check(from_ops(ops))
    t = r.details
    assert (t["attempted"], t["acknowledged"], t["read"], t["lost"], t["recovered"]) == (
        4,
        2,
        2,
        1,
        1,
    )
    assert r.valid is False
    lost = [a for a in r.anomalies if a.kind == "lost"]
    assert [(a.values, a.ops) for a in lost] == [
        (("b",), (ops[1].invoke_index, ops[6].invoke_index))
    ]


def test_totals_without_a_final_empty_only_knows_unread():
    r = totals.check(from_ops([put("a", 0, 1)]))
    assert r.details["unread"] == 1 and r.details["lost"] == 0 and r.valid == "unknown"


def test_totals_duplicates_and_unexpected():
    r = totals.check(from_ops([put("a", 0, 1), get("a", 2, 3), get("a", 4, 5), get("z", 6, 7)]))
    assert (r.details["duplicated"], r.details["unexpected"], r.valid) == (1, 1, False)
    assert r.counts == {"duplicated": 1, "unexpected": 1}


def test_totals_an_info_get_leaves_a_loss_unknown():
    r = totals.check(from_ops([put("a", 0, 1), get(None, 2, 3, type_="info"), get(None, 4, 5)]))
    assert r.details["lost"] == 1 and r.valid == "unknown"


STATE = {
    "t": {
        "segment_leaders": {"1": 1, "2": 2},
        "segment_epochs": {"1": 1, "2": 2},
        "sealed_segments": {"1": 2},
    }
}


def ev(kind, node, true_s, node_time=None, **fields):
    return parse(
        {
            "kind": kind,
            "node": node,
            "true_ns": int(true_s * 1e9),
            "node_time": true_s if node_time is None else node_time,
            **fields,
        }
    )


def test_lease_positions_and_leaders():
    ops = [
        put("a", 0, 1, pos=(1, 0)),
        put("b", 0, 1, pos=(1, 0)),
        put("c", 0, 1, pos=(2, 0), node=3),
        put("d", 0, 1, pos=(1, 2)),
    ]
    r = lease.check(from_ops(ops), STATE, [], 2.0)
    assert r.counts == {"duplicate_positions": 1, "wrong_leader": 1, "beyond_sealed_count": 1}
    assert r.valid is False


def test_lease_needs_events_to_be_sure():
    assert lease.check(from_ops([put("a", 0, 1, pos=(1, 0))]), STATE, None, 2.0).valid == "unknown"


def test_lease_events_clean_run():
    events = [
        ev("start", 1, 0),
        ev("lease-acquire", 1, 1, sent=0.9, expiry=2.7),
        ev("append", 1, 1.5, topic="t", segment=1, offset=0, count=1, epoch=1),
        ev("lease-renew", 1, 1.6, sent=1.5, expiry=3.3),
        ev("append", 1, 3.0, topic="t", segment=1, offset=1, count=1, epoch=1),
        ev("start", 2, 0),
        ev("lease-acquire", 2, 5, sent=4.9, expiry=6.7),
        ev("append", 2, 5.5, topic="t", segment=2, offset=0, count=1, epoch=2),
    ]
    assert lease.check(from_ops([]), {}, events, 2.0).valid is True


def test_lease_overlapping_writers_and_expired_appends():
    events = [
        ev("start", 1, 0),
        ev("lease-acquire", 1, 1, sent=0.9, expiry=2.7),
        ev("append", 1, 1.5, topic="t", segment=1, offset=0, count=1, epoch=1),
        ev("append", 1, 6.0, node_time=2.5, topic="t", segment=1, offset=1, count=1, epoch=1),
        ev("start", 2, 0),
        ev("lease-acquire", 2, 4, sent=3.9, expiry=5.7),
        ev("append", 2, 4.5, topic="t", segment=2, offset=0, count=1, epoch=2),
    ]
    r = lease.check(from_ops([]), {}, events, 2.0)
    assert r.valid is False
    assert set(r.counts) == {"overlapping_writers", "append_after_expiry_true_time"}


def test_lease_compat_nodes_have_no_leases_to_check():
    events = [
        ev("start", 1, 0, compat=True),
        ev("append", 1, 1.5, topic="t", segment=1, offset=0, count=1, epoch=1),
    ]
    assert lease.check(from_ops([]), {}, events, 2.0).valid is True


def test_storage_audit():
    ops = [put("a", 0, 1, pos=(1, 0)), put("b", 0, 1, pos=(1, 1)), put("c", 0, 1, pos=(1, 2))]
    audit = {
        "segments": {"t": {"1": {"values": ["a", "x", "c"], "state": "sealed", "count": 2}}},
        "errors": [],
    }
    r = storage.check(from_ops(ops), audit)
    assert r.counts == {
        "acknowledged_not_stored": 1,
        "phantom": 1,
        "acknowledged_beyond_count": 1,
    }
    good = {
        "segments": {"t": {"1": {"values": ["a", "b", "c"], "state": "open", "count": None}}},
        "errors": [],
    }
    assert storage.check(from_ops(ops), good).valid is True
    assert storage.check(from_ops(ops), {**good, "errors": ["SCAN failed"]}).valid == "unknown"


def test_perf_windows():
    ops = [
        put("a", 0, 1e6),
        put("b", 2e9, 2.5e9),
        get("a", 3e9, 3.1e9),
        get(None, 3.5e9, 0, "info"),
    ]
    windows = [("kill", 1.5e9, 3.2e9, None)]
    result = perf.check(from_ops(ops), windows, 4e9)
    r = result.details
    assert result.valid is True
    assert r["all"]["put"]["ok"] == 2 and r["all"]["get"]["info"] == 1
    assert r["kill"]["put"]["ok"] == 1 and r["quiet"]["put"]["ok"] == 1
    assert r["all"]["get"]["availability"] == 0.5


def test_info_gets_resolved_from_the_nodes_logs():
    from harness.checker import queue
    from harness.checker.resolve import apply, resolve_info_gets

    lost_reply = get(None, 2, 3, type_="info")
    lost_reply.tag = "7.123"
    ops = [put("a", 0, 1, pos=(1, 0)), lost_reply, get(None, 4, 5)]
    assert totals.check(from_ops(ops)).valid == "unknown"
    events = [
        ev("cursor", 1, 1, topic="t", segment=1, offset=1, first=0, tags=["7.123"], values=["a"])
    ]
    resolutions = resolve_info_gets(from_ops(ops), events, None)
    assert [(r.invoke_index, r.value, r.pos) for r in resolutions] == [
        (lost_reply.invoke_index, "a", (1, 0))
    ]
    resolved = apply(from_ops(ops), resolutions)
    assert lost_reply.value is None and not lost_reply.resolved, "the loaded history is kept"
    assert resolved.op(1).value == "a" and resolved.op(1).resolved
    assert totals.check(resolved).valid is True
    assert queue.check(resolved).valid is True


def test_a_logged_hand_out_that_was_handed_out_again_did_not_take_effect():
    from harness.checker import queue
    from harness.checker.resolve import resolve_info_gets

    lost_reply = get(None, 2, 3, type_="info")
    lost_reply.tag = "x"
    ops = [put("a", 0, 1), lost_reply, get("a", 4, 5)]
    events = [
        ev("cursor", 1, 1, topic="t", segment=1, offset=1, first=0, tags=["x"], values=[None])
    ]
    audit = {"segments": {"t": {"1": {"values": ["a"]}}}}
    assert resolve_info_gets(from_ops(ops), events, audit) == []
    assert queue.check(from_ops(ops)).valid is True


def test_of_two_info_gets_logged_with_one_value_the_last_took_it():
    from harness.checker.resolve import apply, resolve_info_gets

    first, second = get(None, 2, 3, type_="info"), get(None, 4, 5, type_="info")
    first.tag, second.tag = "x", "y"
    ops = [put("a", 0, 1), first, second, get(None, 6, 7)]
    events = [
        ev("cursor", 1, when, topic="t", segment=1, offset=1, first=0, tags=[tag], values=["a"])
        for tag, when in (("x", 10), ("y", 20))
    ]
    resolutions = resolve_info_gets(from_ops(ops), events, None)
    assert [r.invoke_index for r in resolutions] == [second.invoke_index]
    resolved = apply(from_ops(ops), resolutions)
    assert resolved.op(1).value is None and resolved.op(2).value == "a"
    assert totals.check(resolved).valid is True
