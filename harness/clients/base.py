"""What a workload needs of a system's clients, whatever the system: the client layer.

A test is a client, a database and checkers (as in Jepsen). The client is this module's
``Client``: how to set the topics up, how to open a ``Session`` with one node, and, in that
session, how a put (enqueue a value) and a get (dequeue one, acknowledged as the system needs)
go over the wire and end — ``ok``, ``fail`` (certainly did not happen, by the system's documented
semantics) or ``info`` (may have happened). The workload, the recorder, the drain and the
checkers never see a wire protocol; each system names its client, and each client states what its
system promises about delivery (``Delivery``), with the source, so the checkers judge it by that.
"""

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar

import trio

from harness.history.delivery import Delivery


@dataclass(frozen=True)
class Outcome:
    """How an operation ended: ``ok``, ``fail`` or ``info``; a get's value; fields to record."""

    type: str
    value: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Session(ABC):
    """One client's connection to one node; an async context manager that closes it."""

    @abstractmethod
    async def put(self, topic: str, value: str) -> Outcome:
        """Enqueue ``value`` (unique in the test) on ``topic``."""

    @abstractmethod
    async def get(self, topic: str, tag: str | None) -> Outcome:
        """Dequeue the next value of ``topic`` (value None: the topic had none), acknowledged as
        the system needs; ``tag`` names the get for the node's event log, if the client tags."""

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Close the connection."""


class Client(ABC):
    """How a system's clients talk to it."""

    black_box: ClassVar[bool]
    """True if its replies carry no positions and its nodes no event logs we can read."""
    tags_gets: ClassVar[bool] = False
    """True if a get carries a tag the node logs with what it hands out."""

    @property
    @abstractmethod
    def delivery(self) -> Delivery:
        """What the system promises about delivery (``harness.history.delivery``)."""

    @abstractmethod
    def session(self, address: tuple[str, int], timeout: float) -> Session:
        """A session with the node serving clients at ``address``; each operation that gets no
        answer within ``timeout`` seconds is ``info``. Connecting happens on first use, so a node
        that cannot be reached makes that operation ``fail``."""

    @abstractmethod
    async def setup(self, address: tuple[str, int], topics: list[str], timeout: float) -> None:
        """Create ``topics`` through the node at ``address`` (retrying definite failures until
        ``timeout``); RuntimeError if they cannot be."""


async def retrying(
    attempt: Callable[[], Awaitable[None]], session: Session, timeout: float, what: str
) -> None:
    """Run ``attempt`` (a topic set-up through ``session``) until it returns, closing the session
    after each try and waiting half a second after a failure; RuntimeError saying ``what`` failed,
    with the last error, once ``timeout`` has passed."""
    last = ""
    with trio.move_on_after(timeout):
        while True:
            try:
                await attempt()
                return
            except Exception as exc:
                last = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                with trio.CancelScope(shield=True):
                    await session.aclose()
            await trio.sleep(0.5)
    raise RuntimeError(f"{what}: {last}")
