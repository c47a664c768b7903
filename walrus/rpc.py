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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from walrus import auth, protocol
from walrus.auth import Seal
from walrus.config import Address, NodeConfig
from walrus.metastate import MetaView
from walrus.server import Deferred, Fatal, Pending, Session

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

    def __init__(
        self,
        peer: int,
        target: Address,
        me: int,
        fingerprint: str,
        key: bytes | None,
        timeout: float,
    ) -> None:
        self.peer = peer
        self._target = target
        self._me = me
        self._fingerprint = fingerprint
        self._key = key
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
        inflight: deque[_Call] = deque([first])
        frames = protocol.FrameReader(limit=1 << 31)
        why = [f"no answer from node {self.peer} within {self._timeout:g} s"]
        sent = False
        try:
            with trio.fail_after(self._timeout):
                seal = await self._handshake(stream, frames)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_replies, stream, frames, seal, inflight, why, nursery)
                nursery.start_soon(self._watch_deadlines, inflight, nursery.cancel_scope)
                pending = [first]
                inflight.clear()
                while True:
                    out = bytearray()
                    for call in pending:
                        inflight.append(call)
                        out += protocol.frame(call.body if seal is None else seal.seal(call.body))
                    sent = True
                    await stream.send_all(out)
                    pending = [await self._receive.receive()]
                    while True:
                        try:
                            pending.append(self._receive.receive_nowait())
                        except trio.WouldBlock:
                            break
        except* trio.TooSlowError:
            why[0] = f"node {self.peer} did not complete the handshake within {self._timeout:g} s"
        except* _Refused as group:
            self.mismatch = str(group.exceptions[0])
            log.error("node %d refuses this node: %s", self.peer, self.mismatch)
            why[0] = f"node {self.peer} refused this node: {self.mismatch}"
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            why[0] = f"lost the connection to node {self.peer} ({group.exceptions[0]})"
        finally:
            # Before the handshake completed, the peer ran none of the calls.
            fail = protocol.indeterminate if sent else protocol.unavailable
            for call in inflight:
                call.reply.set(fail(why[0]))
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _handshake(
        self, stream: trio.SocketStream, frames: protocol.FrameReader
    ) -> Seal | None:
        """HELLO, proving we hold the cluster secret (answering the peer's CHALLENGE) unless
        insecure; the seal for the frames that follow."""
        if self._key is None:
            await stream.send_all(protocol.frame(_hello(self._me, self._fingerprint)))
            reply = await _next_frame(stream, frames)
            if reply != protocol.OK:
                raise _Refused(reply.decode(errors="replace"))
            return None
        challenge = (await _next_frame(stream, frames)).decode(errors="replace").split(" ")
        if len(challenge) != 2 or challenge[0] != "CHALLENGE":
            raise _Refused(f"it does not authenticate (it sent {' '.join(challenge)[:60]!r})")
        try:
            server, client = bytes.fromhex(challenge[1]), auth.nonce()
        except ValueError:
            raise _Refused(f"its challenge is malformed ({challenge[1][:60]!r})") from None
        proof = auth.hello_proof(self._key, server, client, self._me, self._fingerprint)
        hello = _hello(self._me, self._fingerprint, f"{client.hex()} {proof}")
        await stream.send_all(protocol.frame(hello))
        welcome = (await _next_frame(stream, frames)).decode(errors="replace").split(" ")
        if len(welcome) != 2 or welcome[0] != "OK":
            raise _Refused(" ".join(welcome))
        if not auth.proven(auth.welcome_proof(self._key, server, client), welcome[1]):
            raise _Refused("its proof is wrong: it does not hold this cluster's secret")
        return auth.Seal(self._key, server, client, "client")

    async def _read_replies(
        self,
        stream: trio.SocketStream,
        frames: protocol.FrameReader,
        seal: Seal | None,
        inflight: deque[_Call],
        why: list[str],
        nursery: trio.Nursery,
    ) -> None:
        while True:
            for body in frames.frames():
                try:
                    reply = body if seal is None else seal.open(body)
                except auth.AuthError as exc:
                    why[0] = f"node {self.peer}'s reply failed authentication ({exc})"
                    nursery.cancel_scope.cancel()
                    return
                inflight.popleft().reply.set(reply)
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

    @staticmethod
    async def _watch_deadlines(inflight: deque[_Call], scope: trio.CancelScope) -> None:
        while True:
            if inflight and trio.current_time() > inflight[0].deadline:
                scope.cancel()
                return
            await trio.sleep(0.05)


class _Refused(Exception):
    """The peer refused the handshake, or failed to prove it holds the secret."""


def _hello(me: int, fingerprint: str, proof: str = "") -> bytes:
    return envelope(0, 0, f"HELLO {me} {fingerprint} {proof}".rstrip().encode())


async def _next_frame(stream: trio.SocketStream, frames: protocol.FrameReader) -> bytes:
    """The next whole frame from ``stream``."""
    while (body := frames.next_frame()) is None:
        data = await stream.receive_some(65536)
        if not data:
            raise trio.BrokenResourceError("the peer closed the connection")
        frames.feed(data)
    return body


