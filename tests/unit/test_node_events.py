"""The typed reader of the nodes' event logs: the schema enforced, a torn last line skipped."""

import json

import pytest

from harness.history.node_events import REQUIRED, EventLogError, parse, read, read_nodes
from walrus.clock import NodeClock
from walrus.events import EventLog

COMMON = {"node": 1, "true_ns": 5, "node_time": 0.1}


def test_every_kind_parses_with_its_fields():
    samples = {
        "start": {"compat": True},
        "stop": {},
        "lease-acquire": {"sent": 1.0, "expiry": 3.0},
        "lease-renew": {"sent": 2.0, "expiry": 4.0},
        "lease-loss": {"expiry": 4.0},
        "append": {"topic": "t", "segment": 1, "offset": 0, "count": 2, "epoch": 1},
        "seal": {"topic": "t", "segment": 1, "count": 2},
        "takeover": {"silent": 2, "renew_seq": 7, "result": "taken-over 1"},
        "disk-lost": {"result": "lost 2"},
        "cursor": {
            "topic": "t",
            "segment": 1,
            "offset": 2,
            "first": 0,
            "tags": ["a", ""],
            "values": ["x", None],
        },
        "meta-apply": {"index": 4, "term": 2, "hash": "ab", "cmd": "renew"},
        "meta-ack": {"index": 4, "term": 2, "hash": "ab", "cmd": "renew"},
        "meta-truncate": {
            "start": 5,
            "end": 6,
            "applied": 4,
            "commit": 4,
            "dropped": [(5, 2, "cd"), (6, 2, "ef")],
            "leader": 3,
        },
        "meta-refuse": {"index": 3, "term": 1, "sent_term": 2, "applied": 4, "commit": 4},
        "meta-snapshot": {"index": 9, "term": 2, "installed": True},
    }
    assert set(samples) == set(REQUIRED)
    for kind, fields in samples.items():
        e = parse({"kind": kind, **COMMON, **fields, "node_wall": 9.0})
        assert e.kind == kind and e.node == 1 and e.node_wall == 9.0
        for name, value in fields.items():
            got = getattr(e, name)
            assert (list(got) if isinstance(got, tuple) else got) == value


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"kind": "fly", **COMMON}, "unknown event kind 'fly'"),
        ({"kind": "append", **COMMON, "topic": "t"}, "needs segment, offset, count, epoch"),
        ({"kind": "start", "node": 1}, "needs true_ns, node_time"),
    ],
)
def test_a_line_off_the_schema_is_refused_by_place(raw, says):
    with pytest.raises(EventLogError, match=says):
        parse(raw, "nodes/1/events.jsonl:3")


def test_a_torn_last_line_is_skipped_and_a_bad_one_named(tmp_path):
    log = tmp_path / "1" / "events.jsonl"
    log.parent.mkdir()
    good = json.dumps({"kind": "start", **COMMON}) + "\n"
    log.write_text(good + good + '{"kind": "st')
    assert [e.kind for e in read(log)] == ["start", "start"]
    assert len(read_nodes(tmp_path)) == 2
    log.write_text(good + "not json\n" + good)
    with pytest.raises(EventLogError, match=r"events.jsonl:2: not JSON"):
        read(log)


@pytest.mark.parametrize("cut", ['{"kind": "st', '{"kind": "start", "node": 1, "true'])
def test_a_restart_trims_the_line_a_crash_cut_before_it_appends(tmp_path, cut):
    log = tmp_path / "1" / "events.jsonl"
    log.parent.mkdir()
    good = json.dumps({"kind": "start", **COMMON}) + "\n"
    log.write_text(good + good + cut)
    events = EventLog(log, 1, NodeClock())
    assert events.trimmed == len(cut)
    events.record("start", compat=False)
    events.close()
    assert [e.node_time for e in read(log)][:2] == [0.1, 0.1]
    assert len(read(log)) == 3
    log.write_text(cut)  # cut in its first line: nothing before it survives
    events = EventLog(log, 1, NodeClock())
    assert events.trimmed == len(cut)
    events.record("stop")
    events.close()
    assert [e.kind for e in read(log)] == ["stop"]
    events = EventLog(log, 1, NodeClock())
    events.close()
    assert events.trimmed == 0
