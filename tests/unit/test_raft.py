"""The metadata's Raft (``walrus.raft``) against pysyncobj 0.3.17 as shipped, on a real 3-node
group over loopback TCP, stepped by hand (``tests/raft_group.py``).

The loss: a follower far behind a new leader is sent its missing entries twice — the leader
pipelines two AppendEntries, the follower refuses both, and each refusal sends the leader back
to the follower's old end — and the second sending, cut into batches, makes pysyncobj's follower
delete entries it had acknowledged and applied. The leader, whose match index for it only grows,
commits and answers an entry on that follower's word; then it dies before its next batch leaves.
The follower and a third node that never saw the entry elect a leader without it.
"""

import logging
import pickle

import pytest
from pysyncobj import SyncObj

from tests.raft_group import SUCCESS, Group
from walrus.raft import Raft

OLD = 6
"""Entries committed while the follower ``b`` is down."""

BATCH_BYTES = 40
"""At most two of the test's commands per AppendEntries: as pysyncobj's 64 KiB batches are for a
follower 64 KiB behind."""


def _elect_any(group: Group, candidates: str, among: str) -> str:
    for _ in range(4):
        for name in candidates:
            if group.elect(name, among):
                return name
    raise AssertionError(f"none of {candidates} was elected")


def _values(group: Group, name: str) -> dict[int, str]:
    """The value each ``put`` entry of ``name``'s log carries, by index."""
    return {
        index: pickle.loads(command[1:])[1][0]
        for index, _, command in group.log(name)
        if command[:1] == b"\x00"
    }


def _lose_the_window(base: type, root) -> dict:
    """Drive the group through the window; what the nodes ended up with."""
    g = Group(base, root, batch_bytes=BATCH_BYTES)
    try:
        # c leads; b goes down; c and a commit OLD entries without it
        assert g.elect("c", "abc")
        g.pump("abc")
        g.kill("b")
        old = [g.propose("c", f"old-{i}") for i in range(OLD)]
        g.pump("ac", until=lambda: all(old) and len(g["a"].applied) == OLD)
        assert len(g["a"].applied) == OLD, "a did not apply the old entries"

        # c dies; b comes back behind; a is elected by b's vote
        g.kill("c")
        g.start("b")
        g.wait(lambda: g.connected("a", "b") and g.connected("b", "a"))
        g["a"]._SyncObj__raftElectionDeadline = 0
        g.wait(lambda: g.held("b", "a"))
        g.deliver("b", "a")  # the vote request
        g.wait(lambda: g.held("a", "b"))
        g.deliver("a", "b")  # the vote: a leads, and sends b two AppendEntries at once
        assert g["a"]._isLeader()
        y = g.propose("a", "Y")  # and a third, with Y
        g.wait(lambda: len(g.held("b", "a")) >= 3)
        g.deliver("b", "a")
        g.wait(lambda: len(g.held("a", "b")) >= 3)  # b refused all three
        y_index = next(i for i, v in _values(g, "a").items() if v == "Y")

        # a obeys the first refusal and sends b all it lacks, in batches; b takes it all
        g.deliver("a", "b", 1)
        g["a"]._SyncObj__sendAppendEntries()
        end = g.log("a")[-1][0]
        while g.log("b")[-1][0] < end:
            g.tick(1)
            g.deliver("b", "a")
        g.tick(20)  # b's acknowledgements reach a, held

        # the two stale refusals send a back to b's old end; its next send starts from there
        g.deliver("a", "b", 2)
        g.propose("a", "X")
        g.wait(lambda: len(g.held("b", "a")) >= 2)
        # b's acknowledgements of the first sending: a commits Y on them and answers it
        g.deliver("a", "b")
        g.wait(lambda: y == [SUCCESS])
        # b gets the first batch of the second sending; a dies before the rest leaves it
        g.deliver("b", "a", 1)
        g.kill("a")
        g.drop("b", "a")
        b_end = g.log("b")[-1][0]

        # c comes back; b and c elect a leader, which takes one more command
        g.start("c")
        g.wait(lambda: g.connected("b", "c") and g.connected("c", "b"))
        leader = _elect_any(g, "cb", "bc")
        z = g.propose(leader, "Z")
        g.pump("bc", until=lambda: z == [SUCCESS] and g.last_applied("b") == g.last_applied("c"))
        assert z == [SUCCESS]
        return {
            "y_index": y_index,
            "b_end": b_end,
            "leader": leader,
            "leader_at_y": _values(g, leader).get(y_index),
            "applied_at_y": {n: g[n].applied.get(y_index) for n in "bc"},
            "b_truncated": g["b"].truncated,
        }
    finally:
        g.stop()


