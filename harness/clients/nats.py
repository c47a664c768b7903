"""NATS JetStream's client: a stream per topic, a durable pull consumer shared by every worker.

A put is a JetStream publish that waits for its PubAck (acknowledged = PubAck received), the
value as its ``Nats-Msg-Id`` so that the client library's own resend after a reconnect cannot
store it twice. A get asks the topic's durable consumer for one message without waiting
(``$JS.API.CONSUMER.MSG.NEXT`` with ``no_wait``), so that an empty topic is an answer (status
404) and not a timeout, then acknowledges it and waits for the server to say so (``ack_sync``).
The client is nats-py, the NATS maintainers' asyncio client, run on the process's asyncio loop
(``harness.clients.loop``).

Which outcomes are definite — the operation certainly did not happen — is ``PUBLISH_ERRORS`` and
``_get_outcome``, each with its source (nats-py 2.x and nats-server v2.9.10). Everything else
is ``info``. A delivered message whose acknowledgement failed or went unanswered is still a get
that returned its value (``ok``), recorded with ``ack`` = ``failed`` or ``unknown``: JetStream
will hand it out again, which its at-least-once delivery allows.
"""

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from harness.clients.base import Client, Outcome, Session, retrying
from harness.clients.loop import shared_loop
from harness.history.delivery import Delivery

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsConnection
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

STREAM_NOT_FOUND = 10059
"""JetStream's API error code for a stream that does not exist (nats-server errors.json)."""

CONSUMER = "harness"
"""The durable pull consumer every worker of a test reads each topic through."""


def at_least_once(ack_wait_s: float) -> Delivery:
    """What JetStream promises a durable pull consumer with explicit acks waiting ``ack_wait_s``
    for each ack."""
    return Delivery(
        False,
        "none",
        "NATS JetStream (docs.nats.io, 'Consumers'): a consumer with AckPolicy explicit hands a "
        "message out again when its ack has not arrived within AckWait (MaxDeliver unlimited by "
        "default); a message acknowledged with AckSync, whose ack the server confirmed, is not "
        "handed out again ('JetStream Model Deep Dive', exactly-once consumption); several "
        "clients pulling from one consumer, and redeliveries, promise no order between them",
        redelivery_s=ack_wait_s,
        acked_final=True,
    )


@dataclass(frozen=True)
class Definite:
    """Errors of a kind (by nats-py class name, or an API error code) that prove the publish
    was not stored; ``source`` says where that is shown."""

    name: str
    source: str


PUBLISH_ERRORS: tuple[Definite, ...] = (
    Definite(
        "NoStreamResponseError",
        "nats-py js/client.py publish: a 503 no-responders reply: no stream leader subscribed to "
        "the subject on the server, so nothing received the message",
    ),
    Definite(
        "ConnectionClosedError",
        "nats-py aio/client.py publish: raised before anything is written to the socket",
    ),
    Definite("ConnectionDrainingError", "nats-py aio/client.py: refused before sending"),
    Definite("OutboundBufferLimitError", "nats-py aio/client.py: refused before buffering"),
    Definite("MaxPayloadError", "nats-py aio/client.py: refused before sending"),
    Definite(
        "10077",
        "nats-server stream.go processJetStreamMsg: the store refused the message (a limit)",
    ),
    Definite("10063", "nats-server stream.go: expected sequence mismatch, skipped at apply"),
    Definite("10023", "nats-server jetstream_cluster.go: insufficient resources, not proposed"),
    Definite("10008", "nats-server: JetStream temporarily unavailable, the request not served"),
)
"""Publish errors that prove the message was not stored; any other error is ``info``."""

_DEFINITE = {d.name for d in PUBLISH_ERRORS}


def publish_outcome(exc: Exception) -> str:
    """``fail`` if ``exc`` (raised by a JetStream publish) proves nothing was stored, else
    ``info``."""
    if type(exc).__name__ in _DEFINITE:
        return "fail"
    code = getattr(exc, "err_code", None)
    return "fail" if code is not None and str(code) in _DEFINITE else "info"


