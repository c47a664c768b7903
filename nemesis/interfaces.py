"""What the faults need of a cluster and of the history, as Protocols, and the shape of a
degraded link, which the faults ask for and the backends give.

``nemesis/`` imports nothing from ``harness/``: the harness's clusters and its history recorder
satisfy these by their shape, and the harness imports the nemesis, one direction only.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class LinkShape:
    """How a link is degraded: seconds of delay and of jitter (either way), bytes per second (0:
    unlimited), the probabilities that a packet is lost, sent twice, or held back ``hold``
    seconds (packet backends only). The default shape changes nothing."""

    delay: float = 0.0
    jitter: float = 0.0
    rate: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    hold: float = 0.0

    @property
    def queued(self) -> bool:
        """True if packets must pass a user-space delayer (delay, jitter or reordering)."""
        return self.delay > 0 or self.jitter > 0 or self.reorder > 0

    @property
    def packets_only(self) -> bool:
        """True if only a packet backend can do this (a stream proxy cannot)."""
        return self.loss > 0 or self.duplicate > 0 or self.reorder > 0

    def merged(self, other: "LinkShape") -> "LinkShape":
        """Both at once: the tighter rate, the larger of everything else."""
        rates = [r for r in (self.rate, other.rate) if r > 0]
        return LinkShape(
            max(self.delay, other.delay),
            max(self.jitter, other.jitter),
            min(rates, default=0.0),
            max(self.loss, other.loss),
            max(self.duplicate, other.duplicate),
            max(self.reorder, other.reorder),
            max(self.hold, other.hold),
        )


Slowed = dict[str, tuple[set[int], LinkShape]]
"""What each active link fault asked for: its nodes and its shape, by fault name."""


def shape_between(slowed: Slowed, a: int, b: int) -> LinkShape:
    """The shape of the link between nodes ``a`` and ``b``: every fault touching either,
    merged."""
    shape = LinkShape()
    for touched, slow in slowed.values():
        if a in touched or b in touched:
            shape = shape.merged(slow)
    return shape


class Event(Protocol):
    """One recorded history event, as the faults read it."""

    type: str
    f: str
    topic: str | None
    extra: dict[str, Any]


class History(Protocol):
    """The history being recorded: its events so far, and a way to add one."""

    @property
    def events(self) -> Sequence[Event]:
        """The events recorded so far."""
        ...

    def record(
        self,
        process: int | str,
        type_: str,
        f: str,
        topic: str | None = None,
        value: object = None,
        **extra: object,
    ) -> object:
        """Append an event."""
        ...

    def now(self) -> int:
        """The history's clock: nanoseconds since it began."""
        ...


class Target(Protocol):
    """The cluster under test, as far as faults act on it."""

    nodes: list[int]

    async def alive(self, node: int) -> bool:
        """Whether the node's process runs."""
        ...

    def client_address(self, node: int) -> tuple[str, int]:
        """Where the node serves clients."""
        ...

    async def leader(self, topic: str) -> int | None:
        """The node leading ``topic`` now, as the system under test says; None if no node
        answers."""
        ...

    async def kill(self, node: int) -> None:
        """SIGKILL it."""
        ...

    async def restart(self, node: int) -> None:
        """Start it again."""
        ...

    async def lose_unsynced(self, node: int) -> dict[str, object]:
        """SIGKILL it and lose what its disk had not made durable; what was lost."""
        ...

    async def rot(self, node: int, rng: random.Random) -> dict[str, object]:
        """Flip a bit in data the (killed) node had stored, where its system keeps it; what was
        done."""
        ...

    async def pause(self, node: int) -> None:
        """SIGSTOP it."""
        ...

    async def resume(self, node: int) -> None:
        """SIGCONT it."""
        ...

    async def partition(self, grudge: dict[int, set[int]]) -> None:
        """Cut the links the grudge names."""
        ...

    async def heal(self) -> None:
        """Restore every link."""
        ...

    async def slow_links(self, fault: str, nodes: list[int], shape: LinkShape) -> None:
        """As ``fault``, give every link touching ``nodes`` this shape (no nodes: stop)."""
        ...

    async def set_clock(self, node: int, offset: float, rate: float) -> None:
        """Skew the node's clock."""
        ...

    def data_dir(self, node: int) -> Path:
        """The node's data directory."""
        ...
