"""``walrus-harness gate``: a short, seeded check fit for CI pipelines.

Two runs on a local cluster: the default node under partitions and kills must be valid, and the
same test against ``--compat walrus`` (Walrus 0.3's unsafe design, small segments) must be
invalid — the control run proves the gate can fail. Exit 0 only if both come out so.
"""

from dataclasses import replace
from pathlib import Path

from harness.cluster import NodeSpec
from harness.runner import TestConfig, relative, run_test
from harness.workload import WorkloadConfig

BASE = TestConfig(
    nodes=3,
    time_limit=20.0,
    nemesis="partition,kill",
    nemesis_interval=4.0,
    seed=7,
    workload=WorkloadConfig(concurrency=6, topics=2, rate=300.0, seed=7),
)


def runs(store: Path) -> list[tuple[TestConfig, bool]]:
    """The gate's runs and the verdict each must reach."""
    return [
        (replace(BASE, name="gate", store=store, spec=NodeSpec(max_segment_entries=50)), True),
        (
            replace(
                BASE,
                name="gate-compat-control",
                store=store,
                spec=NodeSpec(compat=True, max_segment_entries=5),
            ),
            False,
        ),
    ]


def run_gate(store: Path, log=print) -> int:
    """Run the gate; 0 if every run reached its expected verdict, else 1."""
    failures = 0
    for config, expected in runs(store):
        result = run_test(config, log=lambda m: None)
        ok = result.valid is expected
        failures += not ok
        want = "valid" if expected else "invalid"
        log(
            f"{'pass' if ok else 'FAIL'}  {config.name}: {result.valid} (must be {want})  "
            f"{relative(result.path)}"
        )
    log("gate passed" if not failures else f"gate FAILED ({failures} of {len(runs(store))} runs)")
    return 0 if not failures else 1