class NatsSession(Session):
    """One nats-py connection to one server (never to another: servers do not advertise)."""

    def __init__(self, address: tuple[str, int], timeout: float) -> None:
        self.url = f"nats://{address[0]}:{address[1]}"
        self.timeout = timeout
        self.loop = shared_loop()
        self._nc: NatsConnection | None = None
        self._js: JetStreamContext | None = None

    async def connect(self) -> "NatsConnection":
        """The connection, opened (or opened again, once closed) within the session's timeout."""
        if self._nc is None or self._nc.is_closed:
            import nats

            async def quiet(*_: object) -> None:
                return None

            with trio.fail_after(self.timeout):  # nats-py retries a refused first connect
                self._nc = await self.loop.run(
                    lambda: nats.connect(
                        servers=[self.url],
                        connect_timeout=max(1, int(self.timeout)),
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                        dont_randomize=True,
                        error_cb=quiet,
                        disconnected_cb=quiet,
                        reconnected_cb=quiet,
                        closed_cb=quiet,
                    )
                )
            self._js = self._nc.jetstream(timeout=self.timeout)
        return self._nc

    async def put(self, topic: str, value: str) -> Outcome:
        """Publish and wait for the PubAck."""
        try:
            await self.connect()
        except Exception as exc:
            return Outcome("fail", extra={"error": f"cannot connect to {self.url}: {exc}"})
        js = self._js
        assert js is not None  # made with the connection
        try:
            ack = await self.loop.run(
                lambda: js.publish(
                    topic, value.encode(), timeout=self.timeout, headers={"Nats-Msg-Id": value}
                )
            )
        except Exception as exc:
            return Outcome(publish_outcome(exc), extra={"error": _describe(exc)})
        return Outcome(
            "ok", value, {"seq": ack.seq, **({"duplicate": True} if ack.duplicate else {})}
        )

    async def get(self, topic: str, tag: str | None) -> Outcome:
        """Take one message from the topic's durable consumer, then acknowledge it."""
        try:
            nc = await self.connect()
        except Exception as exc:
            return Outcome("fail", extra={"error": f"cannot connect to {self.url}: {exc}"})
        ask = json.dumps({"batch": 1, "no_wait": True}).encode()
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{topic}.{CONSUMER}"
        try:
            msg = await self.loop.run(lambda: _pull_one(nc, subject, ask, self.timeout))
        except Exception as exc:
            outcome = _get_outcome(exc)
            if outcome.type == "info" and await self._stream_gone(nc, topic):
                # The server says the stream does not exist: the topic holds nothing now.
                return Outcome("ok", extra={"stream": "not found", "error": _describe(exc)})
            return outcome
        status = (msg.headers or {}).get("Status")
        if status == "404":
            return Outcome("ok")  # no message pending for the consumer: the topic is empty now
        if status is not None:
            # 503 no responders (no consumer leader), 408 request timeout, 409 conflict: the
            # server says it handed out no message.
            return Outcome("fail", extra={"error": f"status {status} {msg.headers}"})
        value = msg.data.decode("utf-8", "replace")
        extra: dict[str, object] = _delivered(msg.reply)
        try:
            await self.loop.run(lambda: nc.request(msg.reply, b"", timeout=self.timeout))
        except Exception as exc:
            name = type(exc).__name__
            definite = name in ("NoRespondersError", "ConnectionClosedError")
            extra |= {"ack": "failed" if definite else "unknown", "ack_error": _describe(exc)}
        return Outcome("ok", value, extra)

    async def _stream_gone(self, nc: "NatsConnection", topic: str) -> bool:
        """Whether the server answers that ``topic``'s stream does not exist (JetStream API
        error 10059), asked after a request for a message went unanswered: a request to a
        consumer that no longer exists is taken by the server's subscription to ``$JS.API.>`` and
        dropped unanswered (nats-server v2.9.10 jetstream_api.go, ``apiDispatch``: no handler
        matches, "Shortcircuit"), so only this question tells a topic that is gone — every
        message in it lost — from a server that is slow."""
        ask = f"$JS.API.CONSUMER.INFO.{topic}.{CONSUMER}"
        try:
            reply = await self.loop.run(lambda: nc.request(ask, b"", timeout=self.timeout))
            error = json.loads(reply.data).get("error") or {}
        except Exception:
            return False
        return error.get("err_code") == STREAM_NOT_FOUND

    async def aclose(self) -> None:
        """Close the connection."""
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with trio.move_on_after(5):
                await self.loop.run(nc.close)


async def _pull_one(nc: "NatsConnection", subject: str, ask: bytes, timeout: float) -> "Msg":
    """Ask for one message on an inbox of its own and wait for the answer: a message, or a
    status. (Not ``nc.request``: JetStream delivers a message under its own subject, not the
    inbox's, so nats-py's shared request inbox would never match it to the request.)"""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, max_msgs=1)
    try:
        await nc.publish(subject, ask, reply=inbox)
        return await sub.next_msg(timeout=timeout)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def _get_outcome(exc: Exception) -> Outcome:
    """A get whose request for a message failed: no consumer leader (503, no responders) or a
    closed connection prove no message was handed to us; a timeout does not."""
    name = type(exc).__name__
    definite = name in ("NoRespondersError", "ConnectionClosedError", "ConnectionDrainingError")
    return Outcome("fail" if definite else "info", extra={"error": _describe(exc)})


def _delivered(reply: str) -> dict[str, object]:
    """The stream sequence and delivery count from a JetStream ack subject
    (``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>``)."""
    parts = reply.split(".")
    try:
        return {"seq": int(parts[5]), "deliveries": int(parts[4])}
    except (IndexError, ValueError):
        return {}


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class NatsJetStream(Client):
    """JetStream streams (file storage, ``replicas`` copies) and a durable pull consumer each."""

    replicas: int = 3
    ack_wait_s: float = 5.0
    """How long an unacknowledged message waits before JetStream hands it out again."""

    black_box: ClassVar[bool] = True

    @property
    def delivery(self) -> Delivery:
        """At least once, redelivered after ``ack_wait_s``, in no promised order."""
        return at_least_once(self.ack_wait_s)

    def session(self, address: tuple[str, int], timeout: float) -> NatsSession:
        """A session pinned to one server (it connects on first use)."""
        return NatsSession(address, timeout)

    async def setup(self, address: tuple[str, int], topics: list[str], timeout: float) -> None:
        """Create each topic's stream and durable consumer (idempotent), retrying until
        ``timeout``: JetStream answers only once its meta leader is elected."""
        session = NatsSession(address, 5.0)

        async def attempt() -> None:
            await session.loop.run(self._creator(await session.connect(), topics))

        await retrying(attempt, session, timeout, f"no streams made through {session.url}")

    def _creator(self, nc: Any, topics: list[str]) -> Callable[[], Awaitable[None]]:
        """What creates the topics' streams and consumers on ``nc``, to run on its loop."""
        return lambda: self._create(nc, topics)

    async def _create(self, nc: Any, topics: list[str]) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

        js = nc.jetstream(timeout=5.0)
        for topic in topics:
            await js.add_stream(
                StreamConfig(
                    name=topic,
                    subjects=[topic],
                    storage=StorageType.FILE,
                    num_replicas=self.replicas,
                )
            )
            await js.add_consumer(
                topic,
                ConsumerConfig(
                    durable_name=CONSUMER,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait_s,
                    max_ack_pending=-1,
                ),
            )