class Guard:
    """The server side of one RPC connection: the handshake, then every frame checked and every
    reply sealed (unless the cluster runs insecure). ``handle(hops, applied, command)`` serves a
    request once its sender is proven."""

    def __init__(
        self,
        me: int,
        fingerprint: str,
        key: bytes | None,
        handle: Callable[[int, int, bytes], "bytes | Pending"],
    ) -> None:
        self._me = me
        self._fingerprint = fingerprint
        self._key = key
        self._handle = handle
        self._challenge = auth.nonce() if key is not None else None
        self._seal: Seal | None = None
        self._greeted = False

    def session(self) -> Session:
        """How the connection is served: our CHALLENGE first, when authenticated."""
        greeting = (
            None if self._challenge is None else b"CHALLENGE " + self._challenge.hex().encode()
        )
        return Session(self.dispatch, greeting)

    def dispatch(self, frame: bytes) -> "bytes | Pending":
        """One frame: the HELLO, or a request from a proven peer."""
        if not self._greeted:
            return self._hello(frame)
        if self._seal is None:
            return self._handle(*open_envelope(frame))
        try:
            body = self._seal.open(frame)
        except auth.AuthError as exc:
            log.error("node RPC frame refused: %s", exc)
            raise Fatal(f"ERR {exc}") from None
        seq = self._seal.next_out()
        result = self._handle(*open_envelope(body))
        if isinstance(result, bytes):
            return self._seal.seal(result, seq)
        return _Sealed(result, self._seal, seq)

    def _hello(self, frame: bytes) -> bytes:
        _, _, command = open_envelope(frame)
        parts = command.decode(errors="replace").split(" ")
        if parts[0] != "HELLO" or len(parts) not in (3, 5):
            raise Fatal("ERR node RPC connections start with HELLO")
        node, fingerprint = parts[1], parts[2]
        if fingerprint != self._fingerprint:
            log.error(
                "node %s connected with a different cluster configuration (its peers or "
                "--compat differ from ours); refusing it",
                node,
            )
            raise Fatal(
                f"ERR cluster mismatch: node {self._me} has configuration {self._fingerprint}, "
                f"node {node} has {fingerprint}; start every node with the same --peer list and "
                "--compat setting"
            )
        if self._key is None:
            self._greeted = True
            return protocol.OK
        if len(parts) != 5 or not node.isdigit():
            log.error("node %s connected without proving it holds the cluster secret", node)
            raise Fatal("ERR authentication required: this cluster runs with a secret")
        try:
            client = bytes.fromhex(parts[3])
        except ValueError:
            raise Fatal("ERR malformed HELLO nonce") from None
        challenge = self._challenge
        assert challenge is not None  # made with the key
        expected = auth.hello_proof(self._key, challenge, client, int(node), fingerprint)
        if not auth.proven(expected, parts[4]):
            log.error("node %s failed to prove it holds the cluster secret; refusing it", node)
            raise Fatal("ERR authentication failed: wrong cluster secret")
        self._greeted = True
        self._seal = Seal(self._key, challenge, client, "server")
        return b"OK " + auth.welcome_proof(self._key, challenge, client).encode()


class _Sealed(Pending):
    """A reply sealed, with the sequence number reserved for it, once it is ready."""

    __slots__ = ("_inner", "_seal", "_seq")

    def __init__(self, inner: Pending, seal: Seal, seq: int) -> None:
        self._inner, self._seal, self._seq = inner, seal, seq

    def done(self) -> bool:
        """True once the inner reply is."""
        return self._inner.done()

    async def reply(self) -> bytes:
        """The inner reply, sealed (an error too: the peer must be able to check it)."""
        try:
            body = await self._inner.reply()
        except Exception:
            log.exception("computing an RPC reply failed")
            body = b"ERR internal error (see the node log)"
        return self._seal.seal(body, self._seq)


CATCH_UP_TIMEOUT = 2.0
"""How long a forwarded request waits for this node to apply what its sender had applied."""


class Served(Protocol):
    """What the RPC server needs of the node (``walrus.context.Context`` has it)."""

    config: NodeConfig
    nursery: trio.Nursery | None

    @property
    def pub(self) -> object | None:
        """The latest metadata published here (None before the first)."""
        ...

    @property
    def view(self) -> MetaView:
        """The latest metadata snapshot applied here."""
        ...

    async def wait_view_change(self, timeout: float) -> bool:
        """Wait for the next snapshot; False if none came within ``timeout``."""
        ...

    def background(self, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run ``fn(*args)`` in the background."""
        ...


class RpcServer:
    """The node RPC port's side of the peer links: per connection, the peer proves itself
    (``Guard``), then its requests are served in order, each once this node has applied as much
    metadata as its sender had (requests behind a waiting one wait too)."""

    def __init__(self, ctx: Served, handle: Callable[[int, bytes], bytes | Pending]) -> None:
        self.ctx = ctx
        self._handle = handle

    def session(self) -> Session:
        """A new connection's session."""
        backlog: deque[tuple[int, int, bytes, Deferred]] = deque()
        ctx = self.ctx

        def handle(hops: int, applied: int, command: bytes) -> bytes | Pending:
            if not backlog and (ctx.pub is None or applied <= ctx.view.applied):
                return self._handle(hops, command)
            reply = Deferred()
            backlog.append((hops, applied, command, reply))
            if len(backlog) == 1:
                ctx.background(self._catch_up, backlog)
            return reply

        config = ctx.config
        return Guard(config.node_id, config.fingerprint(), config.rpc_key, handle).session()

    async def _catch_up(self, backlog: deque[tuple[int, int, bytes, Deferred]]) -> None:
        ctx = self.ctx
        while backlog:
            hops, applied, command, reply = backlog[0]
            deadline = trio.current_time() + CATCH_UP_TIMEOUT
            while (
                ctx.pub is None or ctx.view.applied < applied
            ) and trio.current_time() < deadline:
                await ctx.wait_view_change(deadline - trio.current_time())
            backlog.popleft()
            result = self._handle(hops, command)
            if isinstance(result, bytes):
                reply.set(result)
            else:
                assert ctx.nursery is not None, "the node is not running"
                ctx.nursery.start_soon(_relay, result, reply)


async def _relay(pending: Pending, reply: Deferred) -> None:
    reply.set(await pending.reply())
