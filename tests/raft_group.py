"""A 3-node pysyncobj group stepped by hand: real SyncObjs over real loopback TCP, whose received
messages wait until the test delivers them.

Each node ticks only when the test says (``autoTick=False``) and its timers are set so far off
that nothing happens on its own: elections, heartbeats and sends happen when the test makes
them. A node's transport keeps what arrives in an inbox, per sender in arrival order (TCP's
order), and hands a message to pysyncobj only on ``deliver``; messages a node never got, because
its peer died before they left, are ``drop``-ped. Nodes die (``kill``) and restart (``start``)
from their journal files, as processes would.
"""

import socket
import time
from collections.abc import Callable
from pathlib import Path

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.transport import TCPTransport, Transport

FAR = 1e6
"""Seconds: timers that must never fire by themselves."""


class Holding(TCPTransport):
    """A TCP transport that keeps each received message until ``deliver``."""

    def __init__(self, sync_obj, self_node, other_nodes) -> None:
        super().__init__(sync_obj, self_node, other_nodes)
        self.inbox: list[tuple[object, object]] = []

    def _onMessageReceived(self, node, message) -> None:
        self.inbox.append((node, message))

    def deliver(self, at: int) -> None:
        """Hand the ``at``-th held message to pysyncobj."""
        node, message = self.inbox.pop(at)
        Transport._onMessageReceived(self, node, message)


