"""Each delivery rule is shown judging by what a system promises, and catching what it exists for.

The same small histories are judged by Walrus's promise (each value once, in order) and by an
at-least-once promise like JetStream's (redelivered within ``REDELIVERY_S``, a confirmed ack
final, no order): a redelivery after a failed or unknown ack is a violation of the first and
allowed by the second; a duplicate no failure explains, a lost value and a phantom value are
violations of both.
"""

from dataclasses import replace

import pytest

from harness.checker import queue, totals
from harness.history import Op
from harness.history.columns import from_ops
from harness.history.delivery import EXACTLY_ONCE_IN_ORDER, Delivery
from tests.checker_support import get, put

REDELIVERY_S = 5.0
S = 1e9
AT_LEAST_ONCE = Delivery(False, "none", "a test", redelivery_s=REDELIVERY_S)


def judged(ops: list[Op], delivery: Delivery, last_fault: float = 0.0) -> tuple[object, object]:
    """(queue verdict, totals verdict)."""
    c = from_ops(ops)
    return queue.check(c, delivery).valid, totals.check(c, delivery, last_fault).valid


def acked(op: Op, ack: str) -> Op:
    """``op`` with its acknowledgement ``failed`` or ``unknown``."""
    return replace(op, ack=ack)


def info_get(inv: float, end: float) -> Op:
    """A get whose outcome is unknown, its completion recorded at ``end``."""
    op = get(None, inv, None)
    return replace(op, end=end, complete_index=op.invoke_index)


@pytest.mark.parametrize("ack", ["failed", "unknown"])
def test_a_redelivery_after_an_unconfirmed_ack_is_allowed_at_least_once_only(ack):
    ops = [
        put("a", 0, 1 * S),
        acked(get("a", 2 * S, 3 * S), ack),
        get("a", 9 * S, 10 * S),
        get(None, 11 * S, 12 * S),
    ]
    assert judged(ops, AT_LEAST_ONCE) == (True, True)
    c = from_ops(ops)
    assert totals.check(c, AT_LEAST_ONCE).details["redelivered"] == 1
    assert queue.check(c, AT_LEAST_ONCE).details["topics"]["t"]["redelivered"] == 1
    assert judged(ops, EXACTLY_ONCE_IN_ORDER) == (False, False)


def test_a_redelivery_while_the_first_ack_was_in_flight_is_allowed():
    """The second get was invoked before the first returned: the ack may have been processed
    after the second hand-out (an ack later than the redelivery time)."""
    ops = [put("a", 0, 1 * S), get("a", 2 * S, 9 * S), get("a", 8 * S, 8.5 * S)]
    ops.append(get(None, 20 * S, 21 * S))
    assert judged(ops, AT_LEAST_ONCE) == (True, True)


def test_a_duplicate_after_a_confirmed_ack_is_caught():
    ops = [put("a", 0, 1 * S), get("a", 2 * S, 3 * S), get("a", 9 * S, 10 * S)]
    assert judged(ops, AT_LEAST_ONCE) == (False, False)
    assert totals.check(from_ops(ops), AT_LEAST_ONCE).counts == {"duplicated": 1}
    anything_goes = replace(AT_LEAST_ONCE, acked_final=False)
    assert judged(ops, anything_goes) == (True, True)


def test_a_value_an_info_get_took_must_come_back_within_the_redelivery_time():
    """Walrus: an info get may have consumed the value (unknown). At least once with a
    redelivery time: once a drain's EMPTY is that long past the info get, the value is lost."""
    late_empty = [put("a", 0, 1 * S), info_get(2 * S, 3 * S), get(None, 9 * S, 9.1 * S)]
    assert judged(late_empty, EXACTLY_ONCE_IN_ORDER)[1] == "unknown"
    assert judged(late_empty, AT_LEAST_ONCE) == (True, False)
    result = totals.check(from_ops(late_empty), AT_LEAST_ONCE)
    assert result.counts == {"lost": 1}
    early_empty = [put("a", 0, 1 * S), info_get(2 * S, 3 * S), get(None, 4 * S, 4.1 * S)]
    assert judged(early_empty, AT_LEAST_ONCE)[1] == "unknown"


def test_the_redelivery_time_counts_from_the_last_fault():
    ops = [put("a", 0, 1 * S), info_get(2 * S, 3 * S), get(None, 9 * S, 9.1 * S)]
    assert judged(ops, AT_LEAST_ONCE, last_fault=6 * S)[1] == "unknown"
    assert judged(ops, AT_LEAST_ONCE, last_fault=float("inf"))[1] == "unknown"
    assert judged(ops, AT_LEAST_ONCE, last_fault=3.5 * S)[1] is False


def test_an_info_get_that_never_completed_never_settles():
    never = get(None, 2 * S, None)
    ops = [put("a", 0, 1 * S), never, get(None, 60 * S, 61 * S)]
    assert judged(ops, AT_LEAST_ONCE)[1] == "unknown"


def test_order_is_checked_only_where_promised():
    ops = [
        put("a", 0, 1 * S),
        put("b", 2 * S, 3 * S),
        get("b", 4 * S, 5 * S),
        get("a", 6 * S, 7 * S),
        get(None, 8 * S, 9 * S),
    ]
    assert judged(ops, EXACTLY_ONCE_IN_ORDER) == (False, True)
    assert judged(ops, AT_LEAST_ONCE) == (True, True)
    in_order = replace(AT_LEAST_ONCE, order="topic")
    assert judged(ops, in_order) == (False, True)


def test_order_at_least_once_allows_a_first_hand_out_to_an_info_get():
    """b overtook a, but an info get invoked before may have been handed a first (a came back
    later): not a certain violation of a promised order."""
    ops = [
        put("a", 0, 1 * S),
        put("b", 2 * S, 3 * S),
        info_get(3.5 * S, 4 * S),
        get("b", 4 * S, 5 * S),
        get("a", 10 * S, 11 * S),
        get(None, 20 * S, 21 * S),
    ]
    in_order = replace(AT_LEAST_ONCE, order="topic")
    assert judged(ops, in_order)[0] is not False
    assert judged(ops, EXACTLY_ONCE_IN_ORDER)[0] is False


def test_a_phantom_value_is_a_violation_of_every_promise():
    ops = [put("a", 0, 1 * S), get("a", 2 * S, 3 * S), get("z", 4 * S, 5 * S)]
    for delivery in (EXACTLY_ONCE_IN_ORDER, AT_LEAST_ONCE):
        assert judged(ops, delivery) == (False, False)


def test_an_empty_while_a_value_is_queued_is_caught_at_least_once():
    ops = [put("a", 0, 1 * S), get(None, 2 * S, 3 * S), get("a", 4 * S, 5 * S)]
    assert judged(ops, AT_LEAST_ONCE)[0] is False
    handed_out = [put("a", 0, 1 * S), info_get(1.5 * S, 1.8 * S), *ops[1:]]
    assert judged(handed_out, AT_LEAST_ONCE)[0] is not False
