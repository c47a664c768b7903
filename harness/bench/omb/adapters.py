"""Clients of each benchmarked system, as the driver's producers and consumers use them.

The driver's worker processes run asyncio, not trio: the peers' own client libraries (redis-py's
asyncio client, nats-py) are asyncio-native, and one event-loop framework per process is simpler
than bridging two. Every adapter offers the same four calls — connect, publish (returns when the
system acknowledged), receive (a batch of payloads, empty when nothing is there), close — and every
payload starts with the publish time (CLOCK_MONOTONIC ns, shared by all processes on the host),
so the consumer measures end-to-end latency. A topic is prepared (created, with its consumer group
or durable consumer) once by the coordinator before any worker connects, as OMB's driver creates
its topics before a test.

- ``walrus``: the Walrus protocol (our node, the original Walrus, the null server): pipelined
  ``PUT`` per message; ``GET`` consumes from the topic's shared cursor, many in flight, backing off
  a moment on ``EMPTY``.
- ``redis``: Redis Streams, ``XADD`` and a consumer group (``XREADGROUP`` + ``XACK``).
- ``nats``: NATS JetStream, ``publish`` waiting for the stream's ack, a durable pull consumer with
  explicit acks.
- ``amqp``: RabbitMQ, a durable quorum queue: persistent publishes on a confirm-mode channel, each
  waiting for its confirm; a consumer with manual acks and a prefetch of 200, acknowledging what it
  took in one ``basic.ack`` with ``multiple``.
"""

import asyncio
import contextlib
import struct
import time
from abc import ABC, abstractmethod
from collections import deque

LENGTH = struct.Struct("<I")


def payload(size: int, producer: int, seq: int) -> bytes:
    """A message of ``size`` bytes starting with its publish time (and unique)."""
    head = b"%019d-%d-%d-" % (time.monotonic_ns(), producer, seq)
    return head + b"x" * max(0, size - len(head))


def sent_at(message: bytes) -> int:
    """The publish time a payload carries (0 if it carries none)."""
    try:
        return int(message[:19])
    except ValueError:
        return 0


class Adapter(ABC):
    """One connection's worth of a system's client."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection."""

    @abstractmethod
    async def prepare(self) -> None:
        """Create what the topic needs (connected first; run once per topic by the coordinator
        before any producer or consumer starts, as OMB creates its topics)."""

    @abstractmethod
    async def publish(self, data: bytes) -> None:
        """Publish one message; return once the system acknowledged it (raise if it failed)."""

    @abstractmethod
    async def receive(self) -> list[bytes]:
        """Consume what is there (up to a batch); an empty list if nothing is."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection."""


class PublishError(Exception):
    """The system refused or failed a publish or a fetch (counted, never fatal to a worker)."""


class _Pipe:
    """A pipelined Walrus-protocol connection: requests in order, replies matched in order.

    When the connection is lost (a node killed under a nemesis), every request waiting on it
    fails and the next call connects again, to the next of the cluster's addresses; a failed
    connect fails that call and holds the next attempt back a moment, so a cluster that is down
    costs a few errors a second, not a flood."""

    RETRY_S = 0.2

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        self._addresses = addresses
        self._next = 0
        self._waiting: deque[asyncio.Future] = deque()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        self._out = bytearray()

    async def _ensure(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._retry_at - loop.time()))
            host, port = self._addresses[self._next % len(self._addresses)]
            try:
                reader, self._writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                self._next += 1
                self._retry_at = loop.time() + self.RETRY_S
                raise PublishError(f"cannot connect to {host}:{port}: {exc.strerror}") from None
            self._task = asyncio.create_task(self._read(reader, self._writer))
            return self._writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (n,) = LENGTH.unpack(await reader.readexactly(4))
                body = await reader.readexactly(n)
                fut = self._waiting.popleft()
                if not fut.done():  # a GET abandoned at close
                    fut.set_result(body)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            self._out.clear()  # requests of the futures failed below
            self._next += 1
            while self._waiting:
                fut = self._waiting.popleft()
                if not fut.done():
                    fut.set_exception(PublishError(f"connection lost: {exc}"))

    async def open(self) -> None:
        """Connect now (rather than at the first call)."""
        await self._ensure()

    async def call(self, body: bytes) -> bytes:
        """Send one request; its reply. Requests made in one turn of the event loop go out in
        one write (as nats-py's and redis-py's pipelines batch theirs), not a system call each."""
        await self._ensure()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiting.append(fut)
        if not self._out:
            loop.call_soon(self._flush)
        self._out += LENGTH.pack(len(body))
        self._out += body
        return await fut

    def _flush(self) -> None:
        if self._out and self._writer is not None and not self._writer.is_closing():
            self._writer.write(bytes(self._out))
        self._out.clear()

    async def close(self) -> None:
        """Close the connection."""
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


