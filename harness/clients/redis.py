"""Redis Streams' client: a stream per topic read through one consumer group, the primary found
through a Sentinel.

A session is pinned to one node's Sentinel, as an application is configured with a Sentinel
address: before each operation it asks that Sentinel where the primary is (``SENTINEL
get-master-addr-by-name``) and sends the operation there — so a client beside a primary cut off
from the Sentinels' majority keeps writing to it, as clients did in Jepsen's 2013 analysis. A put
is ``XADD`` (the value in field ``v``), acknowledged when the primary answers; with ``wait`` N it
is followed by ``WAIT N``, and counts as acknowledged only if N replicas confirmed it (fewer:
``info``, the primary has it and the replicas may not). A get first claims one entry that another
consumer was handed and has not acknowledged for ``CLAIM_MS`` (``XAUTOCLAIM``: a consumer that
died or lost its answer), else reads the group's next entry (``XREADGROUP ... >``), then
acknowledges it (``XACK``, which the primary answers). A group that is missing (a stream lost
whole by a failover) is created again from the stream's start, as an application's consumer does
when it starts.

The client is redis-py's asyncio client (``redis.asyncio``), run on the process's asyncio loop
(``harness.clients.loop``), with its retries off: every error reaches ``put_outcome`` and
``error_outcome``, each row with its source (Redis 7.0, redis-py 5). Everything else is ``info``.
"""

import contextlib
import functools
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import trio

from harness.clients.base import Client, Outcome, Session, retrying
from harness.clients.loop import shared_loop
from harness.history.delivery import Delivery

if TYPE_CHECKING:
    from redis.asyncio import Redis

MASTER = "walrus"
"""The name the Sentinels monitor the primary under."""

GROUP = "harness"
"""The consumer group every worker of a test reads each stream through."""

CLAIM_MS = 5000
"""An entry handed out and not acknowledged for this long is claimed by the next get."""

DEFINITE_REPLIES = ("READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING", "NOGROUP", "BUSYGROUP")
"""Error replies that mean the command was refused, not executed (Redis 7.0 server.c
``processCommand``: a write to a replica is refused with READONLY before it runs, a write the
``min-replicas`` setting stops with NOREPLICAS, a replica without its link with MASTERDOWN, a
node still loading its data with LOADING; t_stream.c: a missing group is NOGROUP)."""

_consumers = itertools.count(1)


def at_least_once(claim_ms: int) -> Delivery:
    """What a Redis Streams consumer group promises consumers that claim idle entries."""
    return Delivery(
        False,
        "none",
        "Redis 7.0 ('Redis Streams', consumer groups; XAUTOCLAIM; 'Replication'): an entry handed "
        "to a consumer stays pending until XACK and is handed to another by XAUTOCLAIM once idle "
        f"{claim_ms} ms; a consumer group's state (pending entries, acks, last delivered id) "
        "reaches the replicas asynchronously, so after a failover a confirmed XACK may be gone "
        "and the entry handed out again; claims and several consumers promise no order",
        redelivery_s=claim_ms / 1000 + 5,
        acked_final=False,
    )


