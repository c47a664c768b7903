"""Hosts' clocks set on the control node's time line, and the checkers that compare two hosts'
events: sure where the measured bound lets them be, unknown where it does not."""

import pytest

from harness.checker import lease, metadata
from harness.history.columns import from_ops
from harness.history.host_clocks import MAX_DRIFT, HostClocks, Sample
from tests.unit.test_checkers import ev

MS = 1_000_000


def test_an_event_between_samples_takes_the_interpolated_offset_and_their_bound():
    clocks = HostClocks(
        {1: (Sample(1000 * MS, 50 * MS, 1 * MS), Sample(3000 * MS, 54 * MS, 3 * MS))}
    )
    at, bound = clocks.align(1, 2052 * MS)  # halfway between 1050 and 3054, in host time
    assert at == 2000 * MS
    assert bound == 3 * MS + 2 * MS  # the larger error, and half the offset's change


def test_an_event_outside_the_samples_allows_for_drift():
    clocks = HostClocks({1: (Sample(1000 * MS, -7 * MS, MS),)})
    at, bound = clocks.align(1, 1993 * MS)  # 1000 ms after the sample
    assert at == 2000 * MS
    assert bound == MS + int(1000 * MS * MAX_DRIFT)
    with pytest.raises(ValueError, match="node 2"):
        clocks.align(2, 0)


def test_clocks_json_round_trips():
    clocks = HostClocks({2: (Sample(1, 2, 3), Sample(4, 5, 6)), 1: ()}, t0_ns=9)
    assert HostClocks.from_json(clocks.to_json()) == clocks
    with pytest.raises(ValueError):
        HostClocks.from_json({"t0_ns": 1})


def _two_writers(gap_s: float) -> list:
    """Node 1 writes segment 1 until 1.5 s, node 2 segment 2 from 1.5 s + gap (may be < 0)."""
    return [
        ev("start", 1, 0),
        ev("lease-acquire", 1, 1, sent=0.9, expiry=2.7),
        ev("append", 1, 1.5, topic="t", segment=1, offset=0, count=1, epoch=1),
        ev("start", 2, 0),
        ev("lease-acquire", 2, 1.4 + gap_s, sent=1.3 + gap_s, expiry=3.1 + gap_s),
        ev("append", 2, 1.5 + gap_s, topic="t", segment=2, offset=0, count=1, epoch=2),
    ]


@pytest.mark.parametrize(
    ("gap_ms", "bound_ms", "valid"),
    [
        (10, None, True),  # one machine's clock: 10 ms apart is apart
        (10, 4, True),  # further apart than twice the bound: node 1 wrote first
        (10, 6, "unknown"),  # within twice the bound: the order is not known
        (-10, 6, "unknown"),
        (-10, 4, False),  # overlapping by more than twice the bound: two writers at once
        (-10, None, False),
    ],
)
def test_two_hosts_writers_are_judged_only_as_far_as_the_bound_allows(gap_ms, bound_ms, valid):
    bound = None if bound_ms is None else bound_ms * MS
    r = lease.check(from_ops([]), {}, _two_writers(gap_ms / 1000), 2.0, bound)
    assert r.valid == valid
    assert r.details["clock_bound_ns"] == (bound or 0)
    if valid == "unknown":
        assert r.details["bound_needed_ns"] == 5 * MS
        assert "±5.000 ms" in r.details["why"] and f"±{bound_ms}.000 ms" in r.details["why"]
    if valid is False:
        assert r.counts == {"overlapping_writers": 1}


def _lost_ack(gap_s: float) -> list:
    """Node 1 acknowledges index 2; node 2 applies index 3 ``gap_s`` later, never index 2."""
    meta = {"term": 1, "hash": "h", "cmd": "renew"}
    return [
        ev("meta-apply", 1, 1.0, index=1, **meta),
        ev("meta-apply", 1, 1.0, index=2, **meta),
        ev("meta-ack", 1, 1.0, index=2, **meta),
        ev("meta-apply", 2, 0.5, index=1, **meta),
        ev("meta-apply", 2, 1.0 + gap_s, index=3, **meta),
    ]


@pytest.mark.parametrize(
    ("gap_ms", "bound_ms", "valid"),
    [(10, 0, False), (10, 4, False), (10, 6, "unknown"), (-10, 6, "unknown"), (-10, 4, True)],
)
def test_a_command_lost_on_another_host_is_sure_only_beyond_the_bound(gap_ms, bound_ms, valid):
    r = metadata.check(_lost_ack(gap_ms / 1000), bound_ms * MS)
    assert r.valid == valid
    assert r.details["clock_bound_ns"] == bound_ms * MS
    assert r.details["unsure_order"] == (1 if valid == "unknown" else 0)


def test_a_malformed_clocks_json_is_one_line():
    with pytest.raises(ValueError, match="not \\[at_ns, offset_ns, error_ns\\]"):
        HostClocks.from_json({"nodes": {"1": [[1, 2]]}})
