"""The history format: recording, reading back, pairing, and format errors named by line."""

import io
import json

import pytest

from harness import history
from harness.history import HistoryError, Recorder
from harness.history.delivery import EXACTLY_ONCE_IN_ORDER, Delivery


def write(tmp_path, lines) -> object:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_recorder_writes_the_documented_format():
    out = io.StringIO()
    clock = iter([10, 20, 30, 40])
    r = Recorder(out, lambda: next(clock))
    r.record(3, "invoke", "put", "t1", "3-17")
    r.record(3, "ok", "put", "t1", "3-17", pos=[2, 40], node=1, epoch=5)
    r.record("nemesis", "info", "start-partition", value={"1": [2]})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {
        "index": 0,
        "time": 10,
        "process": 3,
        "type": "invoke",
        "f": "put",
        "topic": "t1",
        "value": "3-17",
    }
    assert lines[1]["pos"] == [2, 40] and lines[1]["node"] == 1 and lines[1]["epoch"] == 5
    assert lines[2] == {
        "index": 2,
        "time": 30,
        "process": "nemesis",
        "type": "info",
        "f": "start-partition",
        "value": {"1": [2]},
    }


def test_load_pairs_operations(tmp_path):
    path = write(
        tmp_path,
        [
            {
                "index": 0,
                "time": 1,
                "process": 1,
                "type": "invoke",
                "f": "put",
                "topic": "t",
                "value": "a",
            },
            {
                "index": 1,
                "time": 2,
                "process": 2,
                "type": "invoke",
                "f": "get",
                "topic": "t",
                "value": None,
            },
            {
                "index": 2,
                "time": 3,
                "process": 1,
                "type": "ok",
                "f": "put",
                "topic": "t",
                "value": "a",
                "pos": [1, 0],
                "node": 2,
                "epoch": 1,
            },
            {
                "index": 3,
                "time": 4,
                "process": "nemesis",
                "type": "info",
                "f": "start-kill",
                "value": {"nodes": [1]},
            },
            {
                "index": 4,
                "time": 5,
                "process": 2,
                "type": "info",
                "f": "get",
                "topic": "t",
                "value": None,
            },
            {
                "index": 5,
                "time": 6,
                "process": 3,
                "type": "invoke",
                "f": "get",
                "topic": "t",
                "value": None,
            },
            {
                "index": 6,
                "time": 7,
                "process": 3,
                "type": "ok",
                "f": "get",
                "topic": "t",
                "value": "a",
            },
        ],
    )
    nemesis, ops = history.load(path)
    assert [o.type for o in ops] == ["ok", "info", "ok"]
    assert ops[0].pos == (1, 0) and ops[0].node == 2 and ops[0].ret == 3
    assert ops[1].ret == history.INF
    assert ops[2].value == "a"
    assert [e.f for e in nemesis] == ["start-kill"]
    assert ops == history.pair(history.read_events(path))
    assert history.nemesis_windows(nemesis)[0][:3] == ("kill", 4, history.INF)


def test_a_fault_window_starts_when_the_fault_began_acting():
    Event = history.Event
    events = [
        Event(0, 9, "nemesis", "info", "start-partition", None, {"grudge": {}, "began": 5}),
        Event(1, 20, "nemesis", "info", "stop-partition", None, None),
        Event(2, 30, "nemesis", "info", "start-kill", None, ["n1"]),
    ]
    windows = history.nemesis_windows(events)
    assert [w[:3] for w in windows] == [("partition", 5, 20), ("kill", 30, history.INF)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [
                {
                    "index": 0,
                    "time": 1,
                    "process": 1,
                    "type": "ok",
                    "f": "put",
                    "topic": "t",
                    "value": "a",
                }
            ],
            "ok without an invocation",
        ),
        (
            [
                {
                    "index": 0,
                    "time": 1,
                    "process": 1,
                    "type": "invoke",
                    "f": "put",
                    "topic": "t",
                    "value": "a",
                },
                {
                    "index": 1,
                    "time": 1,
                    "process": 1,
                    "type": "invoke",
                    "f": "put",
                    "topic": "t",
                    "value": "b",
                },
            ],
            "invoked twice",
        ),
        (
            [
                {"index": 0, "time": 1, "process": 1, "type": "invoke", "f": "get", "topic": "t"},
                {"index": 1, "time": 2, "process": 1, "type": "info", "f": "get", "topic": "t"},
                {"index": 2, "time": 3, "process": 1, "type": "invoke", "f": "get", "topic": "t"},
            ],
            "invoked after an info",
        ),
        (
            [{"index": 0, "time": 1, "process": 1, "type": "done", "f": "get", "topic": "t"}],
            "type must be",
        ),
        (
            [{"index": 0, "time": 1, "process": 1, "type": "invoke", "f": "cas", "topic": "t"}],
            "f must be put or get",
        ),
        (
            [{"index": 0, "time": 1, "process": "x", "type": "invoke", "f": "get", "topic": "t"}],
            "process must be",
        ),
        ([{"index": 0, "process": 1, "type": "invoke", "f": "get", "topic": "t"}], "time"),
        (
            [
                {"index": 0, "time": 1, "process": 1, "type": "invoke", "f": "get", "topic": "t"},
                {"index": 1, "time": 2, "process": 1, "type": "ok", "f": "put", "topic": "t"},
            ],
            "line 2: a put completes process 1's get",
        ),
    ],
)
def test_format_errors_name_the_line(tmp_path, lines, message):
    path = write(tmp_path, lines)
    with pytest.raises(HistoryError, match=message):
        history.load(path)


