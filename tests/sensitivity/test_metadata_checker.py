"""The metadata checker catches each violation of Raft's safety it exists for.

A correct run's ``meta-*`` events are simulated — three nodes applying the same commands at the
same indexes, acknowledgements, a legitimate truncation above the commit index, a restart that
applies its journal again — and then exactly one bug is planted. The run must check valid
before and the named anomaly must be found after. (Real runs with the planted bugs of
``harness/mutants.py`` are in ``test_metadata_mutants.py``.)
"""

import copy

import pytest

from harness.checker import metadata
from harness.checker.explain import explain
from harness.history.node_events import parse


def _event(node: int, t: float, kind: str, **fields) -> dict:
    return {"kind": kind, "node": node, "true_ns": int(t * 1e9), "node_time": t, **fields}


def _apply(node: int, t: float, index: int, term: int, cmd: str, kind="meta-apply") -> dict:
    return _event(node, t, kind, index=index, term=term, hash=f"{cmd}-{index}", cmd=cmd)


def simulate() -> list[dict]:
    """Entries 2-11 (term 1, then term 2 from 7 on) applied by nodes 1-3 in turn; node 1
    proposed and was told of the even ones; node 3 restarts after 8 and applies 2-8 again;
    node 2 cut an uncommitted entry above its commit index."""
    raw = []
    for index in range(2, 12):
        term = 1 if index < 7 else 2
        cmd = "noop" if index in (2, 7) else "renew"
        for node in (1, 2, 3):
            t = index + node / 10
            raw.append(_apply(node, t, index, term, cmd))
            if node == 1 and index % 2 == 0:
                raw.append(_apply(node, t + 0.01, index, term, cmd, kind="meta-ack"))
        if index == 8:
            raw.append(_event(3, 8.5, "start"))
            raw += [_apply(3, 8.5 + i / 100, i, 1 if i < 7 else 2, "x") for i in range(2, 9)]
            for e in raw[-7:]:
                e["hash"] = next(r["hash"] for r in raw if r["index"] == e["index"])
                e["cmd"] = next(r["cmd"] for r in raw if r["index"] == e["index"])
    cut = {"start": 7, "end": 7, "applied": 6, "commit": 6, "dropped": [[7, 1, "stale"]]}
    raw.append(_event(2, 6.5, "meta-truncate", leader=1, **cut))
    return sorted(raw, key=lambda e: e["true_ns"])


def check(raw: list[dict]):
    return metadata.check([parse(e) for e in raw])


def test_the_simulated_run_is_valid():
    result = check(simulate())
    assert result.valid is True, result
    assert result.details["applied_entries"] == 10 * 3 + 7
    assert result.details["acknowledged"] == 5


def _find(raw, node, index, kind="meta-apply"):
    return next(e for e in raw if (e["node"], e.get("index"), e["kind"]) == (node, index, kind))


def plant_divergence(raw):
    _find(raw, 3, 9)["hash"] = "other"  # node 3 applied another command at 9


def plant_reapplied(raw):
    later = [e for e in raw if (e["node"], e.get("index"), e["kind"]) == (3, 4, "meta-apply")]
    later[1]["hash"] = "other"  # after its restart, node 3 applied 4 differently


def plant_lost_ack(raw):
    for node in (2, 3):  # the acknowledged command at 10 was replaced on the others
        for e in raw:
            if (e["node"], e.get("index"), e["kind"]) == (node, 10, "meta-apply"):
                e["hash"], e["term"] = "other", 3


def plant_refused(raw):
    raw.append(_event(2, 11.9, "meta-refuse", index=9, term=2, sent_term=3, applied=11, commit=11))


def plant_truncated(raw):
    cut = next(e for e in raw if e["kind"] == "meta-truncate")
    cut["start"] = 5  # at or below what node 2 applied


def plant_log_matching(raw):
    _find(raw, 2, 3)["hash"] = "other"  # 2 and 1 agree at 11 (term 2) yet differ at 3


@pytest.mark.parametrize(
    "plant, kinds",
    [
        (plant_divergence, {"apply_divergence", "log_matching"}),
        (plant_reapplied, {"reapplied_differently"}),
        (plant_lost_ack, {"committed_lost", "apply_divergence", "log_matching"}),
        (plant_refused, {"committed_lost"}),
        (plant_truncated, {"applied_truncated"}),
        (plant_log_matching, {"apply_divergence", "log_matching"}),
    ],
)
def test_each_planted_violation_is_found_and_explained(plant, kinds):
    raw = copy.deepcopy(simulate())
    plant(raw)
    result = check(raw)
    assert result.valid is False
    assert set(result.counts) == kinds, result.counts
    for anomaly in result.anomalies:
        assert anomaly.nodes and anomaly.times_ns
        assert str(anomaly.nodes[0]) in explain(anomaly, {})  # every kind reads as a line


def test_without_metadata_events_the_verdict_is_unknown():
    raw = [e for e in simulate() if not e["kind"].startswith("meta-")]
    assert check([*raw, _event(1, 0, "start")]).valid == "unknown"
    assert metadata.check(None).valid == "unknown"


def test_an_acknowledgement_a_snapshot_moved_past_is_unverified_not_lost():
    raw = simulate()
    raw = [e for e in raw if not (e["node"] == 2 and e["kind"] == "meta-apply" and e["index"] < 9)]
    raw.append(_event(2, 1.0, "meta-snapshot", index=8, term=2, installed=True))
    result = check(raw)
    assert result.valid is True, result
    assert result.details["acknowledged_unverified"] == 4
