"""Lease arithmetic: its edges, and the safety argument checked over random drifting clocks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walrus.lease import LeaseConfig, holds, lease_expiry, remaining, takeover_due

CFG = LeaseConfig(2.0, 0.1)


def test_derived_durations():
    assert CFG.renew_interval == 0.5
    assert CFG.hold == pytest.approx(1.8)
    assert CFG.takeover_wait == pytest.approx(2.2)


def test_no_renew_no_lease():
    assert not holds(CFG, None, 0.0)
    assert lease_expiry(CFG, None) is None
    assert remaining(CFG, None, 5.0) == 0.0


def test_lease_interval_is_half_open():
    assert holds(CFG, 10.0, 10.0)
    assert holds(CFG, 10.0, 11.799)
    assert not holds(CFG, 10.0, 10.0 + CFG.hold)
    assert remaining(CFG, 10.0, 11.0) == pytest.approx(0.8)
    assert remaining(CFG, 10.0, 13.0) == 0.0


def test_takeover_counts_from_the_later_of_renew_and_election():
    assert not takeover_due(CFG, None, elected=100.0, now=102.1)
    assert takeover_due(CFG, None, elected=100.0, now=102.2)
    assert not takeover_due(CFG, 101.0, elected=100.0, now=103.1)
    assert takeover_due(CFG, 101.0, elected=100.0, now=103.2)
    # A renew applied before this leader's election counts from the election.
    assert not takeover_due(CFG, 90.0, elected=100.0, now=101.0)


@pytest.mark.parametrize(("duration", "rho"), [(0, 0.1), (-1, 0.1), (2, -0.1), (2, 1.0)])
def test_bad_configs(duration, rho):
    with pytest.raises(ValueError):
        LeaseConfig(duration, rho)


rates = st.floats(min_value=0.9, max_value=1.1)


@given(
    holder_rate=rates,
    leader_rate=rates,
    send=st.floats(0, 100),
    apply_delay=st.floats(0, 5),
    elected=st.floats(0, 100),
)
def test_lease_ends_before_takeover_on_true_time(
    holder_rate, leader_rate, send, apply_delay, elected
):
    """With both clocks' rates within rho, the holder's lease (on its clock) ends no later in
    true time than the earliest takeover (on the leader's clock)."""
    # True times: the renew is sent at `send`, applied by the leader at send + apply_delay.
    lease_end_true = send + CFG.hold / holder_rate
    applied_true = send + apply_delay
    base_true = max(applied_true, elected)
    takeover_true = base_true + CFG.takeover_wait / leader_rate
    assert lease_end_true <= takeover_true + 1e-9


def test_unsafe_drift_breaks_the_argument():
    """A holder clock running 25% slow (beyond rho) keeps its lease past the takeover."""
    lease_end_true = 0 + CFG.hold / 0.75
    takeover_true = 0 + CFG.takeover_wait / 1.1
    assert lease_end_true > takeover_true