class WalrusAdapter(Adapter):
    """PUT and GET over the Walrus protocol."""

    def __init__(
        self, addresses: list[tuple[str, int]], topic: str, gets_in_flight: int = 64
    ) -> None:
        self._pipe = _Pipe(addresses)
        self._topic = topic.encode()
        self._most = gets_in_flight
        self._gets = 1
        self._outstanding: deque[asyncio.Future] = deque()

    async def connect(self) -> None:
        """Connect (to the first address: the topic's leader when it is known)."""
        await self._pipe.open()

    async def prepare(self) -> None:
        """REGISTER the topic."""
        reply = await self._pipe.call(b"REGISTER " + self._topic)
        if reply != b"OK":
            raise PublishError(f"REGISTER {self._topic.decode()}: {reply[:200]!r}")

    async def publish(self, data: bytes) -> None:
        """PUT."""
        reply = await self._pipe.call(b"PUT " + self._topic + b" " + data)
        if reply != b"OK":
            raise PublishError(reply[:200].decode(errors="replace"))

    async def receive(self) -> list[bytes]:
        """Keep GETs outstanding (the node serves waiting GETs of a topic as one batch); the
        entries of those that have answered, waiting for the oldest. The number outstanding
        doubles while every GET finds an entry, up to ``gets_in_flight``, and halves on ``EMPTY``,
        so a consumer at the tail polls with one GET instead of flooding the node."""
        call = self._pipe.call
        while len(self._outstanding) < self._gets:
            self._outstanding.append(asyncio.ensure_future(call(b"GET " + self._topic)))
        await asyncio.wait([self._outstanding[0]])
        replies = []
        while self._outstanding and self._outstanding[0].done():
            fut = self._outstanding.popleft()
            failed = fut.exception()
            replies.append(b"ERR %s" % str(failed).encode() if failed else fut.result())
        got = [r[3:] for r in replies if r.startswith(b"OK ")]
        if len(got) == len(replies):
            self._gets = min(self._most, self._gets * 2)
        else:
            self._gets = max(1, self._gets // 2)
        errors = [r for r in replies if r.startswith(b"ERR")]
        if errors and not got:
            raise PublishError(errors[0][:200].decode(errors="replace"))
        return got

    async def close(self) -> None:
        """Close."""
        for fut in self._outstanding:
            fut.cancel()
        await self._pipe.close()


class RedisAdapter(Adapter):
    """Redis Streams: XADD; XREADGROUP and XACK in the group ``bench``."""

    def __init__(self, host: str, port: int, topic: str, consumer: str = "c") -> None:
        self._host, self._port, self._topic, self._consumer = host, port, topic, consumer

    async def connect(self) -> None:
        """Connect."""
        import redis.asyncio as aioredis

        self._r = aioredis.Redis(host=self._host, port=self._port)

    async def prepare(self) -> None:
        """Create the stream and its consumer group if missing."""
        from redis.exceptions import ResponseError

        try:
            await self._r.xgroup_create(self._topic, "bench", id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def publish(self, data: bytes) -> None:
        """XADD."""
        from redis.exceptions import RedisError

        try:
            await self._r.xadd(self._topic, {b"p": data})
        except RedisError as exc:
            raise PublishError(str(exc)) from None

    async def receive(self) -> list[bytes]:
        """XREADGROUP up to 100 entries (waiting at most 5 ms), then XACK them."""
        from redis.exceptions import RedisError

        try:
            got = await self._r.xreadgroup("bench", self._consumer, {self._topic: ">"}, 100, 5)
            if not got:
                return []
            entries = got[0][1]
            await self._r.xack(self._topic, "bench", *(eid for eid, _ in entries))
        except RedisError as exc:
            raise PublishError(str(exc)) from None
        return [fields[b"p"] for _, fields in entries]

    async def close(self) -> None:
        """Close."""
        await self._r.aclose()


async def quiet(exc: Exception) -> None:
    """nats-py's error callback: its default prints a traceback; a failed publish or fetch is
    counted where it happens, and a server not up yet is retried by whoever waits for it."""


class NatsAdapter(Adapter):
    """NATS JetStream: publish with the stream's ack; a durable pull consumer, explicit acks."""

    def __init__(self, servers: list[str], topic: str, replicas: int) -> None:
        self._servers, self._topic, self._replicas = servers, topic, replicas

    async def connect(self) -> None:
        """Connect."""
        import nats

        self._nc = await nats.connect(
            servers=self._servers,
            connect_timeout=5,
            error_cb=quiet,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
        )
        self._js = self._nc.jetstream(timeout=10)
        self._sub = None

    async def prepare(self) -> None:
        """Create the stream and its durable consumer, and wait until a replicated stream has
        elected its leader (JetStream's API times out while its meta group is busy: retried
        for up to a minute)."""
        import nats.errors
        from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        config = StreamConfig(name=self._topic, subjects=[self._topic], num_replicas=self._replicas)
        while True:
            try:
                await self._js.add_stream(config)
                info = await self._js.stream_info(self._topic)
                if info.cluster is None or info.cluster.leader or self._replicas == 1:
                    consumer = ConsumerConfig(durable_name="bench", ack_policy=AckPolicy.EXPLICIT)
                    await self._js.add_consumer(self._topic, consumer)
                    return
            except nats.errors.TimeoutError:
                pass
            if loop.time() > deadline:
                raise PublishError(f"JetStream did not make stream {self._topic} within 60 s")
            await asyncio.sleep(0.2)

    async def publish(self, data: bytes) -> None:
        """Publish and wait for the ack."""
        try:
            await self._js.publish(self._topic, data)
        except Exception as exc:
            raise PublishError(str(exc)) from None

    async def receive(self) -> list[bytes]:
        """Fetch up to 100 messages (waiting at most 20 ms), acking each."""
        import nats.errors

        if self._sub is None:
            self._sub = await self._js.pull_subscribe_bind("bench", stream=self._topic)
        try:
            messages = await self._sub.fetch(100, timeout=0.02)
        except (TimeoutError, nats.errors.TimeoutError):  # nothing there in time
            return []
        for m in messages:
            await m.ack()
        return [m.data for m in messages]

    async def close(self) -> None:
        """Close."""
        await self._nc.close()


class AmqpAdapter(Adapter):
    """RabbitMQ through aiormq: confirmed publishes; ``basic.consume`` with a prefetch. A lost
    connection fails the calls waiting on it; the next call connects again, to the next node."""

    PREFETCH = 200

    def __init__(self, addresses: list[tuple[str, int]], topic: str) -> None:
        self._urls = [f"amqp://guest:guest@{host}:{port}/" for host, port in addresses]
        self._next = 0
        self._topic = topic
        self._got: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._conn = None
        self._channel = None
        self._consuming = False
        self._lock = asyncio.Lock()

    async def _ensure(self):
        async with self._lock:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            import aiormq

            await self.close()
            url = self._urls[self._next % len(self._urls)]
            try:
                self._conn = await asyncio.wait_for(aiormq.connect(url), 5)
                self._channel = await self._conn.channel(publisher_confirms=True)
            except Exception as exc:
                self._next += 1
                await asyncio.sleep(0.2)
                raise PublishError(f"cannot connect to {url}: {exc}") from None
            self._consuming = False
            self._got = asyncio.Queue()
            return self._channel

    async def connect(self) -> None:
        """Connect and open a confirm-mode channel."""
        await self._ensure()

    async def prepare(self) -> None:
        """Declare the topic's durable quorum queue."""
        channel = await self._ensure()
        await channel.queue_declare(self._topic, durable=True, arguments={"x-queue-type": "quorum"})

    async def publish(self, data: bytes) -> None:
        """Publish persistent, and wait for the confirm."""
        from aiormq import spec

        channel = await self._ensure()
        try:
            await channel.basic_publish(
                data, routing_key=self._topic, properties=spec.Basic.Properties(delivery_mode=2)
            )
        except Exception as exc:
            raise PublishError(str(exc) or type(exc).__name__) from None

    async def receive(self) -> list[bytes]:
        """What the consumer was handed (waiting at most 5 ms), acknowledged at once."""
        channel = await self._ensure()
        try:
            if not self._consuming:
                await channel.basic_qos(prefetch_count=self.PREFETCH)
                await channel.basic_consume(self._topic, self._take, no_ack=False)
                self._consuming = True
            try:
                first = await asyncio.wait_for(self._got.get(), 0.005)
            except TimeoutError:
                return []
            taken = [first]
            while not self._got.empty():
                taken.append(self._got.get_nowait())
            await channel.basic_ack(max(tag for tag, _ in taken), multiple=True)
        except PublishError:
            raise
        except Exception as exc:
            raise PublishError(str(exc) or type(exc).__name__) from None
        return [body for _, body in taken]

    async def _take(self, message) -> None:
        self._got.put_nowait((message.delivery.delivery_tag, message.body))

    async def close(self) -> None:
        """Close the connection (what was taken and not acknowledged is requeued)."""
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)