def error_outcome(exc: BaseException) -> str:
    """``fail`` if ``exc`` proves the command did not run, else ``info``:

    - an error reply whose code is in ``DEFINITE_REPLIES`` (refused before it ran; redis-py
      raises ``ReadOnlyError`` for READONLY, ``BusyLoadingError`` for LOADING, and a
      ``ResponseError`` carrying the code for the others, ``_parsers/base.py``);
    - ``ConnectionError`` while connecting (redis-py ``connection.py``: "Error N connecting
      to ..."), before anything was sent;
    - anything else — a timeout, a connection lost after the command was sent — may have run.
    """
    from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, ResponseError

    if isinstance(exc, ReadOnlyError | BusyLoadingError):
        return "fail"
    if isinstance(exc, ResponseError):
        code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
        return "fail" if code in DEFINITE_REPLIES else "info"
    if isinstance(exc, ConnectionError) and "connecting to" in str(exc):
        return "fail"
    return "info"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class RedisSession(Session):
    """Operations sent to the primary that one node's Sentinel names."""

    def __init__(self, sentinel: tuple[str, int], timeout: float, wait: int) -> None:
        self.sentinel_address = sentinel
        self.timeout = timeout
        self.wait = wait
        self.consumer = f"c{next(_consumers)}"
        self.loop = shared_loop()
        self._sentinel: Redis | None = None
        self._primary: Redis | None = None
        self._primary_at: tuple[str, int] | None = None

    def _connect(self, address: tuple[str, int]) -> "Redis":
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        return Redis(
            host=address[0],
            port=address[1],
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    async def primary(self) -> tuple["Redis", tuple[str, int]]:
        """A connection to the primary this session's Sentinel names now."""
        if self._sentinel is None:
            self._sentinel = self._connect(self.sentinel_address)
        sentinel: Any = self._sentinel
        reply = await self.loop.run(
            lambda: sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        )
        if not reply:
            raise LookupError(f"the Sentinel knows no primary {MASTER!r}")
        at = (str(reply[0]), int(reply[1]))
        if at != self._primary_at or self._primary is None:
            await self._close_primary()
            self._primary, self._primary_at = self._connect(at), at
        return self._primary, at

    async def _locate(self) -> tuple["Redis", tuple[str, int]] | Outcome:
        try:
            return await self.primary()
        except Exception as exc:
            await self.aclose()
            return Outcome("fail", extra={"error": f"no primary: {_describe(exc)}"})

    async def put(self, topic: str, value: str) -> Outcome:
        """``XADD`` to the primary, then ``WAIT`` for ``wait`` replicas if asked."""
        located = await self._locate()
        if isinstance(located, Outcome):
            return located
        conn, at = located
        extra: dict[str, object] = {"primary": f"{at[0]}:{at[1]}"}
        try:
            entry = await self.loop.run(lambda: conn.xadd(topic, {"v": value}))
        except Exception as exc:
            outcome = error_outcome(exc)
            if outcome == "info":
                await self._close_primary()
            return Outcome(outcome, extra=extra | {"error": _describe(exc)})
        extra["id"] = entry
        if self.wait:
            wait_ms, untyped = int(self.timeout * 500), cast(Any, conn)
            try:
                replicas = await self.loop.run(
                    lambda: untyped.execute_command("WAIT", self.wait, wait_ms)
                )
            except Exception as exc:
                await self._close_primary()
                return Outcome("info", extra=extra | {"error": f"WAIT: {_describe(exc)}"})
            extra["replicas"] = replicas
            if int(replicas) < self.wait:
                return Outcome("info", extra=extra | {"error": f"WAIT: {replicas} replicas"})
        return Outcome("ok", value, extra)

    async def get(self, topic: str, tag: str | None) -> Outcome:
        """Claim an abandoned entry or read the next one, then ``XACK`` it."""
        located = await self._locate()
        if isinstance(located, Outcome):
            return located
        conn, at = located
        extra: dict[str, object] = {"primary": f"{at[0]}:{at[1]}"}
        try:
            found = await self.loop.run(lambda: self._next(conn, topic, extra))
        except Exception as exc:
            outcome = error_outcome(exc)
            if outcome == "info":
                await self._close_primary()
            return Outcome(outcome, extra=extra | {"error": _describe(exc)})
        if found is None:
            return Outcome("ok", extra=extra)
        entry, value = found
        extra["id"] = entry
        try:
            acked = await self.loop.run(lambda: conn.xack(topic, GROUP, entry))
            if int(acked) != 1:
                extra["ack"] = "failed"  # no longer pending here: a failover lost its delivery
        except Exception as exc:
            extra |= {"ack": "unknown", "ack_error": _describe(exc)}
            await self._close_primary()
        return Outcome("ok", value, extra)

    async def _next(
        self, conn: "Redis", topic: str, extra: dict[str, object]
    ) -> tuple[str, str] | None:
        """The entry this get takes (id, value), or None if the group has none to give."""
        from redis.exceptions import ResponseError

        try:
            claimed = await conn.xautoclaim(topic, GROUP, self.consumer, CLAIM_MS, "0-0", count=1)
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            await conn.xgroup_create(topic, GROUP, id="0", mkstream=True)
            extra["group"] = "created again"
            claimed = [None, [], []]
        entries: list[Any] = [e for e in claimed[1] if e and e[1]]
        if entries:
            extra["claimed"] = True
        else:
            read: Any = await conn.xreadgroup(GROUP, self.consumer, {topic: ">"}, count=1)
            entries = read[0][1] if read else []
        if not entries:
            return None
        entry, fields = entries[0]
        return str(entry), str(fields.get("v", ""))

    async def _close_primary(self) -> None:
        conn, self._primary, self._primary_at = self._primary, None, None
        if conn is not None:
            with trio.move_on_after(5), contextlib.suppress(Exception):
                await self.loop.run(lambda: conn.aclose())

    async def aclose(self) -> None:
        """Close both connections."""
        await self._close_primary()
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            with trio.move_on_after(5), contextlib.suppress(Exception):
                await self.loop.run(lambda: sentinel.aclose())


@dataclass(frozen=True)
class RedisStreams(Client):
    """A stream per topic with one consumer group; puts optionally followed by ``WAIT``."""

    wait: int = 0
    black_box: ClassVar[bool] = True

    @property
    def delivery(self) -> Delivery:
        """At least once, claimed after ``CLAIM_MS`` idle, in no promised order."""
        return at_least_once(CLAIM_MS)

    def session(self, address: tuple[str, int], timeout: float) -> RedisSession:
        """A session pinned to the Sentinel at ``address`` (it connects on first use)."""
        return RedisSession(address, timeout, self.wait)

    async def setup(self, address: tuple[str, int], topics: list[str], timeout: float) -> None:
        """Create each topic's stream and group on the primary (idempotent), retrying until
        ``timeout``."""
        session = RedisSession(address, 5.0, 0)

        async def attempt() -> None:
            conn, _ = await session.primary()
            await session.loop.run(functools.partial(_create_groups, conn, topics))

        await retrying(attempt, session, timeout, f"no streams made via the Sentinel at {address}")


async def _create_groups(conn: "Redis", topics: list[str]) -> None:
    """Each topic's stream and group, from its start; one that exists already is left as it is."""
    from redis.exceptions import ResponseError

    for topic in topics:
        try:
            await conn.xgroup_create(topic, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