def node_class(base: type) -> type:
    """A replicated list of values on ``base`` (pysyncobj's SyncObj, or a subclass of it)."""

    class Node(base):
        def __init__(self, me: str, others: list[str], conf: SyncObjConf) -> None:
            self.applied: dict[int, str] = {}
            """What this instance applied, by log index."""
            self.truncated: list[tuple[int, int]] = []
            """(first index deleted, last applied then), if ``base`` reports truncations."""
            super().__init__(me, others, conf, transportClass=Holding)

        @replicated
        def put(self, value: str) -> str:
            self.applied[self._SyncObj__raftLastApplied + 1] = value
            return value

        def on_truncate(self, start, dropped, applied, commit, leader) -> None:
            self.truncated.append((start, applied))

    return Node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Group:
    """Nodes ``a``, ``b``, ``c`` of class ``node_class(base)``, journals under ``root``."""

    def __init__(self, base: type, root: Path, batch_bytes: int = 2**16) -> None:
        self.cls = node_class(base)
        self.root = root
        self.batch_bytes = batch_bytes
        self.address = {name: f"127.0.0.1:{_free_port()}" for name in "abc"}
        self.nodes: dict[str, SyncObj] = {}
        for name in "abc":
            self.start(name)
        self.wait(lambda: all(self.connected(x, y) for x in "abc" for y in "abc" if x != y))

    # --- nodes -----------------------------------------------------------------------------

    def start(self, name: str) -> None:
        """Start (or restart) a node from its journal."""
        conf = SyncObjConf(
            autoTick=False,
            appendEntriesUseBatch=False,
            appendEntriesPeriod=FAR,
            appendEntriesBatchSizeBytes=self.batch_bytes,
            raftMinTimeout=4 * FAR,
            raftMaxTimeout=5 * FAR,
            leaderFallbackTimeout=2 * FAR,
            connectionTimeout=5 * FAR,
            connectionRetryTime=0.02,
            journalFile=str(self.root / f"{name}.journal"),
            dynamicMembershipChange=False,
        )
        others = [self.address[x] for x in "abc" if x != name]
        self.nodes[name] = self.cls(self.address[name], others, conf)

    def kill(self, name: str) -> None:
        """Stop a node as a crash would: sockets closed, journal as it stands."""
        self.nodes.pop(name)._destroy()

    def __getitem__(self, name: str) -> SyncObj:
        return self.nodes[name]

    def connected(self, x: str, y: str) -> bool:
        """Whether ``x`` has a live connection to ``y``."""
        peers = self.nodes[x]._SyncObj__connectedNodes
        return any(p.address == self.address[y] for p in peers)

    # --- time and messages -----------------------------------------------------------------

    def tick(self, rounds: int = 3) -> None:
        """Let every live node run a few ticks (sockets read and written, commits applied)."""
        for _ in range(rounds):
            for node in list(self.nodes.values()):
                node.doTick(0.002)

    def wait(self, done: Callable[[], bool], seconds: float = 10.0) -> None:
        """Tick until ``done()``; AssertionError if it takes longer than ``seconds``."""
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, "the group did not get there in time"
            self.tick(1)

    def held(self, to: str, frm: str) -> list[dict]:
        """The messages ``to`` holds from ``frm``, oldest first."""
        return [m for n, m in self._inbox(to) if n.address == self.address[frm]]

    def _inbox(self, to: str) -> list:
        return self.nodes[to]._SyncObj__transport.inbox

    def deliver(self, to: str, frm: str, count: int | None = None) -> int:
        """Hand ``to`` the oldest ``count`` (default: all) messages it holds from ``frm``, in
        order; how many there were."""
        transport = self.nodes[to]._SyncObj__transport
        done = 0
        while count is None or done < count:
            at = next(
                (i for i, (n, _) in enumerate(transport.inbox) if n.address == self.address[frm]),
                None,
            )
            if at is None:
                break
            transport.deliver(at)
            done += 1
        return done

    def drop(self, to: str, frm: str) -> int:
        """Forget what ``to`` holds from ``frm`` (it never left ``frm``); how many."""
        inbox = self._inbox(to)
        keep = [(n, m) for n, m in inbox if n.address != self.address[frm]]
        dropped = len(inbox) - len(keep)
        inbox[:] = keep
        return dropped

    def pump(self, among: str, seconds: float = 5.0, until: Callable[[], bool] | None = None):
        """Tick, deliver every message between the nodes in ``among`` and let leaders send
        heartbeats, until no node's term, log, commit or state changes for a while (or
        ``until()``)."""
        deadline = time.monotonic() + seconds
        quiet, last = 0, None
        while quiet < 10 and time.monotonic() < deadline:
            for name in among:
                if self.nodes[name]._isLeader():
                    self.nodes[name]._SyncObj__sendAppendEntries()
            self.tick(1)
            for x in among:
                for y in among:
                    if x != y:
                        self.deliver(x, y)
            if until is not None and until():
                return
            now = [self._fingerprint(name) for name in among]
            quiet = quiet + 1 if now == last else 0
            last = now

    def _fingerprint(self, name: str) -> tuple:
        node = self.nodes[name]
        return (
            node._SyncObj__raftCurrentTerm,
            node._SyncObj__raftState,
            node._SyncObj__raftCommitIndex,
            node._SyncObj__raftLastApplied,
            len(node._SyncObj__raftLog),
        )

    # --- Raft ------------------------------------------------------------------------------

    def elect(self, name: str, among: str) -> bool:
        """Make ``name`` stand for election now, with only ``among`` hearing it; whether it
        won."""
        self.nodes[name]._SyncObj__raftElectionDeadline = 0
        self.pump(among, until=lambda: self.nodes[name]._isLeader())
        won = self.nodes[name]._isLeader()
        self.nodes[name]._SyncObj__raftElectionDeadline = time.monotonic() + FAR
        return won

    def propose(self, name: str, value: str) -> list:
        """Propose ``put(value)`` at ``name``; the list its outcome is appended to."""
        outcome: list = []
        self.nodes[name].put(value, callback=lambda r, e: outcome.append(e))
        return outcome

    def log(self, name: str) -> list[tuple[int, int, bytes]]:
        """``name``'s log entries as (index, term, command)."""
        journal = self.nodes[name]._SyncObj__raftLog
        return [(e[1], e[2], bytes(e[0])) for e in journal[:]]

    def last_applied(self, name: str) -> int:
        """The index ``name`` applied last."""
        return self.nodes[name]._SyncObj__raftLastApplied

    def stop(self) -> None:
        """Kill every node still running."""
        for name in list(self.nodes):
            self.kill(name)


SUCCESS = FAIL_REASON.SUCCESS
