"""The catalogue: every fault a schedule can use, by name, and what ``--nemesis all`` means.

It imports every fault module and nothing imports it back but the schedule, so the faults depend
on ``nemesis.fault`` (the interface) and never on one another.
"""

from nemesis.clock import Clock, DriftUnsafe
from nemesis.disk import (
    BitRot,
    Disk,
    LoseUnsynced,
    LoseUnsyncedAll,
    LoseUnsyncedMajority,
    Wipe,
)
from nemesis.fault import Fault
from nemesis.link import Delay, Duplicate, Loss, Reorder, Throttle
from nemesis.partition import Partition
from nemesis.process import Kill, Pause

FAULTS: dict[str, type[Fault]] = {
    f.name: f
    for f in (
        Partition,
        Kill,
        Pause,
        Clock,
        Disk,
        DriftUnsafe,
        BitRot,
        LoseUnsynced,
        LoseUnsyncedAll,
        LoseUnsyncedMajority,
        Wipe,
        Delay,
        Throttle,
        Loss,
        Duplicate,
        Reorder,
    )
}
"""Every fault by name."""


POWER_LOSS = frozenset({"lose-unsynced", "lose-unsynced-all", "lose-unsynced-majority"})
"""The faults that need each node's data seen through losefs."""

ALL = ("partition", "kill", "pause", "clock", "disk")
"""What ``--nemesis all`` means: every fault a correct node must survive. ``drift-unsafe`` (a clock
beyond the drift bound) and ``bitrot`` (damage to synced data) are left out: they break the
node's assumptions on purpose; ``lose-unsynced`` (power loss) and its correlated forms
``lose-unsynced-all`` and ``lose-unsynced-majority`` too: they need FUSE and root; ``wipe`` (a
lost disk), which a node keeping one copy of a segment cannot survive; and the link faults
(``delay``, ``throttle``, ``loss``, ``duplicate``, ``reorder``), which degrade a run, and some
of which run on one backend only."""
