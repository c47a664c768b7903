"""``walrus-harness gate``: a fixed, seeded, short campaign for CI pipelines.

Three runs of the default node — partitions and kills, pauses and clock skew, disk damage — must
all be valid, and a control run of the same partitions and kills against ``--compat walrus``
(Walrus 0.3's unsafe design, small segments) must be invalid: the gate proves it can fail. The
time limit of each run is set so that the whole gate fits ``--budget-s``. Exit 0 only if every
run reached its expected verdict.
"""

import time
from dataclasses import replace
from pathlib import Path

from harness.campaign import row_of, write_summaries
from harness.checker.verdict import WORDS
from harness.runner import TestConfig, relative, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.workload import WorkloadConfig

RUNS = (
    ("partition,kill", 11, False),
    ("pause,clock", 12, False),
    ("disk", 13, False),
    ("partition,kill", 11, True),
)
"""(nemesis, seed, compat control?) for each run."""

OVERHEAD_S = 25.0
"""Per run, besides the time limit: start-up, recovery, drain, audit, check, reports."""


def plan(store: Path, budget_s: float, backend: str = "local") -> list[tuple[TestConfig, bool]]:
    """The gate's runs and whether each must be valid."""
    limit = max(8.0, min(30.0, budget_s / len(RUNS) - OVERHEAD_S))
    base = TestConfig(
        nodes=3,
        time_limit=limit,
        nemesis_interval=max(2.0, limit / 5),
        store=store,
        backend=backend,
    )
    out = []
    for nemesis, seed, control in RUNS:
        spec = (
            NodeSpec(compat=True, max_segment_entries=5)
            if control
            else NodeSpec(max_segment_entries=50)
        )
        config = replace(
            base,
            name=f"{'control-compat' if control else 'gate'}-{nemesis}",
            nemesis=nemesis,
            seed=seed,
            system=WalrusPy(spec),
            workload=WorkloadConfig(concurrency=6, topics=2, rate=300.0, seed=seed),
        )
        out.append((config, not control))
    return out


def run_gate(store: Path, budget_s: float = 300.0, backend: str = "local", log=print) -> int:
    """Run the gate; 0 if every run reached its expected verdict, else 1."""
    directory = store / f"gate-{backend}-{time.strftime('%Y%m%dT%H%M%S')}"
    runs = plan(directory, budget_s, backend)
    failures, rows = 0, []
    for config, must_be_valid in runs:
        result = run_test(config, log=lambda m: None)
        row = row_of(
            config.nemesis + (" (compat control)" if not must_be_valid else ""), config.seed, result
        )
        rows.append(row)
        ok = result.valid is must_be_valid
        failures += not ok
        want = "valid" if must_be_valid else "invalid"
        log(
            f"{'pass' if ok else 'FAIL'}  {config.name} seed {config.seed}: "
            f"{WORDS[result.valid]} (must be {want}) {row.anomaly_text()}  "
            f"{relative(result.path)}"
        )
    write_summaries(directory, rows, runs[0][0])
    log(
        f"gate {'passed' if not failures else 'FAILED'}: {len(runs) - failures} of {len(runs)} "
        f"runs as expected; {relative(directory / 'summary.md')}"
    )
    return 0 if not failures else 1
