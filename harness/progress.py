"""Progress of the long commands (``campaign``, ``replay``, ``shrink``, ``bench compare``).

A long command is a known number of runs. On a terminal it shows, with rich, one live line: the
run in progress and what it is doing now, runs done of the total, the verdicts so far, the time
spent and the time left (at the mean pace of the runs done); each finished run's line is printed
above it and stays. Anywhere else (a CI log, a pipe) nothing moves: the finished runs' lines are
printed as plain lines, so logs stay greppable.
"""

import sys
from collections import Counter
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Runs:
    """The progress of ``total`` runs, shown live on a terminal and as plain lines otherwise."""

    def __init__(
        self,
        title: str,
        total: int,
        out: TextIO | None = None,
        live: bool | None = None,
        width: int | None = None,
    ) -> None:
        self.title = title
        self.total = total
        self.out = out if out is not None else sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.width = width
        """Columns of the live line (None: the terminal's)."""
        self.verdicts: Counter[str] = Counter()
        self.current = ""
        self.doing = ""
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> "Runs":
        if self.live:
            console = Console(file=self.out, force_terminal=True, width=self.width)
            self._bar = Progress(
                TextColumn("[bold]{task.fields[title]}[/]"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[verdicts]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                TextColumn("{task.description}"),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(
                "", total=self.total, title=self.title, verdicts="", left=""
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def begin(self, name: str) -> None:
        """A run starts."""
        self.current, self.doing = name, ""
        self._refresh()

    def phase(self, message: str) -> None:
        """What the run in progress is doing now (a run's log line); shown live only."""
        self.doing = message
        self._refresh()

    def note(self, line: str) -> None:
        """A line that stays, printed above the live line (or plainly)."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    def done(self, line: str | None = None, verdict: str | None = None) -> None:
        """A run finished: its line (if any) stays, and its verdict is counted."""
        if verdict is not None:
            self.verdicts[verdict] += 1
        if line is not None:
            self.note(line)
        self.current, self.doing = "", ""
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)
        self._refresh()

    def tally(self) -> str:
        """The verdicts so far, e.g. ``VALID 3  INVALID 1``."""
        return "  ".join(f"{v} {n}" for v, n in sorted(self.verdicts.items()))

    def _refresh(self) -> None:
        if self._bar is None or self._task is None:
            return
        now = f"{self.current}: {self.doing}" if self.doing else self.current
        self._bar.update(self._task, description=now, verdicts=self.tally(), left=self._left())

    def _left(self) -> str:
        """The time left at the mean pace of the runs done so far ("" before the first)."""
        assert self._bar is not None and self._task is not None
        task = self._bar.tasks[self._task]
        done, elapsed = task.completed, task.elapsed
        if not done or elapsed is None:
            return ""
        seconds = int(elapsed / done * (self.total - done))
        return f"~{seconds // 60}:{seconds % 60:02d} left"
