"""Where an exception was raised, as a run that broke off and a failed bench worker report it."""

from pathlib import Path

import pytest

from harness.gate import plan
from harness.raised import raised_at


def test_the_frame_named_is_the_innermost_of_ours_not_a_librarys():
    with pytest.raises(TypeError) as raised:
        plan(Path("/nonexistent"), budget_s="not a number")  # type: ignore[arg-type]
    at = raised_at(raised.value)
    assert at.startswith("plan (harness/gate.py:"), at


def test_a_frame_outside_the_project_is_named_by_its_file_alone():
    with pytest.raises(ZeroDivisionError) as raised:
        eval("1 / 0")
    assert raised_at(raised.value) == "<module> (<string>:1)"
    assert raised_at(ValueError("never raised")) == ""
