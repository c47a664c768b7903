"""``walrus-harness gate``: a fixed, seeded, short campaign for CI pipelines.

Four runs of the default node — partitions and kills, pauses and clock skew, disk damage, power
loss of one node and of all at once (``lose-unsynced``, ``lose-unsynced-all``, local backend) —
must all be valid, and two controls must be invalid, so the gate proves it can fail: the same
partitions and kills against ``--compat walrus`` (Walrus 0.3's unsafe design, small segments),
and the correlated power loss against a node that acknowledges before it syncs (``--fsync
none``): with every copy powered off at once, three copies no longer hide it. The time limit of
each run is set so that the whole gate fits ``--budget-s``. Exit 0 only if every run reached its
expected verdict.
"""

import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.campaign import row_of, write_summaries
from harness.checker.verdict import WORDS
from harness.cluster.power import preflight as power_preflight
from harness.junit import case_of
from harness.junit import write as write_junit
from harness.runner import TestConfig, relative, run_test
from harness.systems import NodeSpec, WalrusPy
from harness.systems.base import Unsupported
from harness.workload import WorkloadConfig


@dataclass(frozen=True)
class GateRun:
    """One run of the gate: its nemesis, seed, node and the verdict it must reach."""

    nemesis: str
    seed: int
    spec: NodeSpec
    must_be_valid: bool
    label: str

    def applies(self, backend: str) -> str | None:
        """None if the run can happen on ``backend`` here, else why not."""
        if "lose-unsynced" not in self.nemesis:
            return None
        if backend != "local":
            return "power loss is gated on the local backend (pytest runs it on Docker too)"
        try:
            power_preflight()
        except Unsupported as exc:
            return str(exc)
        return None


RUNS = (
    GateRun("partition,kill", 11, NodeSpec(max_segment_entries=50), True, "gate"),
    GateRun("pause,clock", 12, NodeSpec(max_segment_entries=50), True, "gate"),
    GateRun("disk", 13, NodeSpec(max_segment_entries=50), True, "gate"),
    GateRun("lose-unsynced,lose-unsynced-all", 14, NodeSpec(max_segment_entries=50), True, "gate"),
    GateRun(
        "partition,kill",
        11,
        NodeSpec(compat=True, max_segment_entries=5),
        False,
        "control-compat",
    ),
    GateRun(
        "lose-unsynced-all",
        14,
        NodeSpec(fsync="none", max_segment_entries=50),
        False,
        "control-fsync-none",
    ),
)
"""Every run of the gate."""

OVERHEAD_S = 25.0
"""Per run, besides the time limit: start-up, recovery, drain, audit, check, reports."""


def plan(
    store: Path, budget_s: float, backend: str = "local", runs: tuple[GateRun, ...] = RUNS
) -> list[tuple[TestConfig, bool]]:
    """The gate's runs and whether each must be valid."""
    limit = max(8.0, min(30.0, budget_s / len(runs) - OVERHEAD_S))
    base = TestConfig(
        nodes=3,
        time_limit=limit,
        nemesis_interval=max(2.0, limit / 5),
        store=store,
        backend=backend,
    )
    out = []
    for run in runs:
        config = replace(
            base,
            name=f"{run.label}-{run.nemesis}",
            nemesis=run.nemesis,
            seed=run.seed,
            system=WalrusPy(run.spec),
            workload=WorkloadConfig(concurrency=6, topics=2, rate=300.0, seed=run.seed),
        )
        out.append((config, run.must_be_valid))
    return out


def run_gate(
    store: Path,
    budget_s: float = 300.0,
    backend: str = "local",
    log=print,
    junit: Path | None = None,
) -> int:
    """Run the gate; 0 if every run reached its expected verdict, else 1. ``junit``: write a
    JUnit XML file there, a test case per run."""
    directory = store / f"gate-{backend}-{time.strftime('%Y%m%dT%H%M%S')}"
    chosen = []
    for run in RUNS:
        why = run.applies(backend)
        if why is None:
            chosen.append(run)
        else:
            log(f"skip  {run.label}-{run.nemesis}: {why}")
    runs = plan(directory, budget_s, backend, tuple(chosen))
    failures, rows, cases = 0, [], []
    for config, must_be_valid in runs:
        began = time.monotonic()
        result = run_test(config, log=lambda m: None)
        control = " (control)" if not must_be_valid else ""
        row = row_of(config.nemesis + control, config.seed, result, time.monotonic() - began)
        cases.append(case_of(row, f"gate.{backend}", must_be_valid))
        rows.append(row)
        ok = result.valid is must_be_valid
        failures += not ok
        want = "valid" if must_be_valid else "invalid"
        log(
            f"{'pass' if ok else 'FAIL'}  {config.name} seed {config.seed}: "
            f"{WORDS[result.valid]} (must be {want}) {row.anomaly_text()}  "
            f"{relative(result.path)}"
        )
        if not ok and "error" in result.results:
            at = result.results.get("raised_at")
            log(f"      {result.results['error']}" + (f" (raised in {at})" if at else ""))
    write_summaries(directory, rows, runs[0][0])
    if junit is not None:
        write_junit(junit, f"walrus-harness gate {backend}", cases)
    log(
        f"gate {'passed' if not failures else 'FAILED'}: {len(runs) - failures} of {len(runs)} "
        f"runs as expected; {relative(directory / 'summary.md')}"
    )
    return 0 if not failures else 1
