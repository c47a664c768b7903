"""The columnar reader reads every history exactly as the format's reader of record
(``history.load``) does: the same operations, the same faults, the same errors."""

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import history
from harness.history import HistoryError, columns

VALUES = st.one_of(
    st.text(min_size=0, max_size=6),
    st.sampled_from(['q"uote', "back\\slash", "tab\tnl\n", "é∂", "5"]),
    st.integers(-5, 5),
)


@st.composite
def histories(draw) -> list[dict]:
    """Valid event sequences: processes invoking and completing puts and gets on a few topics,
    some never completing, some failing, a few faults, formatted in varied ways."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(0, 40))
    open_: dict[int, dict] = {}
    retired: set[int] = set()
    events: list[dict] = []
    t = draw(st.sampled_from([0, 1000]))
    for _ in range(n):
        t += rng.randint(0, 3) * (1 if rng.random() < 0.8 else 0.5)
        if rng.random() < 0.08:
            name = rng.choice(["partition", "kill"])
            value = rng.choice([None, {"grudge": {"1": [2]}}, [1, 2], "x"])
            events.append(
                {
                    "process": "nemesis",
                    "type": "info",
                    "f": rng.choice(["start-", "stop-"]) + name,
                    "value": value,
                    "time": t,
                }
            )
            continue
        p = rng.randint(0, 5)
        if p in retired:
            continue
        if p in open_:
            inv = open_.pop(p)
            kind = rng.choice(["ok", "ok", "ok", "fail", "info"])
            e = {"process": p, "type": kind, "f": inv["f"], "topic": inv["topic"], "time": t}
            if inv["f"] == "put":
                e["value"] = inv["value"]
                if kind == "ok" and rng.random() < 0.7:
                    e["pos"], e["node"], e["epoch"] = (
                        [rng.randint(0, 3), rng.randint(0, 9)],
                        rng.randint(1, 3),
                        rng.randint(1, 9),
                    )
            else:
                e["value"] = draw(VALUES) if kind == "ok" and rng.random() < 0.7 else None
                if rng.random() < 0.5:
                    e["node"] = rng.choice([None, 1, 2])
            if kind != "ok" and rng.random() < 0.5:
                e["error"] = rng.choice(["timeout", 'a "quoted" error'])
            if kind == "info":
                retired.add(p)
            events.append(e)
        else:
            f = rng.choice(["put", "get"])
            e = {
                "process": p,
                "type": "invoke",
                "f": f,
                "topic": rng.choice(["t0", "t1", "tö"]),
                "time": t,
            }
            e["value"] = draw(VALUES) if f == "put" else None
            if f == "get" and rng.random() < 0.5:
                e["tag"] = rng.choice([f"{p}.{rng.randint(0, 99)}", "", None])
            if rng.random() < 0.2:
                e["extra"] = rng.choice([{"nested": [1, {"a": "}"}]}, "s,}", 3.5, True, None])
            open_[p] = e
            events.append(e)
    for i, e in enumerate(events):
        e["index"] = i
    return events


def write(path, events: list[dict], rng: random.Random, header: bool) -> None:
    lines = []
    if header:
        lines.append(json.dumps({"history": 1, "system": "x", "black_box": False}))
    for e in events:
        keys = list(e)
        rng.shuffle(keys)
        spaced = rng.random() < 0.3
        lines.append(
            json.dumps(
                {k: e[k] for k in keys},
                separators=(", ", ": ") if spaced else (",", ":"),
                ensure_ascii=rng.random() < 0.5,
            )
        )
        if rng.random() < 0.05:
            lines.append("   ")
    path.write_text("\n".join(lines) + ("\n" if rng.random() < 0.8 else ""))


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(0, 2**32), st.booleans())
def test_columns_read_what_the_reader_of_record_reads(tmp_path_factory, events, seed, header):
    path = tmp_path_factory.mktemp("h") / "history.jsonl"
    write(path, events, random.Random(seed), header)
    assert_read_alike(path)


def assert_read_alike(path) -> None:
    """The columns of ``path`` hold what ``history.load`` reads from it."""
    nemesis, ops = history.load(path)
    loaded = columns.load(path)
    got_nemesis, c = loaded.nemesis, loaded.ops
    assert [e.to_json() for e in got_nemesis] == [e.to_json() for e in nemesis]
    assert len(c) == len(ops)
    assert c.rows_as_ops(range(len(c))) == ops
    for r, o in enumerate(ops):
        assert (c.inv[r], c.ret[r], c.invoke_index[r]) == (o.inv, o.ret, o.invoke_index)
        assert columns.TYPE_NAMES[c.type[r]] == o.type and columns.F_NAMES[c.f[r]] == o.f
        assert c.topics[c.topic[r]] == o.topic
        assert bool(c.has_value[r]) == (o.value is not None)
        assert (c.seg[r], c.off[r]) == (o.pos if o.pos else (columns.NO, columns.NO))
        assert c.node[r] == (columns.NO if o.node is None else o.node)
        assert c.epoch[r] == (columns.NO if o.epoch is None else o.epoch)
        assert bool(c.has_tag[r]) == (o.tag is not None)
    # equal values, equal hashes; different values, different hashes
    hashes: dict[str, set[int]] = {}
    for r, o in enumerate(ops):
        if o.value is not None:
            hashes.setdefault(json.dumps(o.value), set()).add(int(c.value[r]))
    assert all(len(h) == 1 for h in hashes.values())
    assert len(set().union(*hashes.values())) == len(hashes)


INVOKE = '{"index":0,"time":1,"process":0,"type":"invoke","f":"put","topic":"t"'
OK = '{"index":1,"time":2,"process":0,"type":"ok","f":"put","topic":"t"'


@pytest.mark.parametrize(
    "text",
    [
        INVOKE + ',"value":"a","value":null}\n',
        INVOKE + ',"value":null,"value":"a"}\n',
        INVOKE + ',"value":"a"}\n' + OK + ',"pos":[1,2],"pos":null,"node":3,"node":null}\n',
        INVOKE + ',"value":"a"}\n' + OK + ',"epoch":4,"epoch":null,"pos":[1,2]}\n',
        INVOKE + ',"value":"a","tag":"x","tag":null}\n',
        INVOKE + ',"value":"a", "extra" : [ {"}": ","} ] }\n',
    ],
)
def test_repeated_keys_and_odd_spacing_read_as_the_reader_of_record_reads(tmp_path, text):
    path = tmp_path / "h.jsonl"
    path.write_text(text)
    assert_read_alike(path)


BAD = [
    (
        '{"index":0,"time":1,"process":0,"type":"invoke","f":"put","topic":"t","value":"a"}\n'
        "not json\n",
        "line 2",
    ),
    ("[1,2]\n", "line 1"),
    # (a first line the kernel reads, as the header is read apart)
    (INVOKE + ',"value":"a"}\n' + OK + ',"value":"a",}\n', "line 2: not JSON"),
    (INVOKE + ',"value":"a"}\n' + OK + ',"value":nope}\n', "line 2: not JSON"),
    (INVOKE + ',"value":"a"}\n' + OK + ',"node":nul,"pos":[1,2]}\n', "line 2: not JSON"),
    (INVOKE + ',"value":"a"}\n' + OK + ',"pos":null ,"pos":nill}\n', "line 2: not JSON"),
    (INVOKE + ',"value":"a"}\n' + OK + ',"epoch":01}\n', "line 2: not JSON"),
    (INVOKE + ',"value":"a"}\n' + OK + ',"epoch":-01}\n', "line 2: not JSON"),
    (
        INVOKE + ',"value":"a"}\n' + INVOKE.replace('"process":0', '"process":1') + ',"tag":nul}\n',
        "line 2: not JSON",
    ),
    ('{"index":0,"time":1,"process":0,"type":"begin","f":"put","topic":"t"}\n', "type"),
    ('{"index":0,"time":1,"process":0,"type":"invoke","f":"put"}\n', "topic"),
    ('{"index":0,"time":1,"process":0.5,"type":"invoke","f":"put","topic":"t"}\n', "process"),
    ('{"time":1,"process":0,"type":"invoke","f":"put","topic":"t"}\n', "index"),
    ('{"index":0,"time":1,"process":0,"type":"ok","f":"put","topic":"t"}\n', "without"),
    (
        '{"index":0,"time":1,"process":0,"type":"invoke","f":"put","topic":"t"}\n'
        '{"index":1,"time":2,"process":0,"type":"invoke","f":"put","topic":"t"}\n',
        "twice",
    ),
    (
        '{"index":0,"time":1,"process":0,"type":"invoke","f":"get","topic":"t"}\n'
        '{"index":1,"time":2,"process":0,"type":"info","f":"get","topic":"t"}\n'
        '{"index":2,"time":3,"process":0,"type":"invoke","f":"get","topic":"t"}\n',
        "after an info",
    ),
    ('{"index":0,"time":1,"process":0,"type":"invoke","f":"cas","topic":"t"}\n', "f must"),
    (
        '{"index":0,"time":1,"process":0,"type":"invoke","f":"put","topic":"t","value":"a"}\n'
        '{"index":1,"time":2,"process":0,"type":"ok","f":"get","topic":"t","value":"b"}\n',
        "a get completes process 0's put",
    ),
    (
        '{"index":0,"time":1,"process":0,"type":"invoke","f":"put","topic":"t"}\n{"history":1}\n',
        "header",
    ),
]


@pytest.mark.parametrize(("text", "says"), BAD)
def test_a_broken_history_gets_the_reader_of_records_error(tmp_path, text, says):
    path = tmp_path / "h.jsonl"
    path.write_text(text)
    with pytest.raises(HistoryError) as exact:
        history.load(path)
    with pytest.raises(HistoryError) as ours:
        columns.load(path)
    assert str(ours.value) == str(exact.value)
    assert says in str(ours.value)


@pytest.mark.parametrize("escaped", [False, True])
def test_a_completions_topic_is_not_read(tmp_path, escaped):
    path = tmp_path / "h.jsonl"
    other = '"u\\u0075"' if escaped else '"uu"'
    path.write_text(INVOKE + ',"value":"a"}\n' + OK.replace('"t"', other) + "}\n")
    assert_read_alike(path)
    assert columns.load(path).ops.topics == ("t",)


def test_an_empty_history_has_no_operations(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text("")
    loaded = columns.load(path)
    nemesis, c = loaded.nemesis, loaded.ops
    assert nemesis == [] and len(c) == 0 and c.topics == ()


def test_a_large_generated_history_matches_row_for_row(tmp_path):
    from harness.bench.checker import generate

    path = tmp_path / "h.jsonl"
    generate(path, 20_000)
    _, ops = history.load(path)
    c = columns.load(path).ops
    assert len(c) == len(ops)
    rows = np.random.default_rng(1).choice(len(ops), 500, replace=False)
    assert c.rows_as_ops(rows) == [ops[r] for r in rows]
    assert np.array_equal(c.inv, [o.inv for o in ops])
    assert np.array_equal(c.ret, [o.ret for o in ops])


def test_tables_grow_past_their_first_size(tmp_path):
    """Thousands of processes and a hundred topics (both tables grow, more than once), with
    lines only Python reads among them."""
    events = []
    for p in range(5000):
        value = f"v{p}" if p % 7 else f"v\t{p}"
        topic = f"topic-{p % 100}"
        events.append({"process": p, "type": "invoke", "f": "put", "topic": topic, "value": value})
    for p in range(5000):
        kind = "info" if p % 11 == 0 else "ok"
        events.append({"process": p, "type": kind, "f": "put", "topic": "x", "value": f"v{p}"})
    for i, e in enumerate(events):
        e["index"], e["time"] = i, i * 10 + (0.5 if i % 13 == 0 else 0)
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert_read_alike(path)
    assert len(columns.load(path).ops.topics) == 100