def test_pysyncobj_as_shipped_loses_a_committed_and_answered_entry(tmp_path, caplog):
    caplog.set_level(logging.CRITICAL, logger="pysyncobj.syncobj")
    seen = _lose_the_window(SyncObj, tmp_path)
    assert any("truncating already-applied" in r.message for r in caplog.records)
    assert seen["b_end"] < seen["y_index"]  # b dropped Y, which it had acknowledged
    assert seen["leader"] == "c" and seen["leader_at_y"] != "Y"  # Y, answered, is gone
    assert seen["applied_at_y"]["c"] == "Z"  # and its index now holds another command


def test_with_the_correction_the_answered_entry_survives_and_nothing_applied_is_cut(tmp_path):
    seen = _lose_the_window(Raft, tmp_path)
    assert seen["b_end"] >= seen["y_index"]  # the stale batch cut nothing
    assert seen["leader"] == "b" and seen["leader_at_y"] == "Y"  # only b, holding Y, can lead
    assert set(seen["applied_at_y"].values()) == {"Y"}
    assert all(start > applied for start, applied in seen["b_truncated"])


@pytest.fixture
def group(tmp_path):
    g = Group(Raft, tmp_path)
    yield g
    g.stop()


def test_a_tail_no_leader_vouched_for_is_kept_but_not_committed(group):
    # b holds an entry c never sent; a leader's AppendEntries that stops before it, with a
    # commit index beyond it, must neither delete it nor let b apply it
    assert group.elect("a", "abc")
    done = [group.propose("a", f"v{i}") for i in range(3)]
    group.pump("abc", until=lambda: all(done) and group.last_applied("b") == 5)
    b = group["b"]
    last, term = group.log("b")[-1][:2]
    stray = (b"\x00" + pickle.dumps((0, ("stray",))), last + 1, term)
    b._SyncObj__raftLog.add(*stray)
    before = group.last_applied("b")
    b._SyncObj__onMessageReceived(
        group["a"]._SyncObj__selfNode,
        {
            "type": "append_entries",
            "term": term,
            "commit_index": last + 1,
            "entries": [],
            "prevLogIdx": last - 1,
            "prevLogTerm": term,
        },
    )
    group.tick()
    assert group.log("b")[-1][0] == last + 1  # kept: nothing conflicts with it
    assert group.last_applied("b") == before == last  # not applied: nobody vouched for it
    assert "stray" not in b.applied.values()


def test_a_conflict_with_a_committed_entry_is_refused_not_cut(group, caplog):
    assert group.elect("a", "abc")
    done = [group.propose("a", f"v{i}") for i in range(3)]
    group.pump("abc", until=lambda: all(done) and group.last_applied("b") == 5)
    b = group["b"]
    refused = []
    b.on_refuse = lambda *args: refused.append(args)
    log_before = group.log("b")
    last, term = log_before[-1][:2]
    b._SyncObj__onMessageReceived(
        group["a"]._SyncObj__selfNode,
        {
            "type": "append_entries",
            "term": term + 1,
            "commit_index": last,
            "entries": [(b"\x01", last, term + 1)],
            "prevLogIdx": last - 1,
            "prevLogTerm": log_before[-2][1],
        },
    )
    assert group.log("b") == log_before
    assert refused == [(last, term, term + 1, last, last)]
    assert b.truncated == []
    assert any("refused an AppendEntries" in r.message for r in caplog.records)


def test_every_apply_is_reported_in_order_with_its_term(group):
    applied = []
    group["b"].on_apply = lambda index, term, command: applied.append((index, term))
    assert group.elect("a", "abc")
    done = [group.propose("a", f"v{i}") for i in range(3)]
    group.pump("abc", until=lambda: all(done) and group.last_applied("b") == 5)
    assert applied == [(i, t) for i, t, _ in group.log("b")[1:]]
    assert [group["b"].command_name(c) for _, _, c in group.log("b")[1:]] == ["noop"] + ["put"] * 3
