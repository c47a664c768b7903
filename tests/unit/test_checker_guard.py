"""A checker that raises says unknown, keeps its traceback, and the others still decide."""

import json
from itertools import count

import pytest

from harness import cli
from harness.checker import queue, suite
from harness.checker.result import result_of
from harness.history import Header, Recorder


def _history(path, lose_a_write: bool) -> None:
    ticks = count(0, 1_000_000)
    with open(path, "w") as out:
        rec = Recorder(out, lambda: next(ticks), Header("walrus-py", black_box=True))
        for value in ("a", "b"):
            rec.record(0, "invoke", "put", "t", value)
            rec.record(0, "ok", "put", "t", value)
        for value in ("a",) if lose_a_write else ("a", "b"):
            rec.record(1, "invoke", "get", "t")
            rec.record(1, "ok", "get", "t", value)
        rec.record(1, "invoke", "get", "t")
        rec.record(1, "ok", "get", "t", None)


def _broken(*_):
    raise ZeroDivisionError("planted")


@pytest.fixture
def queue_checker_raises(monkeypatch):
    monkeypatch.setattr(queue, "check", _broken)


def test_a_raising_checker_is_unknown_and_the_others_still_decide(tmp_path, queue_checker_raises):
    _history(tmp_path / "h.jsonl", lose_a_write=False)
    results = suite.check_run(suite.Evidence.read(tmp_path / "h.jsonl"))
    assert result_of(results, "queue")["valid"] == "unknown"
    assert "ZeroDivisionError: planted" in result_of(results, "queue")["details"]["error"]
    assert "_broken" in result_of(results, "queue")["details"]["traceback"]
    assert result_of(results, "totals")["valid"] is True
    assert results["valid"] == "unknown"


def test_check_exits_2_when_a_checker_raised_and_1_when_another_found_a_violation(
    tmp_path, capsys, queue_checker_raises
):
    _history(tmp_path / "ok.jsonl", lose_a_write=False)
    _history(tmp_path / "lost.jsonl", lose_a_write=True)
    out = tmp_path / "results.json"
    assert cli.main(["check", str(tmp_path / "ok.jsonl"), "--out", str(out)]) == 2
    assert result_of(json.loads(out.read_text()), "queue")["valid"] == "unknown"
    assert "the queue checker failed" in capsys.readouterr().out
    assert cli.main(["check", str(tmp_path / "lost.jsonl"), "--out", str(out)]) == 1
    saved = json.loads(out.read_text())
    assert (
        result_of(saved, "totals")["valid"] is False
        and result_of(saved, "queue")["valid"] == "unknown"
    )


def test_without_the_planted_fault_the_same_histories_decide(tmp_path):
    _history(tmp_path / "ok.jsonl", lose_a_write=False)
    _history(tmp_path / "lost.jsonl", lose_a_write=True)
    assert cli.main(["check", str(tmp_path / "ok.jsonl")]) == 0
    assert cli.main(["check", str(tmp_path / "lost.jsonl")]) == 1
