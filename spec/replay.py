"""From a counterexample of the model to a harness run that should show the same anomaly.

A trace of ``spec.explore`` is reproducible with the harness when each of its faults has a
harness counterpart (a crash is a ``kill``, an isolated node a ``partition``); everything else in
a trace — puts, gets, renews, commits, ticks — is what a running cluster does by itself under a
workload. Each invariant of the model names the checker anomalies that witness its violation in
a recorded history.
"""

from dataclasses import dataclass

from spec.explore import Outcome

NEMESIS_FOR = {"Crash": "kill", "Isolate": "partition"}
"""The harness fault that plays each fault action of the model."""

ANOMALIES_FOR = {
    "AckedReadable": {"lease": {"beyond_sealed_count"}, "storage": {"acknowledged_beyond_count"}},
    "SealedCountExact": {"storage": {"acknowledged_beyond_count"}},
    "SingleWriter": {"lease": {"overlapping_writers", "append_after_expiry_true_time"}},
    "ReadOnceInOrder": {"queue": {"VRepet", "VOrd"}},
    "NoLostOnEmpty": {"queue": {"VWit"}},
    "EventuallyAllRead": {"totals": {"lost"}},
}
"""Per invariant: the anomaly kinds, by checker, any one of which shows it broken."""


@dataclass(frozen=True)
class Replay:
    """How to replay a counterexample: the harness's ``--nemesis`` and the anomalies to expect."""

    nemesis: str
    anomalies: dict[str, set[str]]


def replay_plan(outcome: Outcome) -> Replay:
    """The harness run for ``outcome``'s counterexample."""
    if outcome.ok or outcome.actions is None:
        raise ValueError("the exploration found no counterexample to replay")
    faults = sorted({NEMESIS_FOR[a] for a in outcome.actions if a in NEMESIS_FOR})
    return Replay(",".join(faults) or "none", ANOMALIES_FOR[outcome.violated])
