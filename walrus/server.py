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
        """Wait for the reply."""
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


async def serve_connection(
    stream: trio.abc.Stream,
    dispatch: Dispatch,
    max_frame: int = protocol.MAX_FRAME,
    stall_timeout: float = STALL_TIMEOUT,
) -> None:
    """Serve one connection until the peer closes it (or breaks the framing)."""
    send, receive = trio.open_memory_channel[list[bytes | Pending]](MAX_PENDING)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write_replies, stream, receive)
            async with send:
                await _read_requests(stream, dispatch, send, max_frame, stall_timeout)
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the peer went away; nothing to answer
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await stream.aclose()


async def _read_requests(stream, dispatch, send, max_frame, stall_timeout) -> None:
    frames = protocol.FrameReader(max_frame)
    while True:
        if frames.partial:
            with trio.move_on_after(stall_timeout) as scope:
                data = await stream.receive_some(65536)
            if scope.cancelled_caught:
                await send.send(
                    [b"ERR incomplete frame: no data for %g s, closing" % stall_timeout]
                )
                return
        else:
            data = await stream.receive_some(65536)
        if not data:
            return
        frames.feed(data)
        batch: list[bytes | Pending] = []
        try:
            for body in frames.frames():
                batch.append(_dispatch(dispatch, body))
        except protocol.ProtocolError as exc:
            batch.append(exc.reply.encode() + b", closing")
            await send.send(batch)
            return
        if batch:
            await send.send(batch)


def _dispatch(dispatch: Dispatch, body: bytes) -> "bytes | Pending":
    if not body:
        return b"ERR invalid frame length 0"
    try:
        return dispatch(body)
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


async def _write_replies(stream, receive) -> None:
    out = bytearray()
    async with receive:
        while True:
            try:
                batch = receive.receive_nowait()
            except trio.WouldBlock:
                if out:
                    await stream.send_all(out)
                    out.clear()
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
                    item = await _reply(item)
                out += protocol.frame(item)
        if out:
            await stream.send_all(out)


async def serve_listeners(
    listeners: list[trio.SocketListener],
    make_dispatch: Callable[[], Dispatch],
    max_frame: int = protocol.MAX_FRAME,
) -> None:
    """Accept connections forever, each served by ``serve_connection`` with a dispatch function
    from ``make_dispatch()`` (so a connection may keep state, such as a completed handshake)."""

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await serve_connection(stream, make_dispatch(), max_frame)
        except Exception:
            log.exception("connection handler failed")

    await trio.serve_listeners(handler, listeners)
