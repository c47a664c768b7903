"""Hypothesis: the bad-pattern checker against a simulated correct queue and Wing-Gong search."""

from collections import deque

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.checker.wing_gong import linearizable
from harness.history import INF, Op
from tests.checker_support import check_topic


@st.composite
def correct_histories(draw, max_ops: int = 12, info: bool = False):
    """Operations on a real FIFO queue: each takes effect at a point inside its interval."""
    n = draw(st.integers(1, max_ops))
    specs = []
    for i in range(n):
        kind = draw(st.sampled_from(["put", "put", "get"]))
        inv = draw(st.integers(0, 40))
        dur = draw(st.integers(1, 15))
        point = inv + draw(st.floats(0.01, 0.99)) * dur
        unknown = info and draw(st.integers(0, 5)) == 0
        took_effect = not unknown or draw(st.booleans())
        specs.append((point, i, kind, inv, inv + dur, unknown, took_effect))
    q: deque = deque()
    ops = []
    for _, i, kind, inv, ret, unknown, took_effect in sorted(specs):  # by linearization point
        value = f"v{i}" if kind == "put" else None
        if took_effect:
            if kind == "put":
                q.append(value)
            else:
                value = q.popleft() if q else None
        if unknown:
            ops.append(
                Op(i, kind, "t", value if kind == "put" else None, inv, INF, "info", i, None)
            )
        else:
            ops.append(Op(i, kind, "t", value, inv, ret, "ok", i, None))
    return ops


@settings(max_examples=400, deadline=None)
@given(correct_histories(max_ops=40))
def test_correct_histories_are_valid(ops):
    assert check_topic(ops).valid is True


@settings(max_examples=400, deadline=None)
@given(correct_histories(max_ops=40, info=True))
def test_correct_histories_with_info_ops_are_never_invalid(ops):
    assert check_topic(ops).valid is not False


@settings(max_examples=600, deadline=None)
@given(correct_histories(max_ops=12))
def test_agrees_with_wing_gong_on_small_histories(ops):
    assert (check_topic(ops).valid is True) == linearizable(ops)


def _mutate(ops: list[Op], kind: str, data) -> list[Op]:
    gets = [o for o in ops if o.f == "get" and o.type == "ok"]
    valued = [o for o in gets if o.value is not None]
    ops = list(ops)
    if kind == "drop":
        assume(valued)
        ops.remove(data.draw(st.sampled_from(valued)))
    elif kind == "duplicate":
        assume(valued)
        g = data.draw(st.sampled_from(valued))
        late = max(o.ret for o in ops if o.ret != INF) + 1
        ops.append(Op(999, "get", "t", g.value, late, late + 1, "ok", 999, None))
    elif kind == "swap":
        assume(len(valued) >= 2)
        i, j = data.draw(
            st.lists(st.integers(0, len(valued) - 1), min_size=2, max_size=2, unique=True)
        )
        a, b = valued[i], valued[j]
        ops[ops.index(a)] = Op(
            a.process, "get", "t", b.value, a.inv, a.ret, "ok", a.invoke_index, None
        )
        ops[ops.index(b)] = Op(
            b.process, "get", "t", a.value, b.inv, b.ret, "ok", b.invoke_index, None
        )
    else:  # fake EMPTY
        assume(valued)
        g = data.draw(st.sampled_from(valued))
        ops[ops.index(g)] = Op(
            g.process, "get", "t", None, g.inv, g.ret, "ok", g.invoke_index, None
        )
    return ops


@settings(max_examples=800, deadline=None)
@given(
    correct_histories(max_ops=12),
    st.sampled_from(["drop", "duplicate", "swap", "empty"]),
    st.data(),
)
def test_single_fault_mutations_agree_with_wing_gong(ops, kind, data):
    mutated = _mutate(ops, kind, data)
    assert (check_topic(mutated).valid is True) == linearizable(mutated)


def _with(ops: list[Op], old: Op, value: str | None) -> list[Op]:
    out = list(ops)
    out[ops.index(old)] = Op(
        old.process, "get", "t", value, old.inv, old.ret, "ok", old.invoke_index, None
    )
    return out


def definite_breaks(ops: list[Op]) -> list[tuple[str, list[Op]]]:
    """Mutations of a correct history that no interleaving can explain, at any size: a value
    read twice; two reads swapped where both the puts and the reads are ordered in real time
    (the first put ended before the second began, the first read before the second); a read
    made EMPTY although its value's put ended before the read began (and nobody else reads it)."""
    puts = {o.value: o for o in ops if o.f == "put" and o.type == "ok"}
    valued = [o for o in ops if o.f == "get" and o.type == "ok" and o.value is not None]
    out = []
    late = max((o.ret for o in ops if o.ret != INF), default=0) + 1
    for g in valued:
        duplicate = Op(999, "get", "t", g.value, late, late + 1, "ok", 999, None)
        out.append(("duplicate", [*ops, duplicate]))
        if g.value in puts and puts[g.value].ret < g.inv:
            out.append(("empty", _with(ops, g, None)))
    for a in valued:
        for b in valued:
            x, y = puts.get(a.value), puts.get(b.value)
            if x and y and a.ret < b.inv and x.ret < y.inv:
                out.append(("swap", _with(_with(ops, a, b.value), b, a.value)))
    return out


@settings(max_examples=400, deadline=None)
@given(correct_histories(max_ops=30), st.data())
def test_mutations_that_break_fifo_at_any_size_are_caught(ops, data):
    """Every example asserts: the history's definite breaks are invalid, or, when it has none
    (no value was read), the history itself is valid."""
    breaks = definite_breaks(ops)
    if not breaks:
        assert check_topic(ops).valid is True
        return
    kind, mutated = data.draw(st.sampled_from(breaks))
    assert check_topic(mutated).valid is False, kind


@settings(max_examples=300, deadline=None)
@given(correct_histories(max_ops=7), st.data())
def test_definite_breaks_are_not_linearizable(ops, data):
    """The mutations above are breaks indeed: Wing-Gong search agrees, on histories it can
    search (proving a history non-linearizable explores every order of its concurrent puts:
    at 12 operations one example took 24 GB, so 7)."""
    breaks = definite_breaks(ops)
    if not breaks:
        assert linearizable(ops)
        return
    _, mutated = data.draw(st.sampled_from(breaks))
    assert not linearizable(mutated)


@settings(max_examples=400, deadline=None)
@given(correct_histories(max_ops=10, info=True))
def test_with_info_ops_never_contradicts_wing_gong(ops):
    verdict = check_topic(ops).valid
    if verdict is True:
        assert linearizable(ops)
    if verdict is False:
        assert not linearizable(ops)
