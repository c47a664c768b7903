"""RabbitMQ's client: a durable queue per topic, publisher confirms, ``basic.get`` and manual acks.

A put publishes the value through the default exchange to the topic's queue, persistent
(``delivery_mode`` 2), ``mandatory`` (so a message no queue took comes back instead of being
dropped), with the value as its ``message_id``, and waits for the broker's confirm
(acknowledged = ``basic.ack`` received). A get asks the queue for one message (``basic.get``,
manual ack): ``get-empty`` is a definite EMPTY; a message is acknowledged with ``basic.ack``,
which AMQP 0-9-1 never answers. A session whose operation went unanswered closes its connection,
so that the broker requeues whatever it handed out there, and opens a new one for the next.

The client is aiormq, the asyncio AMQP client under aio-pika: its frames (``Basic.Nack``,
``Basic.Return``, ``GetEmpty``) are plain to see and it neither reconnects nor republishes behind
our back; it runs on the process's asyncio loop (``harness.clients.loop``), where a trio
cancellation reaches it.

Which outcomes are definite is ``publish_outcome`` and ``get_outcome``, each row with its source
(RabbitMQ 3.10.8, aiormq 7.2). Everything else is ``info``.
"""

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from harness.clients.base import Client, Outcome, Session, retrying
from harness.clients.loop import shared_loop
from harness.history.delivery import Delivery

if TYPE_CHECKING:
    from aiormq.abc import AbstractChannel, AbstractConnection

QUEUE_TYPES = ("quorum", "mirrored")
"""``quorum``: a Raft queue (``x-queue-type: quorum``); ``mirrored``: a classic queue that the
system's ``ha-mode: all`` policy mirrors on every node."""

logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # each refused connect: our outcome says it

HEARTBEAT_S = 5
"""AMQP heartbeat: a connection the broker has not heard from in about two of these is closed,
and what was handed out on it and not acknowledged is requeued."""


def at_least_once(queue_type: str) -> Delivery:
    """What RabbitMQ promises a consumer that acknowledges by hand."""
    return Delivery(
        False,
        "none",
        "RabbitMQ 3.10 ('Consumer Acknowledgements and Publisher Confirms', 'Automatic "
        "requeueing'): a message handed out and not acknowledged when its channel or connection "
        "closes — or when heartbeats find the connection dead — is requeued and handed out again, "
        "so a consumer may see a message twice; basic.ack is never answered, so no ack is ever "
        f"known to have taken effect. Several consumers and requeues promise no order ({queue_type}"
        " queue).",
        redelivery_s=2 * HEARTBEAT_S + 5,
        acked_final=False,
    )


def publish_outcome(exc: BaseException, queue_type: str) -> str:
    """``fail`` if ``exc`` (raised by a publish awaiting its confirm) proves the message was not
    stored, else ``info``:

    - ``PublishError`` (``basic.return``, NO_ROUTE): no queue took it; the return comes before
      the confirm (rabbit_channel.erl, ``mandatory``);
    - ``ChannelInvalidStateError``: the channel was closed before anything was sent (aiormq
      channel.py, the lock's check);
    - ``DeliveryError`` (``basic.nack``) from a quorum queue: rabbit_fifo_client rejects only a
      message it never sent to the Raft log (no leader to register with, or an overflow
      reject-publish); from a classic or mirrored queue a nack may follow a master that had
      written it before a mirror died (rabbit_classic_queue.erl), so it proves nothing.
    """
    name = type(exc).__name__
    if name in ("PublishError", "ChannelInvalidStateError"):
        return "fail"
    if name == "DeliveryError":
        return "fail" if queue_type == "quorum" else "info"
    return "info"


def get_outcome(exc: BaseException) -> Outcome:
    """A get that raised: a closed channel before sending, or a queue that does not exist, are
    definite (nothing handed out; the latter also an empty topic); a queue whose home node is
    down is a definite failure; anything else (a timeout, a connection lost after sending) may
    have taken a message."""
    name, text = type(exc).__name__, str(exc)
    if name == "ChannelInvalidStateError":
        return Outcome("fail", extra={"error": _describe(exc)})
    if name == "ChannelNotFoundEntity":
        if "no queue" in text:  # rabbit_amqqueue: NOT_FOUND - no queue 'q' in vhost '/'
            return Outcome("ok", extra={"queue": "not found", "error": _describe(exc)})
        return Outcome("fail", extra={"error": _describe(exc)})  # home node down: not served
    return Outcome("info", extra={"error": _describe(exc)})


