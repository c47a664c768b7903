"""A Walrus node: its servers, its background duties, and the start-up and shutdown around them.

One process, one trio event loop (on node time, see ``walrus.clock``), plus the Raft thread
(``walrus.metadata``) and the storage engine's commit threads. The loop serves clients on the
client port and peers on the RPC port (``walrus.rpc``), each request routed by
``walrus.dispatch``, and runs the node's duties: renewing its lease and taking over the segments
of silent nodes when it leads Raft (``walrus.duties``), keeping local segments in step with the
metadata (``walrus.writes``), serving the shared cursor (``walrus.reads``), and, with
``--replicas`` above 1, copying the segments it leads to their followers
(``walrus.replication``).
"""

import contextlib
import errno
import gc
import json
import logging
import os
import signal
from pathlib import Path

import trio
from pysyncobj import SyncObjException

from walrus import protocol
from walrus.clock import NodeClock
from walrus.config import Address, ConfigError, NodeConfig
from walrus.context import Context
from walrus.dispatch import Dispatcher
from walrus.durable import atomic_write_json, make_dirs
from walrus.duties import LeaseDuties
from walrus.events import EVENT_LOG, EventLog
from walrus.metadata import Metadata, Published
from walrus.reads import Reader
from walrus.rpc import PeerLink, RpcServer
from walrus.segment_recovery import Recovery
from walrus.server import Session, serve_listeners
from walrus.storage import NODE_STORE, Store
from walrus.writes import Writer

log = logging.getLogger("walrus.node")


def check_data_dir(config: NodeConfig) -> None:
    """Create the data directory, or check that it belongs to this node of this cluster."""
    data = config.data_dir
    try:
        make_dirs(data)
    except OSError as exc:
        raise ConfigError(f"cannot use data directory {data}: {exc.strerror}") from None
    if not data.is_dir():
        raise ConfigError(f"data directory {data} is not a directory")
    identity = data / "node.json"
    expected = {"node_id": config.node_id, "cluster": config.fingerprint(), "compat": config.compat}
    if identity.exists():
        try:
            found = json.loads(identity.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{identity} is unreadable ({exc}); is {data} a node's data directory?"
            ) from None
        if found.get("node_id") != config.node_id:
            raise ConfigError(
                f"data directory {data} belongs to node {found.get('node_id')}, "
                f"not node {config.node_id}"
            )
        if found.get("cluster") != expected["cluster"]:
            raise ConfigError(
                f"data directory {data} was created for a different cluster (other peers or "
                f"--compat setting); start with that configuration or a fresh directory"
            )
    else:
        try:
            atomic_write_json(identity, expected)
        except OSError as exc:
            raise ConfigError(f"cannot write to data directory {data}: {exc.strerror}") from None


async def _listen(address: Address, what: str) -> list[trio.SocketListener]:
    try:
        return await trio.open_tcp_listeners(address.port, host=address.host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"{what} port {address} is already in use") from None
        raise ConfigError(f"cannot listen on {what} address {address}: {exc.strerror}") from None


