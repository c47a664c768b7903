"""Print one real example of every anomaly kind, the lines docs/checkers.md quotes.

    .venv/bin/python docs/anomaly_examples.py

The examples are not written by hand: each comes from running the checkers on the simulated
correct run of the sensitivity tests (``tests/sensitivity/``) with one bug planted, the same
bugs those tests plant, plus a few more for the kinds they do not reach, and rendering the first
anomaly of each kind with ``harness.checker.explain`` as results.json and summary.md do. The
script fails if some kind the checkers can report has no example, so the catalogue stays whole.
"""

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.checker.explain import RENDER, explain
from tests.sensitivity import test_checkers_catch as run
from tests.sensitivity import test_metadata_checker as meta


def read_a_value_never_put(ops, events, audit):
    run._get(ops, "v8").value = "v-never"


def seal_one_short(ops, events, audit):
    """The metadata and the store say segment 1 was sealed at 4 entries; 5 were acknowledged."""
    audit["states"]["t"]["sealed_segments"]["1"] = 4
    audit["segments"]["t"]["1"]["count"] = 4


def a_second_writer(ops, events, audit):
    e = next(e for e in events if e["kind"] == "append" and e["segment"] == 2)
    e["node"] = 1


def append_with_no_lease(ops, events, audit):
    events[:] = [e for e in events if not (e["kind"] == "lease-acquire" and e["node"] == 2)]


def a_slow_clock(ops, events, audit):
    """Node 2's clock says its append was in time; the host's clock says 5 s later."""
    e = next(e for e in events if e["kind"] == "append" and e["node"] == 2)
    e["true_ns"] += 5 * 10**9


RUN_BUGS = [bug for bug, _ in run.BUGS] + [
    read_a_value_never_put,
    seal_one_short,
    a_second_writer,
    append_with_no_lease,
    a_slow_clock,
]
META_BUGS = [
    meta.plant_divergence,
    meta.plant_reapplied,
    meta.plant_lost_ack,
    meta.plant_refused,
    meta.plant_truncated,
    meta.plant_log_matching,
]


def examples() -> dict[str, tuple[str, str, str]]:
    """Each kind: (checker, the planted bug, the anomaly's line), the first found."""
    found: dict[str, tuple[str, str, str]] = {}
    for bug in RUN_BUGS:
        ops, events, audit = run.simulate()
        bug(ops, events, audit)
        by_index = {o.invoke_index: o for o in ops}
        for checker, result in run.results(ops, events, audit).items():
            for a in result.anomalies:
                found.setdefault(a.kind, (checker, bug.__name__, explain(a, by_index)))
    for bug in META_BUGS:
        raw = copy.deepcopy(meta.simulate())
        bug(raw)
        for a in meta.check(raw).anomalies:
            found.setdefault(a.kind, ("metadata", bug.__name__, explain(a, {})))
    return found


def main() -> int:
    found = examples()
    missing = sorted(set(RENDER) - set(found))
    for kind in RENDER:
        if kind in found:
            checker, bug, text = found[kind]
            print(f"{kind} ({checker}; planted: {bug}):\n    {text}\n")
    if missing:
        print(f"no example for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