class RabbitSession(Session):
    """One AMQP connection, one confirm-mode channel, to one node."""

    def __init__(self, address: tuple[str, int], timeout: float, queue_type: str) -> None:
        self.url = f"amqp://guest:guest@{address[0]}:{address[1]}/?heartbeat={HEARTBEAT_S}"
        self.timeout = timeout
        self.queue_type = queue_type
        self.loop = shared_loop()
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    async def channel(self) -> "AbstractChannel":
        """The channel, opened (again) within the session's timeout."""
        if self._channel is None or self._channel.is_closed:
            await self.aclose()
            import aiormq

            with trio.fail_after(self.timeout):
                self._conn = conn = await self.loop.run(lambda: aiormq.connect(self.url))
                self._channel = await self.loop.run(lambda: conn.channel(publisher_confirms=True))
        return self._channel

    async def put(self, topic: str, value: str) -> Outcome:
        """Publish, persistent and mandatory, and wait for the confirm."""
        try:
            channel = await self.channel()
        except Exception as exc:
            return Outcome("fail", extra={"error": f"cannot connect: {_describe(exc)}"})
        from aiormq import spec

        properties = spec.Basic.Properties(delivery_mode=2, message_id=value)
        try:
            await self.loop.run(
                lambda: channel.basic_publish(
                    value.encode(),
                    routing_key=topic,
                    properties=properties,
                    mandatory=True,
                    timeout=self.timeout,
                )
            )
        except Exception as exc:
            outcome = publish_outcome(exc, self.queue_type)
            if outcome == "info":
                await self.aclose()
            return Outcome(outcome, extra={"error": _describe(exc)})
        return Outcome("ok", value)

    async def get(self, topic: str, tag: str | None) -> Outcome:
        """``basic.get`` one message, then ``basic.ack`` it."""
        try:
            channel = await self.channel()
        except Exception as exc:
            return Outcome("fail", extra={"error": f"cannot connect: {_describe(exc)}"})
        from aiormq import spec

        try:
            message = await self.loop.run(
                lambda: channel.basic_get(topic, no_ack=False, timeout=self.timeout)
            )
        except Exception as exc:
            outcome = get_outcome(exc)
            if outcome.type == "info":
                await self.aclose()  # the broker requeues what it handed out on it
            return outcome
        delivery = message.delivery
        if not isinstance(delivery, spec.Basic.GetOk):
            return Outcome("ok")  # GetEmpty
        value = message.body.decode("utf-8", "replace")
        extra: dict[str, object] = {"redelivered": bool(delivery.redelivered)}
        count = (message.header.properties.headers or {}).get("x-delivery-count")
        if isinstance(count, int):
            extra["deliveries"] = count + 1
        tag_ = delivery.delivery_tag or 0
        try:
            await self.loop.run(lambda: channel.basic_ack(tag_))
        except Exception as exc:
            extra |= {"ack": "unknown", "ack_error": _describe(exc)}
            await self.aclose()
        return Outcome("ok", value, extra)

    async def aclose(self) -> None:
        """Close the connection (its unacknowledged deliveries go back to their queues)."""
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with trio.move_on_after(5), contextlib.suppress(Exception):
                await self.loop.run(lambda: conn.close())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class RabbitMQ(Client):
    """A durable queue per topic, quorum or mirrored (the policy is the system's)."""

    queue_type: str = "quorum"
    black_box: ClassVar[bool] = True

    @property
    def delivery(self) -> Delivery:
        """At least once, requeued when a consumer's connection closes, in no promised order."""
        return at_least_once(self.queue_type)

    def session(self, address: tuple[str, int], timeout: float) -> RabbitSession:
        """A session pinned to one node (it connects on first use)."""
        return RabbitSession(address, timeout, self.queue_type)

    async def setup(self, address: tuple[str, int], topics: list[str], timeout: float) -> None:
        """Declare each topic's durable queue (idempotent), retrying until ``timeout``."""
        session = RabbitSession(address, 5.0, self.queue_type)
        arguments: dict[str, Any] = (
            {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}
        )

        async def attempt() -> None:
            channel = await session.channel()
            for topic in topics:
                declare = functools.partial(
                    channel.queue_declare, topic, durable=True, arguments=arguments
                )
                await session.loop.run(declare)

        await retrying(
            attempt, session, timeout, f"the queues could not be declared via {session.url}"
        )
