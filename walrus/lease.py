"""Lease arithmetic for write fencing: pure functions of clock readings.

A node may accept appends only while it holds a lease. It renews by committing a ``renew``
command through Raft every ``L/4``; once the renew sent at its local time ``s`` is committed, the
lease holds until ``s + L*(1 - rho)`` on its own clock. The metadata leader reassigns a silent
node's open segments only after ``L*(1 + rho)`` on *its* clock, counted from the later of the
moment it applied that node's last renew and the moment it became leader.

Why that is safe, with every clock's rate within ``[1 - rho, 1 + rho]`` of true time: the lease
lasts at most ``L*(1 - rho) / (1 - rho) = L`` true seconds after the renew was sent; the wait
lasts at least ``L*(1 + rho) / (1 + rho) = L`` true seconds after the leader applied the renew
(which is after it was sent) or after the leader's election (which is after any renew it never
applied was sent). So the old lease has ended before the takeover is proposed. A drift beyond
``rho`` breaks the argument, which is what the ``drift-unsafe`` nemesis exists to show.
"""

from dataclasses import dataclass

DEFAULT_LEASE = 2.0
DEFAULT_RHO = 0.1


@dataclass(frozen=True)
class LeaseConfig:
    """Lease duration ``duration`` (L, seconds) and clock drift bound ``rho``."""

    duration: float = DEFAULT_LEASE
    rho: float = DEFAULT_RHO

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ValueError(f"lease duration must be > 0, not {self.duration}")
        if not 0 <= self.rho < 1:
            raise ValueError(f"drift bound rho must be in [0, 1), not {self.rho}")

    @property
    def renew_interval(self) -> float:
        """How often a node proposes a renew: L/4."""
        return self.duration / 4

    @property
    def hold(self) -> float:
        """How long a committed renew keeps the lease, on the holder's clock: L*(1-rho)."""
        return self.duration * (1 - self.rho)

    @property
    def takeover_wait(self) -> float:
        """How long the leader waits on its clock before a takeover: L*(1+rho)."""
        return self.duration * (1 + self.rho)


def lease_expiry(config: LeaseConfig, renew_sent: float | None) -> float | None:
    """Local time at which the lease from a committed renew sent at ``renew_sent`` ends."""
    return None if renew_sent is None else renew_sent + config.hold


def holds(config: LeaseConfig, renew_sent: float | None, now: float) -> bool:
    """True if a lease whose last committed renew was sent at ``renew_sent`` holds at ``now``.

    The lease interval is half-open, ``[renew_sent, renew_sent + hold)``; a renew sent in the
    future (a clock that jumped back) does not extend it beyond its own end.
    """
    expiry = lease_expiry(config, renew_sent)
    return expiry is not None and now < expiry


def takeover_due(
    config: LeaseConfig, last_renew_applied: float | None, elected: float, now: float
) -> bool:
    """True if the leader may reassign a node's segments at ``now`` (all on the leader's clock).

    ``last_renew_applied`` is when the leader applied that node's latest renew (None if never
    since it became leader); ``elected`` is when it became leader.
    """
    since = elected if last_renew_applied is None else max(last_renew_applied, elected)
    return now - since >= config.takeover_wait


def remaining(config: LeaseConfig, renew_sent: float | None, now: float) -> float:
    """Seconds of lease left at ``now`` (0 if none)."""
    expiry = lease_expiry(config, renew_sent)
    return 0.0 if expiry is None else max(0.0, expiry - now)
