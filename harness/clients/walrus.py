"""Walrus's clients: what they send, and how each reply becomes a history entry.

Two dialects of the Walrus protocol, each a ``harness.clients.base.Client``:

- ``Extended``: this repository's node with its verifier extensions — ``PUTX`` answers where the
  entry landed and under which lease, ``GETX`` carries a tag the node logs with the entry it hands
  out; ``ERR indeterminate`` is the only error that may have taken effect.
- ``Plain``: what any Walrus speaks — ``PUT``/``GET`` and nothing else (black-box mode). Whether
  an ``ERR`` reply means the operation certainly did not happen depends on the implementation, so
  a plain dialect carries an ``ErrorTable``: each rule names a reply prefix that the system's code
  shows to be definite; every other error is recorded ``info`` (it may have happened), which is
  always sound and only costs the checkers precision.

Either way: no connection means ``fail`` (nothing was sent), a request sent without a reply in
time means ``info``.
"""

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import trio

from harness.clients.base import Client, Outcome, Session
from harness.history.delivery import EXACTLY_ONCE_IN_ORDER, Delivery
from walrus import protocol
from walrus.client import AsyncClient, DefiniteError, IndeterminateError, WalrusError


@dataclass(frozen=True)
class Rule:
    """Replies to ``f`` (put, get or * for both) starting with ``prefix`` certainly did not take
    effect; ``source`` says where the system's code shows it."""

    f: str
    prefix: str
    source: str


@dataclass(frozen=True)
class ErrorTable:
    """Which error replies are definite failures; everything else is ``info``."""

    name: str
    rules: tuple[Rule, ...]
    indeterminate: tuple[str, ...] = ()
    """Prefixes known to be indeterminate, checked first (documentation as much as code)."""

    def classify(self, f: str, reply: str) -> str:
        """``fail`` if a rule shows the operation did not happen, else ``info``."""
        if any(reply.startswith(p) for p in self.indeterminate):
            return "info"
        for rule in self.rules:
            if rule.f in (f, "*") and reply.startswith(rule.prefix):
                return "fail"
        return "info"


class WalrusSession(Session):
    """A pipelining connection to one Walrus node, speaking one dialect."""

    def __init__(self, speaks: "Walrus", address: tuple[str, int], timeout: float) -> None:
        self.speaks = speaks
        self.client = AsyncClient(address[0], address[1], timeout)

    async def __aenter__(self) -> "WalrusSession":
        await self.client.__aenter__()
        return self

    async def aclose(self) -> None:
        """Close the connection (every call in flight becomes indeterminate)."""
        await self.client.__aexit__(None, None, None)

    async def put(self, topic: str, value: str) -> Outcome:
        """Put in the dialect."""
        return await self.speaks.put(self.client, topic, value)

    async def get(self, topic: str, tag: str | None) -> Outcome:
        """Get in the dialect."""
        return await self.speaks.get(self.client, topic, tag)


class Walrus(Client):
    """A Walrus client: topics made with REGISTER, put and get in a dialect."""

    @property
    def delivery(self) -> Delivery:
        """Each entry once, in the topic's order."""
        return EXACTLY_ONCE_IN_ORDER

    def session(self, address: tuple[str, int], timeout: float) -> WalrusSession:
        """A pipelining session (it connects on first use)."""
        return WalrusSession(self, address, timeout)

    async def setup(self, address: tuple[str, int], topics: list[str], timeout: float) -> None:
        """REGISTER every topic (idempotent), retrying until ``timeout``."""
        try:
            with trio.fail_after(timeout):
                async with AsyncClient(address[0], address[1], timeout=5) as client:
                    for topic in topics:
                        while not await _registered(client, topic):
                            await trio.sleep(0.2)
        except trio.TooSlowError:
            raise RuntimeError(
                f"the topics could not be registered through {address[0]}:{address[1]} "
                f"within {timeout:g} s"
            ) from None

    @abstractmethod
    async def put(self, client: AsyncClient, topic: str, value: str) -> Outcome:
        """Put ``value`` on ``client``'s connection."""

    @abstractmethod
    async def get(self, client: AsyncClient, topic: str, tag: str | None) -> Outcome:
        """Get the next entry (value None for EMPTY) on ``client``'s connection."""


