"""The metadata, replicated by pysyncobj: a thin shell around ``walrus.metastate``.

pysyncobj is used as a replicator only. It runs in one thread of its own (we tick it ourselves),
which applies committed commands to the ``MetaMachine`` and hands each new immutable snapshot
to the trio loop with ``TrioToken.run_sync_soon`` — in apply order, so the event loop never
sees a lease extension before the state it was committed after. Proposals from trio never
block: they pass a callback, which wakes a trio event, under a timeout.

pysyncobj's Raft comes through ``walrus.raft``, whose follower appends by Raft's rules (pysyncobj's
deletes entries it has applied). Settings: ``appendEntriesUseBatch=False`` (commit latency over
batching), a large ``connectionTimeout``, no fork for snapshots, a journal and a dump file so the
metadata survives restarts — the journal our own (``walrus.raft_journal``), synced before
pysyncobj answers what it backs, so it survives a power loss too. pysyncobj unpickles what
arrives on its port: its ``password`` option is exposed, and it binds to the address given,
never to every interface.

Every entry applied, every proposal this node is told committed, every truncation, refusal and
snapshot goes to the event log (``meta-*`` events, ``docs/events.md``): the metadata checker
holds the nodes' logs against each other from them.
"""

import collections
import contextlib
import hashlib
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, TypeVar, cast

import trio
from pysyncobj import FAIL_REASON, SyncObjConf, replicated
from pysyncobj.node import TCPNode

from walrus.clock import NodeClock
from walrus.durable import make_dirs
from walrus.metastate import MetaMachine, MetaView
from walrus.raft import Entry, Raft, use_clock
from walrus.raft_journal import durable_journal

log = logging.getLogger("walrus.metadata")

T = TypeVar("T")

# Outcomes after which the command certainly was not, and will not be, applied.
_DEFINITE = {
    FAIL_REASON.QUEUE_FULL,
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.REQUEST_DENIED,
}
_REASONS = {v: k for k, v in vars(FAIL_REASON).items() if k.isupper()}


class ProposalError(Exception):
    """A proposal that did not commit; ``definite`` says it never will."""

    def __init__(self, why: str, definite: bool) -> None:
        super().__init__(why)
        self.definite = definite


class RoutedNode(TCPNode):
    """A Raft peer known by its own address but reached at ``via`` (a proxy), if given.

    pysyncobj identifies peers by the address they announce, so the identity must stay the
    peer's real address even when the harness routes the connection through a link proxy.
    """

    via: str | None
    """The address to connect to instead (pysyncobj's Node keeps its keyword arguments)."""

    def __init__(self, address: str, via: str | None = None) -> None:
        super().__init__(address, via=via)

    @property
    def ip(self) -> str:
        """The address to connect to."""
        return self.via.rsplit(":", 1)[0] if self.via else super().ip

    @property
    def port(self) -> int:
        """The port to connect to."""
        return int(self.via.rsplit(":", 1)[1]) if self.via else super().port


@dataclass(frozen=True)
class Published:
    """What the event loop learns after each apply or leadership change."""

    view: MetaView
    raft_leader: int | None
    is_leader: bool
    elected_at: float | None
    renew_applied: dict[int, float]


@dataclass(frozen=True)
class RaftSettings:
    """pysyncobj timings (seconds) and secret."""

    min_timeout: float = 1.0
    max_timeout: float = 2.0
    heartbeat: float = 0.2
    connection_timeout: float = 10.0
    connection_retry: float = 1.0
    leader_fallback: float = 3.0
    password: str | None = None


class RaftStatus(TypedDict):
    """The Raft state a node reports (``Metadata.status``), gathered on the Raft thread."""

    state: int
    """pysyncobj's state: 0 follower, 1 candidate, 2 leader."""
    term: int
    leader: int | None
    commit_idx: int
    last_applied: int
    last_log_index: int
    match: dict[int, int | None]
    """Each peer's match index, as this node knows it (a leader's only)."""
    has_quorum: bool
    connected: dict[int, bool]


Record = Callable[..., None]
"""The event log's ``record(kind, **fields)``: callable from the Raft thread."""

DROPPED_LISTED = 20
"""Entries a ``meta-truncate`` event lists (its ``start`` and ``end`` cover them all)."""


def digest(command: bytes) -> str:
    """A log entry's command as 16 hex digits: enough to tell two commands apart."""
    return hashlib.blake2b(command, digest_size=8).hexdigest()


