"""Clients for the Walrus protocol: a blocking one and a pipelining trio one.

Both raise typed errors. ``DefiniteError`` (any ``ERR`` but ``ERR indeterminate``) means the
operation certainly did not happen; ``IndeterminateError`` means it may have: the node said so,
the connection broke after the request was sent, or no reply came in time. A verifier records
the first as ``fail`` and the second as ``info``.
"""

import socket
from collections import deque
from dataclasses import dataclass

import trio

from walrus import protocol
from walrus.protocol import JsonObject, parse_json_object


class WalrusError(Exception):
    """Base of every error the clients raise."""


class DefiniteError(WalrusError):
    """The node answered ``ERR ...``: the operation did not happen."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply

    @property
    def unknown_topic(self) -> bool:
        """True for ``ERR unknown topic``."""
        return self.reply.startswith("ERR unknown topic")


class IndeterminateError(WalrusError):
    """The operation may or may not have happened."""


@dataclass(frozen=True)
class Placed:
    """Where a PUTX landed: segment, offset, the node that acknowledged it, its epoch."""

    segment: int
    offset: int
    node: int
    epoch: int


@dataclass(frozen=True)
class Entry:
    """A GETX result: the payload and where it was stored."""

    segment: int
    offset: int
    payload: bytes


def check(reply: bytes) -> bytes:
    """Raise the typed error an ``ERR`` reply stands for; return other replies."""
    if reply.startswith(b"ERR"):
        text = reply.decode("utf-8", "replace")
        if text.startswith(f"ERR {protocol.INDETERMINATE}"):
            raise IndeterminateError(text)
        raise DefiniteError(text)
    return reply


def _put(command: str, topic: str, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return protocol.Request(command, topic, data).encode()


def parse_putx(reply: bytes) -> Placed:
    """``OK <segment> <offset> <node> <epoch>``."""
    parts = check(reply).split(b" ")
    if len(parts) != 5 or parts[0] != b"OK":
        raise WalrusError(f"unexpected PUTX reply {reply[:80]!r}")
    return Placed(*(int(p) for p in parts[1:]))


def parse_get(reply: bytes) -> bytes | None:
    """``OK <payload>`` → payload; ``EMPTY`` → None."""
    reply = check(reply)
    if reply == protocol.EMPTY:
        return None
    if reply == b"OK" or reply.startswith(b"OK "):
        return reply[3:]
    raise WalrusError(f"unexpected GET reply {reply[:80]!r}")


def parse_getx(reply: bytes) -> Entry | None:
    """``OK <segment> <offset> <payload>`` → Entry; ``EMPTY`` → None."""
    reply = check(reply)
    if reply == protocol.EMPTY:
        return None
    parts = reply.split(b" ", 3)
    if len(parts) < 3 or parts[0] != b"OK":
        raise WalrusError(f"unexpected GETX reply {reply[:80]!r}")
    return Entry(int(parts[1]), int(parts[2]), parts[3] if len(parts) == 4 else b"")


class Client:
    """A blocking client on one connection (reconnects after a failure)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._sock: socket.socket | None = None

    @classmethod
    def at(cls, addr: str, timeout: float = 10.0) -> "Client":
        """A client for ``host:port``."""
        host, _, port = addr.rpartition(":")
        return cls(host, int(port), timeout)

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv_exact(self, n: int) -> bytes:
        assert self._sock is not None  # connected by pipeline
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the node closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, body: bytes) -> bytes:
        """Send one request and return the raw reply (ERR included)."""
        return self.pipeline([body])[0]

    def pipeline(self, bodies: list[bytes]) -> list[bytes]:
        """Send many requests at once; the raw replies, in order."""
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.host, self.port), self.timeout)
            except OSError as exc:
                raise DefiniteError(
                    f"ERR cannot connect to {self.host}:{self.port}: {exc}"
                ) from None
            self._sock.settimeout(self.timeout)
        try:
            self._sock.sendall(b"".join(protocol.frame(b) for b in bodies))
            replies = []
            for _ in bodies:
                (n,) = protocol.LENGTH.unpack(self._recv_exact(4))
                replies.append(self._recv_exact(n))
            return replies
        except OSError as exc:
            self.close()
            raise IndeterminateError(
                f"connection to {self.host}:{self.port} failed: {exc}"
            ) from None

    def register(self, topic: str) -> None:
        """REGISTER a topic (idempotent)."""
        check(self.request(f"REGISTER {topic}".encode()))

    def put(self, topic: str, payload: bytes | str) -> None:
        """PUT a payload."""
        check(self.request(_put("PUT", topic, payload)))

    def putx(self, topic: str, payload: bytes | str) -> Placed:
        """PUTX a payload; where it landed."""
        return parse_putx(self.request(_put("PUTX", topic, payload)))

    def get(self, topic: str) -> bytes | None:
        """GET the next entry (None for EMPTY)."""
        return parse_get(self.request(f"GET {topic}".encode()))

    def getx(self, topic: str, tag: str = "") -> Entry | None:
        """GETX the next entry with its position (None for EMPTY); ``tag`` names the request in
        the node's event log."""
        return parse_getx(self.request(f"GETX {topic} {tag}".rstrip().encode()))

    def state(self, topic: str) -> JsonObject:
        """STATE of a topic."""
        return parse_json_object(check(self.request(f"STATE {topic}".encode())))

    def metrics(self) -> JsonObject:
        """METRICS of the node."""
        return parse_json_object(check(self.request(b"METRICS")))

    def scan(self, topic: str, segment: int, start: int = 0, count: int = 1000) -> JsonObject:
        """SCAN stored entries of a segment (non-destructive)."""
        return parse_json_object(
            check(self.request(f"SCAN {topic} {segment} {start} {count}".encode()))
        )


