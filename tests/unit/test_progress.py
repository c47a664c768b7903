"""The long commands' progress: plain lines off a terminal, a live line on one that shows the
run in progress, runs done of the total, the verdicts so far and the time left."""

import io
import re

from harness.progress import Runs


def _campaign(runs: Runs) -> None:
    with runs:
        runs.begin("partition seed 1")
        runs.phase("draining every topic through every node")
        runs.done("VALID    partition seed 1", "VALID")
        runs.begin("kill seed 1")
        runs.phase("checking")
        runs.done("INVALID  kill seed 1  lost=2", "INVALID")
        runs.begin("kill seed 2")
        runs.phase("auditing the final state")
        snapshot.append(runs.tally())
        runs.done(verdict="VALID")


snapshot: list[str] = []


def test_off_a_terminal_only_the_finished_runs_lines_are_printed():
    out = io.StringIO()
    _campaign(Runs("campaign", 3, out=out))
    assert out.getvalue().splitlines() == [
        "VALID    partition seed 1",
        "INVALID  kill seed 1  lost=2",
    ]


def test_on_a_terminal_the_live_line_shows_the_run_its_phase_the_count_and_the_verdicts():
    out = io.StringIO()
    runs = Runs("campaign", 3, out=out, live=True, width=160)
    with runs:
        runs.begin("kill seed 2")
        runs.done("INVALID  kill seed 2  lost=2", "INVALID")
        runs.begin("pause seed 1")
        runs.phase("healed; waiting for the cluster to recover")
        assert runs._bar is not None
        runs._bar.refresh()
        shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    assert "INVALID  kill seed 2  lost=2" in shown
    assert "campaign" in shown and "1/3" in shown and "INVALID 1" in shown
    assert "pause seed 1: healed; waiting for the cluster to recover" in shown
    assert re.search(r"~\d+:\d\d left", shown)


def test_the_verdicts_are_counted_as_runs_finish():
    snapshot.clear()
    _campaign(Runs("campaign", 3, out=io.StringIO()))
    assert snapshot == ["INVALID 1  VALID 1"]
