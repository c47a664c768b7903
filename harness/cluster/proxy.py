"""Link proxies: every node-to-node connection passes through one, so a partition is a real
TCP-level black hole without touching the nodes.

One ``LinkProxy`` per ordered pair (source, target) and service (RPC, Raft): the source node is
told to reach the target at the proxy's address. A system whose nodes pass each other's addresses
around (Redis's Sentinels and replicas announce one address per node) cannot be told a route per
peer, so it gets one proxy per target and service, shared by every source: each node sends from
a loopback address of its own (``harness.systems.base.source_host``) and the proxy tells the
sender by it; a connection from any other address (the harness's clients) is never cut or slowed.

Bytes flowing towards a node that cannot hear the
other side are read and discarded — the connection stays open and silent, as through a cut cable
— and the connection is marked tainted. Healing closes every tainted connection: its stream lost
bytes and can never be trusted again; the nodes reconnect. (So does any change of partition.)

A proxy can also slow its link (``set_shape``): every chunk it reads is delivered ``delay``
later, plus or minus up to ``jitter`` (in order, never before the chunk ahead of it: a TCP
stream keeps its order), and no faster than ``rate`` bytes per second. Reading and delivering
are separate tasks, so a delay delays without also capping throughput. A TCP proxy cannot drop,
duplicate or reorder packets — the stream below it would repair them — so those faults are the
Docker backend's.

Each proxy also counts, per direction and per second of CLOCK_MONOTONIC, the bytes it carried
and the bytes a partition dropped: the run's message diagram (which link carried what, and when
it was cut) is drawn from that.
"""

import math
import random
import time
from collections import Counter

import trio

from harness.cluster.base import Grudge
from nemesis.interfaces import LinkShape


class LinkProxy:
    """Forwards connections from node ``source`` to node ``target``'s address; with ``source``
    None, from whichever node ``sources`` names by the connection's source address."""

    def __init__(
        self,
        source: int | None,
        target: int,
        target_addr: tuple[str, int],
        service: str = "",
        sources: dict[str, int] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.service = service
        self._sources = sources or {}
        self._carried: dict[tuple[int, int], Counter[int]] = {}
        self._dropped: dict[tuple[int, int], Counter[int]] = {}
        self._target_addr = target_addr
        self._grudge: Grudge = {}
        self._tainted: set[trio.CancelScope] = set()
        self._live: set[trio.CancelScope] = set()
        self.port = 0
        self._scope = trio.CancelScope()
        self._shapes: dict[int | None, LinkShape] = {}
        self._rng = random.Random()

    def set_shape(self, shape: LinkShape, source: int | None = None) -> None:
        """Slow the link from ``source`` (default: this proxy's) both ways from now on;
        ``LinkShape()`` restores it."""
        self._shapes[self.source if source is None else source] = shape

    def set_grudge(self, grudge: Grudge) -> None:
        """The partition now in force (an empty one heals). Connections that lost bytes under
        the old one are closed: their streams can never be trusted again."""
        self._grudge = grudge
        for scope in self._tainted:
            scope.cancel()
        self._tainted.clear()

    def traffic(self) -> list[dict[str, object]]:
        """Bytes carried and dropped per direction, by second of CLOCK_MONOTONIC."""
        out: list[dict[str, object]] = []
        pairs = {*self._carried, *self._dropped}
        if self.source is not None:
            pairs |= {(self.source, self.target), (self.target, self.source)}
        for sender, receiver in sorted(pairs):
            carried = self._carried.get((sender, receiver), Counter())
            dropped = self._dropped.get((sender, receiver), Counter())
            out.append(
                {
                    "from": sender,
                    "to": receiver,
                    "service": self.service,
                    "carried": {str(k): v for k, v in sorted(carried.items())},
                    "dropped": {str(k): v for k, v in sorted(dropped.items())},
                }
            )
        return out

    def _blocked(self, sender: int | None, receiver: int | None) -> bool:
        return receiver is not None and sender in self._grudge.get(receiver, ())

    async def serve(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on a free local port (``self.port``) and forward until ``close()``."""
        with self._scope:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners)

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._scope.cancel()

    async def _handle(self, inbound: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._live.add(scope)
            source = self.source
            if source is None:
                source = self._sources.get(inbound.socket.getpeername()[0])
            try:
                outbound = await trio.open_tcp_stream(*self._target_addr)
            except OSError:
                await inbound.aclose()
                return
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, inbound, outbound, source, self.target, scope)
                    nursery.start_soon(self._pump, outbound, inbound, self.target, source, scope)
            finally:
                self._live.discard(scope)
                self._tainted.discard(scope)
                with trio.CancelScope(shield=True):
                    await inbound.aclose()
                    await outbound.aclose()

    async def _pump(
        self,
        src: trio.SocketStream,
        dst: trio.SocketStream,
        sender: int | None,
        receiver: int | None,
        scope: trio.CancelScope,
    ) -> None:
        """Read from ``src`` and queue for ``dst``; a connection from outside the cluster
        (sender or receiver None) is neither cut, slowed nor counted."""
        outside = sender is None or receiver is None
        dropped: Counter[int] = Counter()
        if sender is not None and receiver is not None:
            dropped = self._dropped.setdefault((sender, receiver), dropped)
        source = receiver if sender == self.target else sender
        send, receive = trio.open_memory_channel[tuple[float, bytes]](math.inf)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver, receive, dst, sender, receiver, scope)
            try:
                async with send:
                    while data := await src.receive_some(65536):
                        if self._blocked(sender, receiver):
                            self._tainted.add(scope)
                            dropped[time.monotonic_ns() // 1_000_000_000] += len(data)
                            continue
                        shape = LinkShape() if outside else self._shapes.get(source, LinkShape())
                        wait = shape.delay + self._rng.uniform(-shape.jitter, shape.jitter)
                        send.send_nowait((trio.current_time() + max(0.0, wait), data))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                scope.cancel()
        scope.cancel()  # the source closed and everything it sent was delivered

    async def _deliver(
        self,
        chunks: trio.MemoryReceiveChannel[tuple[float, bytes]],
        dst: trio.SocketStream,
        sender: int | None,
        receiver: int | None,
        scope: trio.CancelScope,
    ) -> None:
        """Send each chunk when it is due, at most ``rate`` bytes a second."""
        outside = sender is None or receiver is None
        carried: Counter[int] = Counter()
        if sender is not None and receiver is not None:
            carried = self._carried.setdefault((sender, receiver), carried)
        source = receiver if sender == self.target else sender
        try:
            async for due, data in chunks:
                await trio.sleep_until(due)
                await dst.send_all(data)
                carried[time.monotonic_ns() // 1_000_000_000] += len(data)
                rate = 0.0 if outside else self._shapes.get(source, LinkShape()).rate
                if rate > 0:
                    await trio.sleep(len(data) / rate)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            scope.cancel()
