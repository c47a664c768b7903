"""The run store as the browser sees it: runs and campaigns found under a directory, summarised.

A run is a directory holding ``test.json`` (written when it starts) and, once checked,
``results.json``; a campaign is a ``campaign-*`` directory holding ``summary.csv``. Everything is
read from those files, never from the history, so an index of many runs stays fast; each
summary is cached by the modification times of the files it came from.
"""

import csv
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.checker.result import counts_of
from harness.checker.verdict import WORDS

INCOMPLETE = "INCOMPLETE"
"""The verdict word of a run with no readable results.json (running, or broken off)."""


@dataclass(frozen=True)
class RunInfo:
    """One run, as a row of the index."""

    rel: str
    """Its directory relative to the store, with ``/``."""
    name: str
    started: str
    system: str
    backend: str
    nemesis: str
    seed: int | None
    verdict: str
    operations: int | None
    anomalies: dict[str, int]
    campaign: str | None

    def anomaly_text(self) -> str:
        """``kind=count`` pairs, or ``-``."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.anomalies.items())) or "-"


@dataclass(frozen=True)
class CampaignRow:
    """One run of a campaign, as its summary.csv lists it."""

    nemesis: str
    seed: int
    verdict: str
    anomalies: str
    run: str
    """The run's directory relative to the store."""


@dataclass(frozen=True)
class CampaignInfo:
    """One campaign: its runs in the order they ran."""

    rel: str
    started: str
    rows: tuple[CampaignRow, ...]
    error: str | None = None
    """Why its summary.csv could not be read, if it could not."""

    def count(self, verdict: str) -> int:
        """How many of its runs have this verdict word."""
        return sum(1 for r in self.rows if r.verdict == verdict)


def started_of(directory: Path) -> str:
    """The time a run or campaign directory's name carries (``...YYYYmmddTHHMMSS``), readable."""
    stamp = directory.name.removeprefix("campaign-")
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def read_json(path: Path) -> dict | None:
    """A JSON object from a file, or None when it is missing or unreadable."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


class Store:
    """The runs and campaigns under one directory, rescanned on every call."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._runs: dict[Path, tuple[tuple, RunInfo]] = {}

    def locate(self, rel: str) -> Path | None:
        """The path ``rel`` names inside the store, or None if it leaves the store."""
        path = (self.root / rel).resolve()
        return path if path == self.root or self.root in path.parents else None

    def rel(self, path: Path) -> str:
        """``path`` relative to the store."""
        return path.resolve().relative_to(self.root).as_posix()

    def scan(self) -> tuple[list[RunInfo], list[CampaignInfo]]:
        """Every run (newest first) and every campaign (newest first)."""
        runs, campaigns = [], []
        for here, dirs, files in os.walk(self.root):
            directory = Path(here)
            if "test.json" in files:
                runs.append(self.run(directory))
                dirs.clear()  # a run holds no runs
            elif directory.name.startswith("campaign-") and "summary.csv" in files:
                campaigns.append(self.campaign(directory))
            dirs.sort()
        runs.sort(key=lambda r: r.started, reverse=True)
        campaigns.sort(key=lambda c: c.started, reverse=True)
        return runs, campaigns

    def run(self, directory: Path) -> RunInfo:
        """The summary of the run in ``directory`` (cached while its files are unchanged)."""
        key = tuple(_mtime(directory / f) for f in ("test.json", "results.json"))
        cached = self._runs.get(directory)
        if cached is not None and cached[0] == key:
            return cached[1]
        info = self._read_run(directory)
        self._runs[directory] = (key, info)
        return info

    def _read_run(self, directory: Path) -> RunInfo:
        test = read_json(directory / "test.json") or {}
        results = read_json(directory / "results.json")
        system = test.get("system") or {}
        campaign = next(
            (p for p in directory.parents if p.name.startswith("campaign-")),
            None,
        )
        verdict = INCOMPLETE
        if results is not None and results.get("valid") in WORDS:
            verdict = WORDS[results["valid"]]
        return RunInfo(
            rel=self.rel(directory),
            name=str(test.get("name", directory.parent.name)),
            started=started_of(directory),
            system=str(system.get("description") or system.get("name") or "?"),
            backend=str(test.get("backend", "?")),
            nemesis=str(test.get("nemesis", "?")),
            seed=test.get("seed"),
            verdict=verdict,
            operations=None if results is None else results.get("operations"),
            anomalies={} if results is None else counts_of(results),
            campaign=None
            if campaign is None or self.root not in campaign.parents
            else self.rel(campaign),
        )

    def campaign(self, directory: Path) -> CampaignInfo:
        """The campaign in ``directory``, from its summary.csv."""
        rows = []
        try:
            with open(directory / "summary.csv", newline="") as f:
                for row in csv.DictReader(f):
                    rows.append(
                        CampaignRow(
                            nemesis=row["nemesis"],
                            seed=int(row["seed"]),
                            verdict=row["verdict"],
                            anomalies=row["anomalies"],
                            run=self.rel(directory / row["run"]),
                        )
                    )
        except (OSError, KeyError, ValueError) as exc:
            error = f"summary.csv is unreadable: {type(exc).__name__}: {exc}"
            return CampaignInfo(self.rel(directory), started_of(directory), (), error)
        return CampaignInfo(self.rel(directory), started_of(directory), tuple(rows))


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
