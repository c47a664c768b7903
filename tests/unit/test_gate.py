"""The gate's report of a run that broke off: the error's innermost frame in our code."""

import traceback
from pathlib import Path

import pytest

from harness.gate import innermost_frame, plan


def test_a_broken_off_run_is_reported_at_the_frame_of_ours_that_raised():
    with pytest.raises(TypeError) as raised:
        plan(Path("/nonexistent"), budget_s="not a number")  # type: ignore[arg-type]
    text = "".join(traceback.format_exception(raised.value))
    shown = innermost_frame(text).splitlines()
    assert len(shown) == 2
    assert "harness/gate.py" in shown[0] and "budget_s" in shown[1]


def test_a_run_without_a_traceback_says_so():
    assert innermost_frame("") == "      (no traceback)"
