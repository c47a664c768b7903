"""Campaigns: a matrix of nemeses times seeds, one test run each, summarised together.

``walrus-harness campaign --nemesis-matrix "partition;kill;partition,clock,kill" --seeds 5``
runs every combination and writes::

    <store>/campaign-<timestamp>/
      summary.md   summary.csv   verdicts.png       (a heat map: nemesis x seed)
      <nemesis>-seed<k>/<timestamp>/ ...            (each run's directory)
"""

import csv
import time
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from harness import junit as junit_xml
from harness.checker.result import counts_of, details_of
from harness.checker.verdict import WORDS
from harness.cluster import preflight
from harness.progress import Runs
from harness.runner import RunResult, TestConfig, run_test
from nemesis.schedule import fault_names


@dataclass
class Row:
    """One run of a campaign."""

    nemesis: str
    seed: int
    verdict: bool | str
    anomalies: dict[str, int]
    ops: int
    acked_put_per_s: float
    availability: float | None
    path: Path
    truncation_lines: int | None = None
    """Node log lines of pysyncobj deleting applied entries (None: not counted)."""
    seconds: float = 0.0
    """How long the run took, start-up to reports."""

    def anomaly_text(self) -> str:
        """``kind=count`` pairs."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.anomalies.items())) or "-"


def row_of(nemesis: str, seed: int, result: RunResult, seconds: float = 0.0) -> Row:
    """Summarise one run (which took ``seconds``)."""
    r = result.results
    perf = details_of(r, "perf").get("all", {})
    counts = [perf.get(f, {}) for f in ("put", "get")]
    total = sum(c.get("ok", 0) + c.get("fail", 0) + c.get("info", 0) for c in counts)
    ok = sum(c.get("ok", 0) for c in counts)
    return Row(
        nemesis,
        seed,
        r["valid"],
        {"broke off": 1} if "error" in r else counts_of(r),
        r.get("operations", 0),
        perf.get("put", {}).get("ok_per_s", 0.0),
        ok / total if total else None,
        result.path,
        r.get("cluster", {}).get("applied_truncation_lines"),
        seconds,
    )


def _slug(nemesis: str) -> str:
    return nemesis.replace(",", "+") or "none"


def run_campaign(
    base: TestConfig,
    matrix: list[str],
    seeds: list[int],
    junit: Path | None = None,
    live: bool | None = None,
) -> Path:
    """Run every (nemesis, seed); write the campaign's summaries (and ``junit``, a JUnit XML
    file with a test case per run); returns its directory. Progress goes to stdout, live on a
    terminal unless ``live`` says otherwise (``harness.progress``)."""
    preflight(
        base.backend,
        base.base_image,
        tuple(f for nemesis in matrix for f in fault_names(nemesis)),
    )
    directory = base.store / f"campaign-{time.strftime('%Y%m%dT%H%M%S')}"
    directory.mkdir(parents=True)
    rows = []
    with Runs("campaign", len(matrix) * len(seeds), live=live) as runs:
        for nemesis, seed in ((n, s) for n in matrix for s in seeds):
            config = replace(
                base,
                name=f"{_slug(nemesis)}-seed{seed}",
                nemesis=nemesis,
                seed=seed,
                store=directory,
                workload=replace(base.workload, seed=seed),
            )
            runs.begin(f"{nemesis} seed {seed}")
            began = time.monotonic()
            result = run_test(config, log=runs.phase)
            row = row_of(nemesis, seed, result, time.monotonic() - began)
            rows.append(row)
            verdict = WORDS[row.verdict]
            runs.done(f"{verdict:<8} {nemesis:<24} seed {seed:<3} {row.anomaly_text()}", verdict)
    write_summaries(directory, rows, base)
    if junit is not None:
        cases = [junit_xml.case_of(r, f"campaign.{_slug(r.nemesis)}") for r in rows]
        junit_xml.write(junit, f"walrus-harness campaign {directory.name}", cases)
    return directory


def write_summaries(directory: Path, rows: list[Row], base: TestConfig) -> None:
    """summary.csv, summary.md and verdicts.png."""
    with open(directory / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "nemesis",
                "seed",
                "verdict",
                "anomalies",
                "ops",
                "acked_put_per_s",
                "availability",
                "applied_truncation_lines",
                "run",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r.nemesis,
                    r.seed,
                    WORDS[r.verdict],
                    r.anomaly_text(),
                    r.ops,
                    f"{r.acked_put_per_s:.1f}",
                    "" if r.availability is None else f"{r.availability:.3f}",
                    "" if r.truncation_lines is None else r.truncation_lines,
                    r.path.relative_to(directory),
                ]
            )
    counts = {v: sum(1 for r in rows if r.verdict == v) for v in (True, False, "unknown")}
    lines = [
        f"# Campaign: {counts[True]} valid, {counts[False]} invalid, {counts['unknown']} unknown",
        "",
        f"{base.system.describe()}, {base.nodes} nodes ({base.backend}), {base.time_limit:g} s "
        f"per run, nemesis every ~{base.nemesis_interval:g} s",
        "",
        "![verdicts](verdicts.png)",
        "",
        *by_nemesis(rows),
        "",
        "## Every run",
        "",
    ]
    counted = any(r.truncation_lines is not None for r in rows)
    cut_head = " 'truncating already-applied' lines |" if counted else ""
    lines += [
        f"| nemesis | seed | verdict | anomalies | ops | acked PUT/s | availability |{cut_head}"
        " run |",
        "|---|---|---|---|---|---|---|" + ("---|" if counted else "") + "---|",
    ]
    for r in rows:
        avail = "-" if r.availability is None else f"{r.availability:.1%}"
        rel = r.path.relative_to(directory)
        cut = f" {'-' if r.truncation_lines is None else r.truncation_lines} |" if counted else ""
        lines.append(
            f"| `{r.nemesis}` | {r.seed} | {WORDS[r.verdict]} | {r.anomaly_text()} | "
            f"{r.ops} | {r.acked_put_per_s:.1f} | {avail} |{cut} [{rel}]({rel}/summary.md) |"
        )
    (directory / "summary.md").write_text("\n".join(lines) + "\n")
    heatmap(rows, directory / "verdicts.png")


def by_nemesis(rows: list[Row]) -> list[str]:
    """A table with a row per nemesis: its runs, their verdicts, each anomaly kind found with
    its total count and (in parentheses) the number of runs it appeared in, the operations, the
    mean acknowledged PUT/s and the mean availability."""
    lines = [
        "| nemesis | runs | verdicts | anomalies found | operations | acked PUT/s | availability |",
        "|---|---|---|---|---|---|---|",
    ]
    for nemesis in dict.fromkeys(r.nemesis for r in rows):
        runs = [r for r in rows if r.nemesis == nemesis]
        verdicts = ", ".join(
            f"{n} {WORDS[v].lower()}"
            for v in (True, False, "unknown")
            if (n := sum(1 for r in runs if r.verdict == v))
        )
        kinds = sorted({k for r in runs for k in r.anomalies})
        found = ", ".join(
            f"{k} {sum(r.anomalies.get(k, 0) for r in runs)} "
            f"({sum(1 for r in runs if k in r.anomalies)})"
            for k in kinds
        )
        shares = [r.availability for r in runs if r.availability is not None]
        avail = f"{sum(shares) / len(shares):.1%}" if shares else "-"
        rate = sum(r.acked_put_per_s for r in runs) / len(runs)
        lines.append(
            f"| `{nemesis}` | {len(runs)} | {verdicts} | {found or '-'} | "
            f"{sum(r.ops for r in runs):,} | {rate:.1f} | {avail} |"
        )
    return lines


def heatmap(rows: list[Row], path: Path) -> None:
    """A grid of verdicts: one row per nemesis, one column per seed."""
    nemeses = list(dict.fromkeys(r.nemesis for r in rows))
    seeds = sorted({r.seed for r in rows})
    colors = {True: "#52b788", False: "#e63946", "unknown": "#ffb703"}
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(seeds), 0.8 + 0.55 * len(nemeses)))
    for r in rows:
        x, y = seeds.index(r.seed), nemeses.index(r.nemesis)
        ax.add_patch(plt.Rectangle((x, y), 1, 1, color=colors[r.verdict], ec="white", lw=2))
        top = max(r.anomalies.items(), key=lambda kv: kv[1])[0] if r.anomalies else ""
        label = WORDS[r.verdict][0] + (f"\n{top}" if top and r.verdict is not True else "")
        ax.text(x + 0.5, y + 0.5, label, ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(seeds))
    ax.set_ylim(0, len(nemeses))
    ax.set_xticks([i + 0.5 for i in range(len(seeds))], [str(s) for s in seeds])
    ax.set_yticks([i + 0.5 for i in range(len(nemeses))], nemeses, fontsize=8)
    ax.set_xlabel("seed")
    ax.invert_yaxis()
    ax.set_title("verdicts (V valid, I invalid, U unknown)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