async def _registered(client: AsyncClient, topic: str) -> bool:
    """REGISTER ``topic``: False on an error reply or none."""
    try:
        await client.register(topic)
    except WalrusError:
        return False
    return True


class Extended(Walrus):
    """PUTX and tagged GETX: positions, nodes and epochs in the history."""

    black_box = False
    tags_gets = True

    async def put(self, client: AsyncClient, topic: str, value: str) -> Outcome:
        """PUTX."""
        try:
            placed = await client.putx(topic, value)
        except IndeterminateError as exc:
            return Outcome("info", extra={"error": str(exc)})
        except DefiniteError as exc:
            return Outcome("fail", extra={"error": str(exc)})
        return Outcome(
            "ok",
            value,
            {"pos": [placed.segment, placed.offset], "node": placed.node, "epoch": placed.epoch},
        )

    async def get(self, client: AsyncClient, topic: str, tag: str | None) -> Outcome:
        """GETX with the tag."""
        try:
            entry = await client.getx(topic, tag or "")
        except IndeterminateError as exc:
            return Outcome("info", extra={"error": str(exc)})
        except DefiniteError as exc:
            return Outcome("fail", extra={"error": str(exc)})
        if entry is None:
            return Outcome("ok")
        return Outcome(
            "ok",
            entry.payload.decode("utf-8", "replace"),
            {"pos": [entry.segment, entry.offset]},
        )


@dataclass(frozen=True)
class Plain(Walrus):
    """PUT and GET only; error replies classified by the system's table."""

    errors: ErrorTable
    black_box: ClassVar[bool] = True

    async def _request(self, client: AsyncClient, body: bytes) -> str | Outcome:
        try:
            return (await client.request(body)).decode("utf-8", "replace")
        except IndeterminateError as exc:
            return Outcome("info", extra={"error": str(exc)})
        except DefiniteError as exc:
            return Outcome("fail", extra={"error": str(exc)})

    def _error(self, f: str, reply: str) -> Outcome:
        if reply.startswith("ERR"):
            return Outcome(self.errors.classify(f, reply), extra={"error": reply[:300]})
        return Outcome("info", extra={"error": f"unexpected reply {reply[:120]!r}"})

    async def put(self, client: AsyncClient, topic: str, value: str) -> Outcome:
        """PUT."""
        reply = await self._request(client, protocol.Request("PUT", topic, value.encode()).encode())
        if isinstance(reply, Outcome):
            return reply
        return Outcome("ok", value) if reply == "OK" else self._error("put", reply)

    async def get(self, client: AsyncClient, topic: str, tag: str | None) -> Outcome:
        """GET (no tag: a plain node logs nothing we could resolve it with)."""
        reply = await self._request(client, f"GET {topic}".encode())
        if isinstance(reply, Outcome):
            return reply
        if reply == "EMPTY":
            return Outcome("ok")
        if reply == "OK" or reply.startswith("OK "):
            return Outcome("ok", reply[3:])
        return self._error("get", reply)


ANY_WALRUS = ErrorTable(
    "any Walrus",
    (
        Rule(
            "*",
            "ERR unknown topic",
            "every known implementation checks the topic in its metadata before doing anything",
        ),
    ),
)
"""For a cluster of unknown make: only ``ERR unknown topic`` is definite."""

WALRUS_PY = ErrorTable(
    "walrus-py",
    (Rule("*", "ERR ", "walrus/protocol.py: every ERR but 'ERR indeterminate' is definite"),),
    indeterminate=(f"ERR {protocol.INDETERMINATE}",),
)
"""This repository's node: its protocol promises that only ``ERR indeterminate`` may have taken
effect (walrus/protocol.py)."""