class Node:
    """One running node."""

    def __init__(self, config: NodeConfig, clock: NodeClock) -> None:
        self.config = config
        self.clock = clock
        self.ctx: Context | None = None
        self.writer: Writer | None = None

    # --- start-up and shutdown -------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled, SIGINT or SIGTERM; then stop cleanly. Started (``task_status``)
        once it serves clients."""
        config = self.config
        # The store is made before the Raft journal on a first start: a journal without a
        # store is a node that lost its disk.
        store_lost = (
            not (config.data_dir / NODE_STORE).exists() and (config.data_dir / "raft").exists()
        )
        store = Store(config.data_dir / NODE_STORE, fsync=config.fsync)
        events = EventLog(config.data_dir / EVENT_LOG, config.node_id, self.clock)
        for note in store.recovery_notes:
            log.warning("storage recovery: %s", note)
        if events.trimmed:
            log.warning("event log: trimmed %d bytes of a line a crash cut short", events.trimmed)
        meta = None
        try:
            client_listeners = await _listen(config.me.client, "client")
            rpc_listeners = await _listen(config.me.rpc, "RPC")
            token = trio.lowlevel.current_trio_token()
            try:
                meta = Metadata(
                    config.node_id,
                    {p.id: str(p.raft) for p in config.peers.values()},
                    {nid: str(addr) for nid, addr in config.raft_routes.items()},
                    config.data_dir / "raft",
                    self.clock,
                    config.compat,
                    config.raft,
                    lambda pub: token.run_sync_soon(self._on_publish, pub),
                    events.record,
                    config.replicas,
                )
            except SyncObjException:
                raise ConfigError(f"Raft port {config.me.raft} is already in use") from None
            links, data_links = _links(config), _links(config)
            self.ctx = ctx = Context(config, self.clock, store, events, meta, links, data_links)
            ctx.store_lost = store_lost and not config.compat
            recovery = Recovery(ctx)
            self.writer = Writer(ctx, recovery)
            dispatch = Dispatcher(ctx, self.writer, Reader(ctx), recovery)
            events.record("start", compat=config.compat)
            async with trio.open_nursery() as nursery:
                ctx.nursery = nursery
                meta.start()
                for link in (*links.values(), *data_links.values()):
                    nursery.start_soon(link.run)
                nursery.start_soon(
                    serve_listeners,
                    client_listeners,
                    lambda: Session(dispatch.client),
                    protocol.MAX_FRAME,
                    config.limits,
                )
                rpc = RpcServer(ctx, dispatch.rpc)
                nursery.start_soon(serve_listeners, rpc_listeners, rpc.session)
                if ctx.store_lost:
                    log.warning("the store is empty but the Raft journal is not: disk lost")
                    nursery.start_soon(self.writer.declare_store_lost)
                if config.compat:
                    nursery.start_soon(self._compat_monitor_loop, ctx, self.writer)
                else:
                    duties = LeaseDuties(ctx, recovery)
                    nursery.start_soon(duties.renew_loop)
                    nursery.start_soon(duties.lease_watch)
                    nursery.start_soon(duties.leader_loop)
                nursery.start_soon(self._flush_events, events)
                nursery.start_soon(self._stop_on_signal, nursery.cancel_scope)
                if config.exit_with_parent:
                    nursery.start_soon(self._stop_with_parent, nursery.cancel_scope)
                log.info(
                    "node %d serving clients on %s (RPC %s, Raft %s)",
                    config.node_id,
                    config.me.client,
                    config.me.rpc,
                    config.me.raft,
                )
                # Everything made so far (numba, llvmlite, the modules: ~117,000 objects) lives
                # as long as the process. Left to the collector, each full pass walks all of it,
                # 50-70 ms with the loop stopped, about once a second under load: that pause was
                # the publish p99. Frozen, a full pass walks only what was made since.
                gc.freeze()
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                if meta is not None:
                    await trio.to_thread.run_sync(meta.stop)
                await trio.to_thread.run_sync(store.close)
                events.record("stop")
                events.close()

    @staticmethod
    async def _stop_on_signal(scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("stopping on %s", signal.Signals(signum).name)
                scope.cancel()
                return

    @staticmethod
    async def _stop_with_parent(scope: trio.CancelScope) -> None:
        parent = os.getppid()
        while os.getppid() == parent:
            await trio.sleep(0.5)
        log.info("stopping: the process that started this node is gone")
        scope.cancel()

    def _on_publish(self, pub: Published) -> None:
        if self.writer is not None:
            self.writer.follow(pub)

    # --- duties ----------------------------------------------------------------------------

    async def _flush_events(self, events: EventLog) -> None:
        while True:
            await trio.sleep(0.05)
            events.flush()

    async def _compat_monitor_loop(self, ctx: Context, writer: Writer) -> None:
        while True:
            await trio.sleep(self.config.monitor_interval)
            if ctx.pub is not None:
                await writer.compat_monitor()


def _links(config: NodeConfig) -> dict[int, PeerLink]:
    """One pipelined RPC connection to each peer."""
    return {
        nid: PeerLink(
            nid,
            config.rpc_target(nid),
            config.node_id,
            config.fingerprint(),
            config.rpc_key,
            config.forward_timeout,
        )
        for nid in config.peers
        if nid != config.node_id
    }


def run_node(config: NodeConfig) -> None:
    """Run a node in this process until SIGINT/SIGTERM (blocking)."""
    from walrus.clock import TrioClock

    check_data_dir(config)
    config = _fit_descriptors(config)
    clock = NodeClock(Path(config.data_dir) / "clock.ctl")
    trio.run(Node(config, clock).run, clock=TrioClock(clock))


FD_RESERVE = 256
"""File descriptors kept for everything but client connections: peers, Raft, segment files."""


def _fit_descriptors(config: NodeConfig) -> NodeConfig:
    """Raise the open-file limit to its hard limit and keep the connection cap under it, so that
    a flood of connections meets the cap (an ERR), never EMFILE in the middle of the node."""
    import dataclasses
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = soft - FD_RESERVE
    if config.limits.max_connections <= room:
        return config
    log.warning(
        "--max-connections %d does not fit the open-file limit %d: capped at %d",
        config.limits.max_connections,
        soft,
        max(1, room),
    )
    limits = dataclasses.replace(config.limits, max_connections=max(1, room))
    return dataclasses.replace(config, limits=limits)
