"""The metadata state machine: conditional, idempotent commands and round-robin leadership."""

import itertools

from walrus.metastate import LOST, OPEN, PENDING, SEALED, MetaMachine, state_json


def machine(compat=False) -> MetaMachine:
    return MetaMachine([1, 2, 3], compat=compat)


def test_register_once():
    m = machine()
    assert m.register("t", "r1") == "created"
    assert m.register("t", "r2") == "exists"
    t = m.view().topic("t")
    assert len(t.segments) == 1 and t.current.state == OPEN and t.cursor == 1
    assert t.current.leader in (1, 2, 3)


def test_results_are_remembered_by_request_id():
    m = machine()
    m.register("t", "r1")
    seg = m.view().topic("t").current
    first = m.rollover("t", seg.id, seg.epoch, 5, "roll")
    assert first.startswith("rolled")
    assert m.rollover("t", seg.id, seg.epoch, 5, "roll") == first  # a retry of the same proposal
    assert m.rollover("t", seg.id, seg.epoch, 5, "other").startswith("stale")
    assert len(m.view().topic("t").segments) == 2


def test_rollover_is_conditional_and_round_robin():
    m = machine()
    m.register("t", "r")
    leaders = []
    for i in range(6):
        seg = m.view().topic("t").current
        leaders.append(seg.leader)
        assert m.rollover("t", seg.id, seg.epoch, 10, f"r{i}").startswith("rolled")
    assert sorted(set(leaders)) == [1, 2, 3]
    assert all(b == a % 3 + 1 for a, b in itertools.pairwise(leaders))
    t = m.view().topic("t")
    assert [s.state for s in t.segments] == [SEALED] * 6 + [OPEN]
    assert [s.count for s in t.segments[:6]] == [10] * 6
    assert [s.epoch for s in t.segments] == list(range(1, 8))
    # A late rollover of an old segment does nothing.
    assert m.rollover("t", 1, 1, 99, "late").startswith("stale")
    assert m.view().topic("t").segment(1).count == 10


def test_takeover_only_if_the_node_has_not_renewed():
    m = machine()
    m.register("t", "r")
    holder = m.view().topic("t").current.leader
    assert m.renew(holder, "n1") == "renewed"
    assert m.takeover(holder, 0, "x1").startswith("stale")  # it renewed since count 0
    assert m.takeover(holder, 1, "x2") == "taken-over 1"
    t = m.view().topic("t")
    assert t.segment(1).state == PENDING and t.segment(1).count is None
    assert t.current.id == 2 and t.current.leader != holder and t.current.epoch == 2
    assert holder not in m.view().alive
    # New leadership skips the dead node; a renew brings it back.
    seg = t.current
    m.rollover("t", seg.id, seg.epoch, 3, "r2")
    assert m.view().topic("t").current.leader != holder
    m.renew(holder, "n2")
    assert holder in m.view().alive


def test_every_renew_counts_once():
    """A retried renew (same request id) counts once; a new one always counts, so a node that
    restarted with no memory of its renews still blocks a takeover decided before it."""
    m = machine()
    assert m.renew(1, "a") == "renewed"
    assert m.renew(1, "a") == "renewed"
    assert m.view().renew_seq[1] == 1
    assert m.renew(1, "restarted-1") == "renewed"
    assert m.takeover(1, 1, "x").startswith("stale")
    assert m.renew(9, "b").startswith("stale: unknown node")


def test_report_count_and_cursor():
    m = machine()
    m.register("t", "r")
    holder = m.view().topic("t").current.leader
    m.takeover(holder, 0, "x")
    assert m.advance_cursor("t", 1, "a1").startswith("stale")  # count unknown yet
    assert m.report_count("t", 1, 7, "c1") == "reported"
    assert m.report_count("t", 1, 8, "c2").startswith("stale")
    assert m.view().topic("t").segment(1).count == 7
    assert m.advance_cursor("t", 1, "a2") == "advanced"
    assert m.advance_cursor("t", 1, "a3").startswith("stale")
    assert m.view().topic("t").cursor == 2
    assert m.advance_cursor("t", 2, "a4").startswith("stale")  # the open segment