class _Waiter:
    __slots__ = ("deadline", "event", "value")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.event = trio.Event()
        self.value: bytes | Exception = b""


class AsyncClient:
    """A trio client that pipelines: concurrent calls share one connection, their requests are
    written together and replies matched in order. A call unanswered within ``timeout``, or a
    broken connection, fails every call in flight as indeterminate; the next call reconnects.
    Use it as an async context manager (it runs a reader task)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._stream: trio.SocketStream | None = None
        self._waiting: deque[_Waiter] = deque()
        self._out = bytearray()
        self._sending = False
        self._connect_lock = trio.Lock()
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> "AsyncClient":
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._fail_all("the client closed the connection")
        assert self._nursery is not None  # set by __aenter__
        self._nursery.cancel_scope.cancel()
        await self._nursery_cm.__aexit__(None, None, None)

    def _fail_all(self, why: str) -> None:
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.socket.close()
        self._out.clear()
        while self._waiting:
            waiter = self._waiting.popleft()
            waiter.value = IndeterminateError(why)
            waiter.event.set()

    async def _connect(self) -> trio.SocketStream:
        async with self._connect_lock:
            if self._stream is None:
                try:
                    with trio.fail_after(self.timeout):
                        stream = await trio.open_tcp_stream(self.host, self.port)
                except (OSError, trio.TooSlowError) as exc:
                    raise DefiniteError(
                        f"ERR cannot connect to {self.host}:{self.port}: {exc}"
                    ) from None
                self._stream = stream
                self._scope = trio.CancelScope()
                assert self._nursery is not None, "use AsyncClient as an async context manager"
                self._nursery.start_soon(self._serve, stream, self._scope)
            return self._stream

    async def _serve(self, stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, stream)
                frames = protocol.FrameReader(limit=1 << 31)
                try:
                    while True:
                        data = await stream.receive_some(65536)
                        if not data:
                            raise trio.BrokenResourceError("the node closed the connection")
                        frames.feed(data)
                        for body in frames.frames():
                            waiter = self._waiting.popleft()
                            waiter.value = body
                            waiter.event.set()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    if self._stream is stream:
                        self._fail_all(f"connection to {self.host}:{self.port} failed: {exc}")

    async def _watch(self, stream: trio.SocketStream) -> None:
        while self._stream is stream:
            if self._waiting and trio.current_time() > self._waiting[0].deadline:
                self._fail_all(f"no reply from {self.host}:{self.port} within {self.timeout:g} s")
                return
            await trio.sleep(0.1)

    async def request(self, body: bytes) -> bytes:
        """Send one request (pipelined with any others in flight); the raw reply."""
        stream = self._stream or await self._connect()
        waiter = _Waiter(trio.current_time() + self.timeout)
        self._waiting.append(waiter)
        self._out += protocol.frame(body)
        if not self._sending:
            self._sending = True
            try:
                while self._out and self._stream is stream:
                    data = bytes(self._out)
                    self._out.clear()
                    await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._fail_all(f"sending to {self.host}:{self.port} failed: {exc}")
            finally:
                self._sending = False
        await waiter.event.wait()
        if isinstance(waiter.value, Exception):
            raise waiter.value
        return waiter.value

    async def register(self, topic: str) -> None:
        """REGISTER a topic."""
        check(await self.request(f"REGISTER {topic}".encode()))

    async def put(self, topic: str, payload: bytes | str) -> None:
        """PUT a payload."""
        check(await self.request(_put("PUT", topic, payload)))

    async def putx(self, topic: str, payload: bytes | str) -> Placed:
        """PUTX a payload; where it landed."""
        return parse_putx(await self.request(_put("PUTX", topic, payload)))

    async def get(self, topic: str) -> bytes | None:
        """GET the next entry (None for EMPTY)."""
        return parse_get(await self.request(f"GET {topic}".encode()))

    async def getx(self, topic: str, tag: str = "") -> Entry | None:
        """GETX the next entry with its position (None for EMPTY); ``tag`` names the request in
        the node's event log."""
        return parse_getx(await self.request(f"GETX {topic} {tag}".rstrip().encode()))

    async def metrics(self) -> JsonObject:
        """METRICS of the node."""
        return parse_json_object(check(await self.request(b"METRICS")))

    async def state(self, topic: str) -> JsonObject:
        """STATE of a topic."""
        return parse_json_object(check(await self.request(f"STATE {topic}".encode())))