class Metadata(Raft):
    """The replicated metadata of one node. Construct it on the thread that runs trio."""

    def __init__(
        self,
        node_id: int,
        raft_addresses: dict[int, str],
        routes: dict[int, str],
        data_dir: Path,
        clock: NodeClock,
        compat: bool,
        settings: RaftSettings,
        publish: Callable[[Published], None],
        record: Record,
        replicas: int = 1,
    ) -> None:
        # Attributes set before SyncObj.__init__ are local, never part of a snapshot.
        self._node_id = node_id
        self._record = record
        self._applying: dict[str, object] = {}
        """The entry being applied: index, term, hash and command name (``on_apply``)."""
        self._ids = {addr: nid for nid, addr in raft_addresses.items()}
        self._clock = clock
        self._publish_to = publish
        self._renew_applied: dict[int, float] = {}
        self._elected_at: float | None = None
        self._last_published: tuple[object, int | None] = (None, None)
        self._status_requests: collections.deque[Callable[[RaftStatus], None]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick_loop, name="raft", daemon=True)
        use_clock(clock.now)
        make_dirs(data_dir)
        conf = SyncObjConf(
            autoTick=False,
            appendEntriesUseBatch=False,
            appendEntriesPeriod=settings.heartbeat,
            raftMinTimeout=settings.min_timeout,
            raftMaxTimeout=settings.max_timeout,
            connectionTimeout=settings.connection_timeout,
            connectionRetryTime=settings.connection_retry,
            leaderFallbackTimeout=settings.leader_fallback,
            commandsWaitLeader=False,
            journalFile=str(data_dir / "journal"),
            fullDumpFile=str(data_dir / "dump"),
            useFork=False,
            password=settings.password,
            bindAddress=raft_addresses[node_id],
            maxBindRetries=1,
            onStateChanged=self._on_state_changed,
            dynamicMembershipChange=False,
        )
        others = [
            RoutedNode(addr, routes.get(nid))
            for nid, addr in raft_addresses.items()
            if nid != node_id
        ]
        with durable_journal(data_dir / "dump"):
            super().__init__(raft_addresses[node_id], others, conf)
        # Walrus's node 1 bootstraps the metadata group and leads it first, and clients written
        # for Walrus read replication from node 1's METRICS: the lowest id stands for the first
        # election as soon as it hears a peer, the others only after a head start of
        # max_timeout. Timeouts decide only who stands for election, never what Raft commits,
        # so safety is untouched; later elections are pysyncobj's usual random ones.
        first = (
            settings.min_timeout / 4
            if node_id == min(raft_addresses)
            else settings.max_timeout + random.uniform(settings.min_timeout, settings.max_timeout)
        )
        self.set_election_deadline(clock.now() + first)
        self._machine = MetaMachine(sorted(raft_addresses), compat, replicas)
        self.addOnTickCallback(self._on_tick)

    # --- the raft thread -------------------------------------------------------------------

    def start(self) -> None:
        """Start ticking (in a thread of its own)."""
        self._thread.start()

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.doTick(0.05)
            except Exception:
                log.exception("raft tick failed")
                self._stop.wait(0.05)
        self.destroy()  # autoTick is off: closes the journal and sockets now

    def stop(self) -> None:
        """Stop ticking and close the journal and sockets; blocks until done."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _leader_id(self) -> int | None:
        leader = self.leader()
        return None if leader is None else self._ids.get(str(leader))

    def _publish(self) -> None:
        pub = Published(
            self._machine.view(),
            self._leader_id(),
            self.is_leader(),
            self._elected_at,
            dict(self._renew_applied),
        )
        self._last_published = (self._machine, pub.raft_leader)
        try:
            self._publish_to(pub)
        except Exception:
            log.exception("publishing the metadata failed")

    def _on_state_changed(self, old: int, new: int) -> None:
        if new == 2:  # leader
            self._elected_at = self._clock.now()
        self._publish()

    def _on_tick(self) -> None:
        # A snapshot install replaces the machine without applying anything; a follower's
        # leader can change without a state change of its own. Publish either.
        if self._last_published != (self._machine, self._leader_id()):
            self._publish()
        while self._status_requests:
            deliver = self._status_requests.popleft()
            try:
                deliver(self._raft_status())
            except Exception:
                log.exception("status request failed")

    def _raft_status(self) -> RaftStatus:
        status = self.getStatus()
        match = {
            nid: status.get(f"match_idx_server_{addr}")
            for addr, nid in self._ids.items()
            if nid != self._node_id
        }
        return {
            "state": status["state"],
            "term": status["raft_term"],
            "leader": self._leader_id(),
            "commit_idx": status["commit_idx"],
            "last_applied": status["last_applied"],
            "last_log_index": self.last_log_index(),
            "match": match,
            "has_quorum": status["has_quorum"],
            "connected": {self._ids[str(n)]: self.isNodeConnected(n) for n in self.otherNodes},
        }

    # --- what the log does, to the event log (Raft thread) ---------------------------------

    def on_apply(self, index: int, term: int, command: bytes) -> None:
        """Record ``meta-apply``; keep the entry for a proposal's ``meta-ack``."""
        self._applying = {
            "index": index,
            "term": term,
            "hash": digest(command),
            "cmd": self.command_name(command),
        }
        self._record("meta-apply", **self._applying)

    def on_truncate(
        self, start: int, dropped: list[Entry], applied: int, commit: int, leader: object
    ) -> None:
        """Record ``meta-truncate``."""
        self._record(
            "meta-truncate",
            start=start,
            end=dropped[-1][1],
            applied=applied,
            commit=commit,
            dropped=[[e[1], e[2], digest(e[0])] for e in dropped[:DROPPED_LISTED]],
            leader=self._ids.get(str(leader)),
        )

    def on_refuse(self, index: int, held: int, sent: int, applied: int, commit: int) -> None:
        """Record ``meta-refuse``."""
        self._record(
            "meta-refuse", index=index, term=held, sent_term=sent, applied=applied, commit=commit
        )

    def on_snapshot(self, index: int, term: int, installed: bool) -> None:
        """Record ``meta-snapshot``."""
        self._record("meta-snapshot", index=index, term=term, installed=installed)

    def _acknowledged(self) -> None:
        """A proposal of this node's committed: pysyncobj says so while applying its entry."""
        self._record("meta-ack", **self._applying)

    # --- replicated commands (bodies must never raise: pysyncobj would apply them again) ----

    def _apply(self, fn: Callable[[], str]) -> str:
        try:
            result = fn()
        except Exception as exc:
            log.exception("applying a metadata command failed")
            result = f"error: {exc!r}"
        self._publish()
        return result

    @replicated
    def cmd_register(self, topic: str, req: str) -> str:
        """Replicated MetaMachine.register."""
        return self._apply(lambda: self._machine.register(topic, req))

    @replicated
    def cmd_renew(self, node: int, req: str) -> str:
        """Replicated MetaMachine.renew; also notes when this node applied it."""
        self._renew_applied[node] = self._clock.now()
        return self._apply(lambda: self._machine.renew(node, req))

    @replicated
    def cmd_rollover(self, topic: str, segment: int, epoch: int, count: int, req: str) -> str:
        """Replicated MetaMachine.rollover."""
        return self._apply(lambda: self._machine.rollover(topic, segment, epoch, count, req))

    @replicated
    def cmd_takeover(self, node: int, renew_seq: int, req: str) -> str:
        """Replicated MetaMachine.takeover."""
        return self._apply(lambda: self._machine.takeover(node, renew_seq, req))

    @replicated
    def cmd_report_count(self, topic: str, segment: int, count: int, req: str) -> str:
        """Replicated MetaMachine.report_count."""
        return self._apply(lambda: self._machine.report_count(topic, segment, count, req))

    @replicated
    def cmd_disk_lost(self, node: int, req: str) -> str:
        """Replicated MetaMachine.disk_lost."""
        return self._apply(lambda: self._machine.disk_lost(node, req))

    @replicated
    def cmd_repaired(self, topic: str, segment: int, node: int, req: str) -> str:
        """Replicated MetaMachine.repaired."""
        return self._apply(lambda: self._machine.repaired(topic, segment, node, req))

    @replicated
    def cmd_take(self, topic: str, segment: int, first: int, count: int, req: str) -> str:
        """Replicated MetaMachine.take."""
        return self._apply(lambda: self._machine.take(topic, segment, first, count, req))

    @replicated
    def cmd_advance_cursor(self, topic: str, segment: int, req: str) -> str:
        """Replicated MetaMachine.advance_cursor."""
        return self._apply(lambda: self._machine.advance_cursor(topic, segment, req))

    # --- calls from trio -------------------------------------------------------------------

    async def propose(self, command: str, *args: object, timeout: float) -> str:
        """Propose ``cmd_<command>(*args)``; returns its result once applied here.

        Raises ProposalError if it did not commit within ``timeout`` or failed.
        """

        def start(done: Callable[[tuple[object, int]], None]) -> None:
            def callback(result: object, error: int) -> None:
                if error == FAIL_REASON.SUCCESS:
                    self._acknowledged()
                done((result, error))

            getattr(self, f"cmd_{command}")(*args, callback=callback)

        outcome = await _from_raft_thread(start, timeout)
        if outcome is None:
            raise ProposalError(f"{command} did not commit within {timeout:g} s", definite=False)
        result, error = outcome
        if error != FAIL_REASON.SUCCESS:
            why = _REASONS.get(error, str(error)).lower().replace("_", " ")
            raise ProposalError(f"{command} failed: {why}", definite=error in _DEFINITE)
        return cast(str, result)  # what the cmd_ method returned, applied

    async def status(self, timeout: float = 2.0) -> RaftStatus | None:
        """Raft status gathered on the raft thread (None if it does not answer in time)."""
        return await _from_raft_thread(self._status_requests.append, timeout)


async def _from_raft_thread(
    start: Callable[[Callable[[T], None]], None], timeout: float
) -> T | None:
    """Call ``start(done)``; wait (at most ``timeout``) until the raft thread calls ``done(x)``
    and return ``x``, or None. ``done`` never raises (pysyncobj would re-apply the entry)."""
    token = trio.lowlevel.current_trio_token()
    event = trio.Event()
    box: list[T] = []

    def done(value: T) -> None:
        box.append(value)
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(event.set)

    start(done)
    with trio.move_on_after(timeout):
        await event.wait()
    return box[0] if box else None