def test_garbage_lines(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text("not json\n")
    with pytest.raises(HistoryError, match="line 1: not JSON"):
        history.load(path)


def test_a_header_says_what_made_the_history_and_is_skipped_by_readers(tmp_path):
    out = io.StringIO()
    r = Recorder(out, lambda: 5, history.Header("walrus-rs", True))
    r.record(1, "invoke", "put", "t", "a")
    r.record(1, "ok", "put", "t", "a")
    path = tmp_path / "history.jsonl"
    path.write_text(out.getvalue())
    assert json.loads(out.getvalue().splitlines()[0]) == {
        "history": 1,
        "system": "walrus-rs",
        "black_box": True,
    }
    assert history.read_header(path) == history.Header("walrus-rs", True)
    _, ops = history.load(path)
    assert [(o.f, o.type) for o in ops] == [("put", "ok")]
    assert [e.index for e in history.read_events(path)] == [0, 1]


def test_a_header_anywhere_but_the_first_line_is_an_error(tmp_path):
    path = write(
        tmp_path,
        [
            {"index": 0, "time": 1, "process": 1, "type": "invoke", "f": "get", "topic": "t"},
            {"history": 1, "system": "x", "black_box": True},
        ],
    )
    with pytest.raises(HistoryError, match="line 2: a header must be the first line"):
        history.load(path)


def test_a_history_without_a_header_has_an_empty_one(tmp_path):
    path = write(tmp_path, [{"index": 0, "time": 1, "process": 1, "type": "invoke", "f": "get"}])
    assert history.read_header(path) == history.Header()


def test_a_header_carries_the_systems_delivery_promise(tmp_path):
    promise = Delivery(False, "none", "a test", redelivery_s=5.0)
    out = io.StringIO()
    Recorder(out, lambda: 5, history.Header("nats", True, promise))
    path = tmp_path / "history.jsonl"
    path.write_text(out.getvalue())
    assert history.read_header(path).promise == promise
    assert history.Header().promise == EXACTLY_ONCE_IN_ORDER


@pytest.mark.parametrize(
    "bad",
    [
        "at least once",
        {"once": "no", "order": "none"},
        {"once": False, "order": "sideways"},
        {"once": False, "order": "none", "redelivery_s": -1},
    ],
)
def test_a_header_with_a_bad_promise_is_an_error_naming_the_line(tmp_path, bad):
    path = write(tmp_path, [{"history": 1, "system": "x", "delivery": bad}])
    with pytest.raises(HistoryError, match=r"line 1: .*(delivery|order)"):
        history.read_header(path)


def test_an_unconfirmed_ack_and_an_info_gets_end_are_read(tmp_path):
    path = write(
        tmp_path,
        [
            {"index": 0, "time": 1, "process": 1, "type": "invoke", "f": "get", "topic": "t"},
            {
                "index": 1,
                "time": 2,
                "process": 1,
                "type": "ok",
                "f": "get",
                "value": "a",
                "ack": "unknown",
            },
            {"index": 2, "time": 3, "process": 2, "type": "invoke", "f": "get", "topic": "t"},
            {"index": 3, "time": 9, "process": 2, "type": "info", "f": "get"},
        ],
    )
    _, ops = history.load(path)
    assert (ops[0].ack, ops[0].end, ops[1].ret, ops[1].end) == ("unknown", 2, history.INF, 9)
