"""Link proxies: every node-to-node connection passes through one, so a partition is a real
TCP-level black hole without touching the nodes.

One ``LinkProxy`` per ordered pair (source, target) and service (RPC, Raft): the source node is
told to reach the target at the proxy's address. Bytes flowing towards a node that cannot hear the
other side are read and discarded — the connection stays open and silent, as through a cut cable
— and the connection is marked tainted. Healing closes every tainted connection: its stream lost
bytes and can never be trusted again; the nodes reconnect. (So does any change of partition.)

Each proxy also counts, per direction and per second of CLOCK_MONOTONIC, the bytes it carried
and the bytes a partition dropped: the run's message diagram (which link carried what, and when
it was cut) is drawn from that.
"""

import time
from collections import Counter

import trio

from harness.cluster.base import Grudge


class LinkProxy:
    """Forwards connections from node ``source`` to node ``target``'s address."""

    def __init__(
        self, source: int, target: int, target_addr: tuple[str, int], service: str = ""
    ) -> None:
        self.source = source
        self.target = target
        self.service = service
        self._carried: dict[tuple[int, int], Counter] = {}
        self._dropped: dict[tuple[int, int], Counter] = {}
        self._target_addr = target_addr
        self._grudge: Grudge = {}
        self._tainted: set[trio.CancelScope] = set()
        self._live: set[trio.CancelScope] = set()
        self.port = 0
        self._scope = trio.CancelScope()

    def set_grudge(self, grudge: Grudge) -> None:
        """The partition now in force (an empty one heals). Connections that lost bytes under
        the old one are closed: their streams can never be trusted again."""
        self._grudge = grudge
        for scope in self._tainted:
            scope.cancel()
        self._tainted.clear()

    def traffic(self) -> list[dict]:
        """Bytes carried and dropped per direction, by second of CLOCK_MONOTONIC."""
        out = []
        for sender, receiver in ((self.source, self.target), (self.target, self.source)):
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

    def _blocked(self, sender: int, receiver: int) -> bool:
        return sender in self._grudge.get(receiver, ())

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
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
            try:
                outbound = await trio.open_tcp_stream(*self._target_addr)
            except OSError:
                await inbound.aclose()
                return
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        self._pump, inbound, outbound, self.source, self.target, scope
                    )
                    nursery.start_soon(
                        self._pump, outbound, inbound, self.target, self.source, scope
                    )
            finally:
                self._live.discard(scope)
                self._tainted.discard(scope)
                with trio.CancelScope(shield=True):
                    await inbound.aclose()
                    await outbound.aclose()

    async def _pump(self, src, dst, sender: int, receiver: int, scope: trio.CancelScope) -> None:
        carried = self._carried.setdefault((sender, receiver), Counter())
        dropped = self._dropped.setdefault((sender, receiver), Counter())
        try:
            while True:
                data = await src.receive_some(65536)
                if not data:
                    scope.cancel()
                    return
                second = time.monotonic_ns() // 1_000_000_000
                if self._blocked(sender, receiver):
                    self._tainted.add(scope)
                    dropped[second] += len(data)
                    continue
                await dst.send_all(data)
                carried[second] += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            scope.cancel()
