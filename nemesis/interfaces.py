"""What the faults need of a cluster and of the history, as Protocols.

``nemesis/`` imports nothing from ``harness/``: the harness's clusters and its history recorder
satisfy these by their shape, and the harness imports the nemesis, one direction only.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nemesis.link import LinkShape


class Event(Protocol):
    """One recorded history event, as the faults read it."""

    type: str
    f: str
    topic: str | None
    extra: dict


class History(Protocol):
    """The history being recorded: its events so far, and a way to add one."""

    events: list

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

    async def kill(self, node: int) -> None:
        """SIGKILL it."""
        ...

    async def restart(self, node: int) -> None:
        """Start it again."""
        ...

    async def lose_unsynced(self, node: int) -> dict:
        """SIGKILL it and lose what its disk had not made durable; what was lost."""
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

    async def slow_links(self, fault: str, nodes: list[int], shape: "LinkShape") -> None:
        """As ``fault``, give every link touching ``nodes`` this shape (no nodes: stop)."""
        ...

    async def set_clock(self, node: int, offset: float, rate: float) -> None:
        """Skew the node's clock."""
        ...

    def data_dir(self, node: int) -> Path:
        """The node's data directory."""
        ...
