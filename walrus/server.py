"""Serving framed connections: pipelined requests, replies in order, coalesced writes.

Each connection has a reader and a writer. The reader parses every complete frame of each read
and hands it to ``dispatch``, in order, which does whatever must happen in request order at once
(sequencing an append, queueing a read, sending a forward) and returns either the reply or a
``Pending`` one. The writer sends replies strictly in request order and gathers every reply that
is ready into one ``send_all``. A client that sends one request per connection, as Walrus's
scripts do, is served the same way.

Bad input never reaches the node's logic: a zero-length frame or invalid UTF-8 gets an ``ERR``
and the connection goes on; an oversized length, or a frame left half-sent for
``stall_timeout``, gets an ``ERR`` and the connection is closed, since the stream can no longer
be trusted.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from walrus import protocol

log = logging.getLogger("walrus.server")

STALL_TIMEOUT = 10.0
MAX_PENDING = 1024


class Pending:
    """A reply that will be ready later."""

    def done(self) -> bool:
        """True once ``reply`` would not block."""
        raise NotImplementedError

    async def reply(self) -> bytes:
        """The reply body."""
        raise NotImplementedError


class Deferred(Pending):
    """A reply someone else sets with ``set``."""

    __slots__ = ("_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value = b""

    def set(self, value: bytes) -> None:
        """Provide the reply (the first value wins)."""
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def done(self) -> bool:
        """True once set."""
        return self._event.is_set()

    async def reply(self) -> bytes:
        """Wait for the reply (at once, with no checkpoint, once it is set: the writer of
        replies checkpoints when it sends)."""
        if not self._event.is_set():
            await self._event.wait()
        return self._value


class Awaiting(Pending):
    """A reply computed by awaiting ``make()`` when the writer gets to it; ``ready()`` says
    whether that would return at once."""

    __slots__ = ("_make", "_ready")

    def __init__(self, make: Callable[[], Awaitable[bytes]], ready: Callable[[], bool]) -> None:
        self._make = make
        self._ready = ready

    def done(self) -> bool:
        """True if the awaited work has finished."""
        return self._ready()

    async def reply(self) -> bytes:
        """Await the work and format the reply."""
        return await self._make()


Dispatch = Callable[[bytes], "bytes | Pending"]


class Fatal(protocol.ProtocolError):
    """A request after which the connection cannot be trusted: its reply is sent, then the
    connection is closed (a node RPC frame that fails authentication, say)."""


@dataclass
class Session:
    """How one connection is served: its dispatch function (it may keep per-connection state,
    such as a completed handshake) and a frame to send before anything is read."""

    dispatch: Dispatch
    greeting: bytes | None = None


@dataclass(frozen=True)
class Limits:
    """What one stranger can cost a node: connections at once (when full, the connection idle
    longest — at least ``evict_idle`` seconds — makes room, else the newcomer is refused with an
    ERR), requests read ahead of their replies on one connection (reading waits beyond that),
    and seconds a connection may sit idle before it is closed."""

    max_connections: int = 1024
    max_outstanding: int = 256
    idle_timeout: float = 300.0
    evict_idle: float = 1.0


@dataclass(eq=False)
class _Conn:
    last_active: float
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    outstanding: int = 0
    drained: trio.Event = field(default_factory=trio.Event)


async def serve_connection(
    stream: trio.abc.Stream,
    dispatch: Dispatch,
    max_frame: int = protocol.MAX_FRAME,
    stall_timeout: float = STALL_TIMEOUT,
    greeting: bytes | None = None,
    limits: Limits = Limits(),
    conn: _Conn | None = None,
) -> None:
    """Serve one connection until the peer closes it (or breaks the framing, or idles)."""
    conn = conn or _Conn(trio.current_time())
    send, receive = trio.open_memory_channel[list[bytes | Pending]](MAX_PENDING)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write_replies, stream, receive, conn)
            async with send:
                if greeting is not None:
                    conn.outstanding += 1
                    await send.send([greeting])
                await _read_requests(stream, dispatch, send, max_frame, stall_timeout, limits, conn)
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the peer went away; nothing to answer
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await stream.aclose()


async def _read_requests(
    stream: trio.abc.Stream,
    dispatch: Dispatch,
    send: trio.MemorySendChannel[list[bytes | Pending]],
    max_frame: int,
    stall_timeout: float,
    limits: Limits,
    conn: _Conn,
) -> None:
    frames = protocol.FrameReader(max_frame)
    while True:
        while conn.outstanding >= limits.max_outstanding:
            conn.drained = trio.Event()
            await conn.drained.wait()
        if frames.partial:
            with trio.move_on_after(stall_timeout) as scope:
                data = await stream.receive_some(65536)
            if scope.cancelled_caught:
                conn.outstanding += 1
                await send.send(
                    [b"ERR incomplete frame: no data for %g s, closing" % stall_timeout]
                )
                return
        else:
            with trio.move_on_after(limits.idle_timeout) as idle:
                data = await stream.receive_some(65536)
            if idle.cancelled_caught:
                if conn.outstanding:
                    continue  # replies still owed: the peer is waiting, not idle
                conn.outstanding += 1
                await send.send([b"ERR idle for %g s, closing" % limits.idle_timeout])
                return
        if not data:
            return
        conn.last_active = trio.current_time()
        frames.feed(data)
        batch: list[bytes | Pending] = []
        try:
            for body in frames.frames():
                batch.append(_dispatch(dispatch, body))
        except protocol.ProtocolError as exc:
            batch.append(exc.reply.encode() + b", closing")
            conn.outstanding += len(batch)
            await send.send(batch)
            return
        if batch:
            conn.outstanding += len(batch)
            await send.send(batch)
            if isinstance(batch[-1], _Closing):
                return


class _Closing(bytes):
    """The reply to a Fatal request: the last thing sent on the connection."""


def _dispatch(dispatch: Dispatch, body: bytes) -> "bytes | Pending":
    if not body:
        return b"ERR invalid frame length 0"
    try:
        return dispatch(body)
    except Fatal as exc:
        return _Closing(exc.reply.encode() + b", closing")
    except protocol.ProtocolError as exc:
        return exc.reply.encode()
    except Exception:
        log.exception("request %r failed", body[:80])
        return b"ERR internal error (see the node log)"


async def _reply(item: Pending) -> bytes:
    try:
        return await item.reply()
    except Exception:
        log.exception("computing a reply failed")
        return b"ERR internal error (see the node log)"


async def _write_replies(
    stream: trio.abc.Stream, receive: trio.MemoryReceiveChannel[list[bytes | Pending]], conn: _Conn
) -> None:
    out = bytearray()
    written = 0
    async with receive:
        while True:
            try:
                batch = receive.receive_nowait()
            except trio.WouldBlock:
                if out:
                    await stream.send_all(out)
                    out.clear()
                    _written(conn, written)
                    written = 0
                try:
                    batch = await receive.receive()
                except trio.EndOfChannel:
                    break
            except trio.EndOfChannel:
                break
            for item in batch:
                if not isinstance(item, bytes):
                    if not item.done() and out:
                        await stream.send_all(out)
                        out.clear()
                        _written(conn, written)
                        written = 0
                    item = await _reply(item)
                out += protocol.frame(item)
                written += 1
        if out:
            await stream.send_all(out)
            _written(conn, written)


def _written(conn: _Conn, n: int) -> None:
    conn.outstanding -= n
    conn.last_active = trio.current_time()
    conn.drained.set()


async def serve_listeners(
    listeners: list[trio.SocketListener],
    make_session: Callable[[], Session],
    max_frame: int = protocol.MAX_FRAME,
    limits: Limits = Limits(),
) -> None:
    """Accept connections forever, each served by ``serve_connection`` with a fresh session
    from ``make_session()``, within ``limits``."""
    live: dict[_Conn, None] = {}

    async def handler(stream: trio.SocketStream) -> None:
        now = trio.current_time()
        if len(live) >= limits.max_connections:
            idlest = min(live, key=lambda c: c.last_active)
            if now - idlest.last_active < limits.evict_idle:
                with trio.move_on_after(1):
                    await stream.send_all(
                        protocol.frame(b"ERR too many connections (%d), try later" % len(live))
                    )
                await stream.aclose()
                return
            idlest.scope.cancel()
            live.pop(idlest, None)
        conn = _Conn(now)
        live[conn] = None
        session = make_session()
        try:
            with conn.scope:
                await serve_connection(
                    stream,
                    session.dispatch,
                    max_frame,
                    STALL_TIMEOUT,
                    session.greeting,
                    limits,
                    conn,
                )
        except Exception:
            log.exception("connection handler failed")
        finally:
            live.pop(conn, None)
            if conn.scope.cancelled_caught:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await stream.aclose()

    await trio.serve_listeners(handler, listeners)