def test_a_lost_store_marks_what_its_node_led_lost_and_moves_the_open_segment():
    m = machine()
    m.register("t", "r")
    first = m.view().topic("t").current
    m.rollover("t", first.id, first.epoch, 5, "r1")
    second = m.view().topic("t").current
    m.rollover("t", second.id, second.epoch, 3, "r2")
    t = m.view().topic("t")
    assert [s.leader for s in t.segments] == [first.leader, second.leader, t.current.leader]
    assert m.disk_lost(first.leader, "d1") == "lost 1"
    t = m.view().topic("t")
    assert [s.state for s in t.segments] == [LOST, SEALED, OPEN]
    assert m.advance_cursor("t", 1, "a1") == "advanced"  # readers pass over a lost segment
    leader = t.current.leader
    assert m.disk_lost(leader, "d2") == "lost 1"  # the open one: lost, and the next opens
    t = m.view().topic("t")
    assert [s.state for s in t.segments] == [LOST, SEALED, LOST, OPEN]
    assert t.current.leader != leader and t.current.epoch == t.segments[2].epoch + 1
    assert state_json(t)["lost_segments"] == [1, 3]
    assert m.disk_lost(leader, "d3") == "lost 0"
    assert machine(compat=True).disk_lost(1, "d").startswith("stale")


def test_views_are_snapshots():
    m = machine()
    m.register("t", "r")
    before = m.view()
    seg = before.topic("t").current
    m.rollover("t", seg.id, seg.epoch, 1, "r2")
    assert len(before.topic("t").segments) == 1
    assert len(m.view().topic("t").segments) == 2


def test_compat_rollover_is_unconditional():
    m = machine(compat=True)
    m.register("t", "r")
    seg = m.view().topic("t").current
    m.rollover("t", seg.id, seg.epoch, 10, "r1")
    # A duplicate proposal for segment 1 seals segment 2 (Walrus 0.3's anomaly).
    assert m.rollover("t", seg.id, seg.epoch, 10, "r2").startswith("rolled")
    t = m.view().topic("t")
    assert [s.state for s in t.segments] == [SEALED, SEALED, OPEN]
    assert m.takeover(seg.leader, 0, "x").startswith("stale")


def test_state_json_has_walrus_keys():
    m = machine()
    m.register("t", "r")
    seg = m.view().topic("t").current
    m.rollover("t", seg.id, seg.epoch, 4, "r1")
    state = state_json(m.view().topic("t"))
    assert state["current_segment"] == 2
    assert state["sealed_segments"] == {"1": 4}
    assert state["last_sealed_entry_offset"] == 4
    assert set(state["segment_leaders"]) == {"1", "2"}
    assert state["leader_node"] == state["segment_leaders"]["2"]


def test_replicas_are_the_leader_and_the_next_live_nodes():
    m = MetaMachine([1, 2, 3, 4], replicas=3)
    m.register("t", "r")
    seg = m.view().topic("t").current
    assert seg.replicas[0] == seg.leader and len(set(seg.replicas)) == 3
    others = [n for n in (1, 2, 3, 4) if n != seg.leader]
    assert (
        m.takeover(others[0], 0, "x") == "taken-over 0"
    )  # not alive any more: left out of the next segments
    m.rollover("t", seg.id, seg.epoch, 4, "r2")
    nxt = m.view().topic("t").current
    assert others[0] not in nxt.replicas and len(nxt.replicas) == 3


def test_a_lost_copy_of_a_replicated_segment_is_marked_and_repaired():
    m = MetaMachine([1, 2, 3], replicas=3)
    m.register("t", "r")
    first = m.view().topic("t").current
    m.rollover("t", first.id, first.epoch, 5, "r1")
    second = m.view().topic("t").current
    follower = second.replicas[1]
    assert m.disk_lost(follower, "d0") == "lost 0"
    t = m.view().topic("t")
    assert t.current.id == 2 and t.current.state == OPEN  # goes on without that copy
    assert t.current.lost == {follower}
    node = second.leader
    assert m.disk_lost(node, "d1") == "lost 0"  # the other copies hold everything
    t = m.view().topic("t")
    assert t.segment(1).state == SEALED and t.segment(1).lost == {node, follower}
    assert t.segment(2).state == PENDING and t.segment(2).lost == {node, follower}
    assert t.current.state == OPEN and t.current.id == 3
    assert m.repaired("t", 2, node, "p1").startswith("stale")  # sealed from replicas first
    assert m.repaired("t", 1, node, "p2") == "repaired"
    assert m.view().topic("t").segment(1).lost == {follower}


def test_take_moves_the_read_position_only_from_where_it_was():
    m = MetaMachine([1, 2, 3], replicas=3)
    m.register("t", "r")
    assert m.take("t", 1, 0, 3, "k1") == "took"
    assert m.take("t", 1, 0, 3, "k2").startswith("stale")  # another holder saw 0 too
    assert m.take("t", 2, 3, 1, "k3").startswith("stale")  # not the cursor's segment
    assert m.take("t", 1, 3, 2, "k4") == "took"
    assert state_json(m.view().topic("t"))["cursor_position"] == 5
    seg = m.view().topic("t").current
    m.rollover("t", seg.id, seg.epoch, 5, "r1")
    assert m.advance_cursor("t", 1, "a1") == "advanced"
    assert m.view().topic("t").position == 0
