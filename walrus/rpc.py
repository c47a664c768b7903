"""Node-to-node RPC: forwarded client commands and the cursor's ``POP``, over trio TCP.

The wire is the client protocol's framing (no pickle). Each request body is
``<hops> <applied> <command>``: how many times it was forwarded, how many metadata commands the
sender had applied when it decided to send it here (the receiver first catches up to that, so a
lagging receiver does not bounce the request back), and a client command or an internal one::

    HELLO <node> <fingerprint>   first frame of every connection: same cluster configuration?
    POP <topic> <segment> [tag]  hand out the next entry of a segment held here (the cursor),
                                 logging which GETX tag it went to

A ``PeerLink`` keeps one connection to a peer and pipelines every call over it; replies come back
in order. A call that was never sent (the peer could not be reached) fails definitely
(``ERR unavailable``); a call that was sent and whose answer is lost — the connection broke, or
no answer came within the timeout — fails as ``ERR indeterminate``: it may have happened. There
are no retries of non-idempotent calls.
"""

import logging
import math
from collections import deque
from dataclasses import dataclass

import trio

from walrus import protocol
from walrus.config import Address
from walrus.server import Deferred

log = logging.getLogger("walrus.rpc")

MAX_HOPS = 3
RETRY_AFTER = 1.0
"""Seconds during which calls to a peer that could not be reached fail at once."""
CONNECT_TIMEOUT = 1.0
"""Seconds to wait for a connection to a peer (a dead container's address never answers)."""


@dataclass
class _Call:
    body: bytes
    reply: Deferred
    deadline: float


def envelope(hops: int, applied: int, command: bytes) -> bytes:
    """The RPC request body for ``command``, forwarded ``hops`` times, sent by a node that had
    applied ``applied`` metadata commands."""
    return b"%d %d " % (hops, applied) + command


def open_envelope(body: bytes) -> tuple[int, int, bytes]:
    """(hops, applied, command) from an RPC request body."""
    parts = body.split(b" ", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise protocol.ProtocolError("ERR malformed node RPC request")
    return int(parts[0]), int(parts[1]), parts[2]


class PeerLink:
    """The calls from this node to one peer, over one pipelined connection."""

    def __init__(self, peer: int, target: Address, hello: bytes, timeout: float) -> None:
        self.peer = peer
        self._target = target
        self._hello = hello
        self._timeout = timeout
        self._send, self._receive = trio.open_memory_channel[_Call](math.inf)
        self.mismatch: str | None = None
        self._unreachable_until = -math.inf
        self._unreachable_why = ""
        """The peer's answer to our HELLO if it refused us (different cluster configuration)."""

    def call(self, body: bytes) -> Deferred:
        """Send an RPC request body (in call order); the reply arrives in the Deferred.

        For a short while after the peer could not be reached, calls fail at once instead of
        each waiting for a connection attempt to time out.
        """
        reply = Deferred()
        if trio.current_time() < self._unreachable_until:
            reply.set(protocol.unavailable(self._unreachable_why))
            return reply
        self._send.send_nowait(_Call(body, reply, trio.current_time() + self._timeout))
        return reply

    async def run(self) -> None:
        """Carry calls for as long as the node runs (connecting when there is work)."""
        while True:
            first = await self._receive.receive()
            try:
                with trio.fail_after(min(CONNECT_TIMEOUT, self._timeout)):
                    stream = await trio.open_tcp_stream(self._target.host, self._target.port)
            except (OSError, trio.TooSlowError) as exc:
                why = f"cannot reach node {self.peer} at {self._target} ({exc})"
                self._unreachable_until = trio.current_time() + RETRY_AFTER
                self._unreachable_why = why
                self._fail_queued(first, why)
                continue
            await self._carry(stream, first)

    def _fail_queued(self, first: _Call, why: str) -> None:
        first.reply.set(protocol.unavailable(why))
        while True:
            try:
                call = self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            call.reply.set(protocol.unavailable(why))

    async def _carry(self, stream: trio.SocketStream, first: _Call) -> None:
        self.mismatch = None
        inflight: deque[_Call] = deque()
        hello = _Call(self._hello, Deferred(), trio.current_time() + self._timeout)
        why = [f"no answer from node {self.peer} within {self._timeout:g} s"]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_replies, stream, inflight, hello, why, nursery)
                nursery.start_soon(self._watch_deadlines, inflight, nursery.cancel_scope)
                pending = [hello, first]
                while True:
                    out = bytearray()
                    for call in pending:
                        inflight.append(call)
                        out += protocol.frame(call.body)
                    await stream.send_all(out)
                    pending = [await self._receive.receive()]
                    while True:
                        try:
                            pending.append(self._receive.receive_nowait())
                        except trio.WouldBlock:
                            break
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            why[0] = f"lost the connection to node {self.peer} ({group.exceptions[0]})"
        finally:
            # A refused HELLO means the peer ran none of the calls behind it.
            fail = (
                protocol.unavailable
                if hello.reply.done() and self.mismatch
                else protocol.indeterminate
            )
            for call in inflight:
                call.reply.set(fail(why[0]))
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _read_replies(self, stream, inflight, hello, why, nursery) -> None:
        frames = protocol.FrameReader(limit=1 << 31)
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                why[0] = f"lost the connection to node {self.peer} ({exc})"
                nursery.cancel_scope.cancel()
                return
            if not data:
                why[0] = f"node {self.peer} closed the connection"
                nursery.cancel_scope.cancel()
                return
            frames.feed(data)
            for body in frames.frames():
                call = inflight.popleft()
                call.reply.set(body)
                if call is hello and body != protocol.OK:
                    self.mismatch = body.decode(errors="replace")
                    log.error("node %d refuses this node: %s", self.peer, self.mismatch)
                    why[0] = f"node {self.peer} refused this node: {self.mismatch}"
                    nursery.cancel_scope.cancel()
                    return

    @staticmethod
    async def _watch_deadlines(inflight: deque[_Call], scope: trio.CancelScope) -> None:
        while True:
            if inflight and trio.current_time() > inflight[0].deadline:
                scope.cancel()
                return
            await trio.sleep(0.05)
