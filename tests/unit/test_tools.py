"""Host tools: found or named with the fix, and every failure of a command is one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import report_error
from harness.tools import TOOLS, Tool, ToolMissing, missing_reason, require


def test_a_missing_tool_says_what_needs_it_and_how_to_get_it(monkeypatch):
    ghost = Tool("ghost-tool", "ghost-pkg", "haunts the tests", ("/nonexistent/ghost",))
    monkeypatch.setitem(TOOLS, "ghost-tool", ghost)
    with pytest.raises(ToolMissing) as caught:
        require("ghost-tool")
    text = str(caught.value)
    assert (
        "ghost-tool" in text and "haunts the tests" in text and "apt-get install ghost-pkg" in text
    )
    assert "\n" not in text
    assert missing_reason("ghost-tool") == text


def test_a_present_tool_is_found(monkeypatch, tmp_path):
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"")
    monkeypatch.setitem(TOOLS, "here", Tool("here", "pkg", "is here", (str(lib),)))
    assert require("here") == str(lib)
    assert missing_reason("here") is None


def test_errors_inside_nurseries_are_one_line(capsys):
    group = ExceptionGroup(
        "nursery", [ExceptionGroup("inner", [ToolMissing("mmdebstrap is gone")])]
    )
    assert report_error(group) == 1
    err = capsys.readouterr().err
    assert err.strip() == "walrus-harness: mmdebstrap is gone"


def test_a_bug_is_one_line_with_the_traceback_in_a_file(capsys):
    try:
        raise KeyError("oops")
    except KeyError as exc:
        assert report_error(exc) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "internal error KeyError" in err
    path = err.rsplit("traceback in ", 1)[1].rstrip(")")
    text = Path(path).read_text()
    Path(path).unlink()
    assert "Traceback" in text


def test_no_engine_is_one_line_and_status_1(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    for args in (
        ["docker", "build"],
        ["test", "--backend", "docker", "--time-limit", "1", "--store", str(tmp_path / "runs")],
        ["gate", "--backend", "docker", "--store", str(tmp_path / "runs")],
        ["campaign", "--backend", "docker", "--seeds", "1", "--store", str(tmp_path / "runs")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.count("\n") == 1 and "no Docker engine answers" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists(), "nothing is made before the engine answers"
