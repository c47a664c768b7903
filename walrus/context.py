"""What the parts of a running node share: its view of the metadata, its lease, its peers."""

import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from walrus import lease, protocol
from walrus.clock import NodeClock
from walrus.config import NodeConfig
from walrus.events import EventLog
from walrus.metadata import Metadata, ProposalError, Published
from walrus.metastate import MetaView
from walrus.replication import Replication
from walrus.rpc import MAX_HOPS, PeerLink, envelope
from walrus.server import Deferred, Pending
from walrus.storage import Store

log = logging.getLogger("walrus.node")


@dataclass
class LeaseState:
    """This node's lease: when the renew behind it was sent (node time)."""

    config: lease.LeaseConfig
    renew_sent: float | None = None

    def holds(self, now: float) -> bool:
        """True if the lease holds at node time ``now``."""
        return lease.holds(self.config, self.renew_sent, now)


class Context:
    """Shared state of one node; lives on the trio thread."""

    def __init__(
        self,
        config: NodeConfig,
        clock: NodeClock,
        store: Store,
        events: EventLog,
        meta: Metadata,
        links: dict[int, PeerLink],
        data_links: dict[int, PeerLink],
    ) -> None:
        self.config = config
        self.me = config.node_id
        self.clock = clock
        self.store = store
        self.events = events
        self.meta = meta
        self.links = links
        self.data_links = data_links
        """A second connection to each peer for the data plane's own verbs (replication,
        sealing, repair): replies on a link come back in order, so a forwarded PUT waiting for
        its majority must never hold up the APPEND acknowledgement that majority needs."""
        self.lease = LeaseState(config.lease)
        self.rolling: set[tuple[str, int]] = set()
        """(topic, segment) being rolled over here: the writer adds and removes, the reader
        answers ``unavailable`` for them rather than EMPTY."""
        self.store_lost = False
        """This node's store was found empty after the node had joined the cluster (its disk
        was lost) and the metadata does not say so yet: until it does, the node neither
        appends, nor creates segments, nor hands out entries."""
        self.replication = Replication(self)
        self.pub: Published | None = None
        self.view_changed = trio.Event()
        self.nursery: trio.Nursery | None = None
        self._ids = itertools.count(1)
        self._incarnation = os.urandom(4).hex()

    @property
    def view(self) -> MetaView:
        """The latest metadata snapshot applied here."""
        assert self.pub is not None, "no metadata published yet"
        return self.pub.view

    def publish(self, pub: Published) -> None:
        """Take a new snapshot (called on the trio thread, in apply order)."""
        self.pub = pub
        self.view_changed.set()
        self.view_changed = trio.Event()

    async def wait_view_change(self, timeout: float) -> bool:
        """Wait for the next snapshot; False if none came within ``timeout``."""
        changed = self.view_changed
        with trio.move_on_after(timeout):
            await changed.wait()
            return True
        return False

    def request_id(self) -> str:
        """A request id unique across the cluster and this node's restarts."""
        return f"{self.me}-{self._incarnation}-{next(self._ids)}"

    def spawn(self, fn: Callable[..., Awaitable[bytes]], *args: object) -> Deferred:
        """Run ``fn(*args)`` in the background; its reply arrives in the returned Deferred."""
        reply = Deferred()

        async def run() -> None:
            try:
                reply.set(await fn(*args))
            except Exception:
                log.exception("request task failed")
                reply.set(b"ERR internal error (see the node log)")

        assert self.nursery is not None, "the node is not running"
        self.nursery.start_soon(run)
        return reply

    def background(self, fn: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run ``fn(*args)`` in the background, logging (never raising) its failure."""

        async def run() -> None:
            try:
                await fn(*args)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))

        assert self.nursery is not None, "the node is not running"
        self.nursery.start_soon(run)

    async def call(self, node: int, command: bytes, applied: int | None = None) -> bytes:
        """Send a data-plane command of this node's own to ``node``; its reply. ``node`` runs
        it once it has applied the metadata up to ``applied`` (default: all applied here)."""
        applied = self.view.applied if applied is None else applied
        return await self.data_links[node].call(envelope(0, applied, command)).reply()

    def forward(self, node: int, command: bytes, hops: int) -> Pending | bytes:
        """Send a command to ``node`` over node RPC; its reply is the reply."""
        if hops >= MAX_HOPS:
            return protocol.unavailable(
                f"routing loop: forwarded {hops} times, last to node {node}"
            )
        return self.links[node].call(envelope(hops + 1, self.view.applied, command))

    async def propose(self, command: str, *args: object) -> str:
        """Propose a metadata command with a fresh request id, retrying (with the same id, so
        it applies at most once) until it commits or ``proposal_timeout`` passes."""
        req = self.request_id()
        deadline = trio.current_time() + self.config.proposal_timeout
        definite = True
        delay = 0.05
        while True:
            left = deadline - trio.current_time()
            if left <= 0:
                raise ProposalError(
                    f"{command} not committed within {self.config.proposal_timeout:g} s",
                    definite,
                )
            try:
                return await self.meta.propose(command, *args, req, timeout=left)
            except ProposalError as exc:
                definite = definite and exc.definite
                await trio.sleep(min(delay, max(0.0, deadline - trio.current_time())))
                delay = min(delay * 2, 0.5)


def proposal_failure(exc: ProposalError) -> bytes:
    """The client reply for a proposal that did not commit."""
    return protocol.unavailable(str(exc)) if exc.definite else protocol.indeterminate(str(exc))
