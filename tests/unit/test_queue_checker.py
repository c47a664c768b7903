"""Hand-written histories for every bad pattern, and info operations handled soundly."""

from harness.checker import queue
from harness.checker.wing_gong import linearizable
from harness.history.columns import from_ops
from tests.checker_support import check_topic, get, put


def verdict(ops):
    result = check_topic(ops)
    return result.valid, [a.kind for a in result.anomalies]


def test_a_plain_fifo_history_is_valid():
    ops = [put("a", 0, 1), put("b", 2, 3), get("a", 4, 5), get("b", 6, 7), get(None, 8, 9)]
    assert verdict(ops) == (True, [])
    assert linearizable(ops)


def test_concurrent_puts_may_come_out_either_way():
    ops = [put("a", 0, 5), put("b", 1, 4), get("b", 6, 7), get("a", 8, 9)]
    assert verdict(ops) == (True, [])


def test_vfresh_never_enqueued():
    assert verdict([get("ghost", 0, 1)]) == (False, ["VFresh"])


def test_vfresh_dequeued_before_enqueue_began():
    assert verdict([get("a", 0, 1), put("a", 2, 3)]) == (False, ["VFresh"])


def test_vfresh_value_of_a_failed_put():
    assert verdict([put("a", 0, 1, "fail"), get("a", 2, 3)]) == (False, ["VFresh"])


def test_vrepet():
    ops = [put("a", 0, 1), get("a", 2, 3), get("a", 4, 5)]
    assert verdict(ops) == (False, ["VRepet"])
    assert not linearizable(ops)


def test_vord_out_of_order():
    ops = [put("a", 0, 1), put("b", 2, 3), get("b", 4, 5), get("a", 6, 7)]
    assert verdict(ops) == (False, ["VOrd"])
    assert not linearizable(ops)


def test_vord_skipped_value():
    ops = [put("a", 0, 1), put("b", 2, 3), get("b", 4, 5)]
    assert verdict(ops) == (False, ["VOrd"])
    assert not linearizable(ops)


def test_vwit_single_window():
    ops = [put("a", 0, 1), get(None, 2, 3), get("a", 4, 5)]
    assert verdict(ops) == (False, ["VWit"])
    assert not linearizable(ops)


def test_vwit_only_the_union_of_windows_covers_the_empty():
    # a is certainly queued over (1, 5), b over (4, 9): neither window alone covers the EMPTY
    # at [3, 7], their union does.
    ops = [put("a", 0, 1), put("b", 3.5, 4), get(None, 3, 7), get("a", 5, 10), get("b", 9, 11)]
    valid, kinds = verdict(ops)
    assert (valid, kinds) == (False, ["VWit"])
    assert not linearizable(ops)


def test_an_empty_that_overlaps_an_uncovered_instant_is_fine():
    ops = [put("a", 0, 1), get("a", 2, 4), put("b", 5, 6), get(None, 3, 7), get("b", 8, 9)]
    assert verdict(ops) == (True, [])
    assert linearizable(ops)


def test_lost_value_caught_by_the_final_empty():
    ops = [put("a", 0, 1), put("b", 2, 3), get("a", 4, 5), get(None, 6, 7)]
    assert verdict(ops) == (False, ["VWit"])


def test_info_put_may_or_may_not_have_happened():
    assert verdict([put("a", 0, None), get(None, 2, 3)]) == (True, [])
    assert verdict([put("a", 0, None), get("a", 2, 3), get(None, 4, 5)]) == (True, [])


def test_an_info_get_explains_a_missing_value():
    ops = [put("a", 0, 1), get(None, 2, None), put("b", 3, 4), get("b", 5, 6), get(None, 7, 8)]
    # a was never seen, but the info get (invoked at 2) may have taken it.
    result = check_topic(ops)
    assert result.valid is True
    assert result.details.get("explained_by_info_gets")
    assert linearizable(ops)


def test_an_info_get_too_late_to_explain_is_still_a_violation():
    ops = [put("a", 0, 1), put("b", 2, 3), get("b", 4, 5), get(None, 6, None), get(None, 7, 8)]
    valid, kinds = verdict(ops)
    assert valid is False and "VOrd" in kinds
    assert not linearizable(ops)


def test_one_info_get_cannot_explain_two_missing_values():
    ops = [put("a", 0, 1), put("b", 0, 1), get(None, 2, None), get(None, 5, 6)]
    assert not linearizable(ops)
    valid, kinds = verdict(ops)
    assert valid in (False, "unknown") and "VWit" in kinds


def test_reports_name_the_operations():
    from harness.checker.explain import explain

    ops = [put("a", 0, 1), put("b", 2, 3), get("b", 4, 5)]
    anomaly = check_topic(ops).anomalies[0]
    assert anomaly.ops == tuple(o.invoke_index for o in ops) and anomaly.values == ("a", "b")
    text = explain(anomaly, {o.invoke_index: o for o in ops})
    assert "'a' was enqueued" in text and "never was" in text


def test_repeated_put_values_make_the_verdict_unknown():
    assert check_topic([put("a", 0, 1), put("a", 2, 3)]).valid == "unknown"


def test_topics_are_checked_separately_and_merged():
    from tests.checker_support import op

    ops = [op("put", "a", 0, 1, topic="x"), op("get", "a", 2, 3, topic="y")]
    result = queue.check(from_ops(ops))
    assert result.valid is False
    assert result.details["topics"]["x"]["valid"] is True
    assert result.counts == {"VFresh": 1}
    assert [(a.kind, a.topic) for a in result.anomalies] == [("VFresh", "y")]
