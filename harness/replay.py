"""``walrus-harness replay``: run a finished test again, with its saved schedule, and count how
often the same anomalies come back.

Everything a run chose from its seed is saved or re-derived — the nemesis's steps (test.json's
``schedule``), each worker's operations — so a replay runs the same system, backend, options,
workload and faults. What cannot be replayed is time: processes start, elections settle and
replies arrive when they do, so a replay is a new run of the same plan, not the same execution,
and the reproduction rate is measured, not assumed (Jepsen's position; only a deterministic
simulator could promise more).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.checker.result import counts_of
from harness.checker.verdict import WORDS
from harness.progress import Runs
from harness.runner import RunResult, TestConfig, run_test


@dataclass(frozen=True)
class Original:
    """What a finished run was and found."""

    config: TestConfig
    valid: bool | str
    kinds: tuple[str, ...]


def original(run: Path) -> Original:
    """The configuration and findings of the run in ``run``; ValueError if it cannot be run
    again."""
    test_path, results_path = run / "test.json", run / "results.json"
    if not test_path.is_file() or not results_path.is_file():
        raise ValueError(f"{run}: not a finished run (test.json and results.json are needed)")
    config = TestConfig.from_json(json.loads(test_path.read_text()))
    if config.schedule is None:
        raise ValueError(f"{run}: its test.json has no schedule (it predates them): cannot replay")
    results = json.loads(results_path.read_text())
    return Original(config, results["valid"], tuple(sorted(counts_of(results))))


def same_outcome(first: Original, result: RunResult) -> bool:
    """Whether a rerun found what the original did: the same verdict and, for an invalid run,
    every anomaly kind the original found."""
    if result.valid != first.valid:
        return False
    return set(first.kinds) <= set(counts_of(result.results))


def rerun(first: Original, store: Path, name: str, log: Callable[[str], None]) -> RunResult:
    """The original's configuration run again into ``store``."""
    return run_test(replace(first.config, store=store, name=name), log=log)


def replay(run: Path, times: int, live: bool | None = None) -> dict:
    """Run ``run`` again ``times`` times; what came back, as replay.json holds it. Progress goes
    to stdout, live on a terminal unless ``live`` says otherwise (``harness.progress``)."""
    if times < 1:
        raise ValueError("--times must be at least 1")
    first = original(run)
    out = run / "replay"
    rows = []
    with Runs("replay", times, live=live) as runs:
        for k in range(1, times + 1):
            runs.begin(f"replay {k}")
            result = rerun(first, out, f"replay-{k}", runs.phase)
            same = same_outcome(first, result)
            kinds = sorted(counts_of(result.results))
            rows.append(
                {"run": str(result.path), "valid": result.valid, "kinds": kinds, "same": same}
            )
            verdict = WORDS[result.valid]
            runs.done(
                f"replay {k}/{times}: {verdict} {' '.join(kinds) or '-'}"
                f"{'' if same else '  (differs)'}",
                verdict,
            )
    doc = {
        "run": str(run),
        "times": times,
        "reproduced": sum(r["same"] for r in rows),
        "kinds_reproduced": {k: sum(k in r["kinds"] for r in rows) for k in first.kinds},
        "original": {"valid": first.valid, "kinds": list(first.kinds)},
        "replays": rows,
        "note": "a replay runs the same plan (schedule, operations, options); timing is not "
        "replayed, so the rate is measured",
    }
    out.mkdir(exist_ok=True)
    (out / "replay.json").write_text(json.dumps(doc, indent=1))
    return doc
