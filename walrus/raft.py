"""pysyncobj's Raft with a follower that appends as Raft says, and every apply and truncation told.

pysyncobj 0.3.17's follower, given an AppendEntries whose previous entry it holds, deletes every
entry after that one before it appends what came, whether or not any of them conflicts with what
the leader sent ("truncating already-applied log entries ... state machine may have diverged").
Raft deletes only from the first entry whose term differs (Ongaro and Ousterhout, Figure 2,
AppendEntries receiver rule 3). An AppendEntries older than entries the follower has already
acknowledged is ordinary with pysyncobj's leader: it pipelines AppendEntries and sets its next
index for a follower to what each answer names — a success the end of the AppendEntries it
answers, behind what is already in flight; a refusal the follower's end, which a new leader gets
twice from a follower behind it — so it keeps sending followers again what they hold (213
deletions of applied entries on one follower in one run of ``bench metadata``, with no fault).
When what it sends again is shorter than the follower's log — pysyncobj sends at most
``appendEntriesBatchSizeBytes`` (64 KiB) at a time, so a follower more than that behind — the
follower drops acknowledged entries, while the leader's match index for it, which only grows,
still counts them. A leader that dies before its next batch arrives leaves a majority (that
follower and a lagging third node) without entries that were committed, applied and answered:
a new leader without them, and nodes whose state machines ran commands the cluster no longer
has (``tests/unit/test_raft.py`` drives a real 3-node group through it). When what it sends
again covers the follower's log, the entries are deleted and written again unchanged: no
command is lost, but each is synced a second time, and a power loss in between forgets what
was acknowledged.

``Raft`` corrects the follower in one place, by the receiver rules 3 to 5 of Figure 2:

- an entry it already holds with the same term is kept, not deleted and written again;
- its log is cut only at the first entry whose term differs, and never at or below what it has
  committed or applied: a leader whose entry conflicts there lacks a committed entry, and the
  AppendEntries is refused (``on_refuse``, a CRITICAL line) instead of undoing applied commands;
- its commit index follows the leader's only up to the last entry this AppendEntries vouched
  for, ``min(leaderCommit, index of last new entry)``. pysyncobj's ``min(leaderCommit, last
  index of its log)`` was sound only because it cut every tail; a kept tail from an older term
  must not be counted committed before a leader confirms it.

The leader keeps one correction as well: a refusal never raises its next index for a follower
(``_no_higher``).

Subclasses hear of the log through four hooks, called on the Raft thread: ``on_apply`` (each
entry applied, in order), ``on_truncate`` (entries deleted from the log's end), ``on_refuse`` and
``on_snapshot`` (a snapshot loaded at start or installed from the leader).

This is the one module of the node that reaches past pysyncobj's public interface, because
what it does here pysyncobj offers no way to do: replacing the follower's AppendEntries (above)
and watching apply, truncation and snapshot loads takes its private members, reached by their
mangled names (``_SyncObj__x``); the node also asks who leads and how long the log is, and sets
its first election's deadline (``leader``, ``is_leader``, ``last_log_index``,
``set_election_deadline``); it runs pysyncobj's timers on node time (``use_clock``), which
replaces the clock function pysyncobj's modules bound at import; and it gives pysyncobj a
journal synced before each answer (``journal_made_by``), which replaces the journal factory
pysyncobj's ``syncobj`` module looks up (``walrus.raft_journal`` implements pysyncobj's journal
interface, its ``_destroy`` included, and nothing more). Each is reached as pysyncobj 0.3.17
defines it, the version pyproject pins; ``typings/pysyncobj`` declares their types.
"""

import contextlib
import logging
import pickle
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pysyncobj.dns_resolver
import pysyncobj.syncobj
import pysyncobj.tcp_connection
import pysyncobj.transport
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.journal import Journal
from pysyncobj.node import Node

log = logging.getLogger("walrus.raft")

NO_OP, MEMBERSHIP, VERSION = 1, 2, 3
"""pysyncobj's command types other than a replicated method call (``_COMMAND_TYPE``)."""

Entry = tuple[bytes, int, int]
"""A log entry as pysyncobj keeps it: (command, index, term)."""

Message = dict[str, Any]
"""A Raft message as pysyncobj sends it: a dict off the wire, its fields those of its ``type``."""


class Raft(SyncObj):
    """A ``SyncObj`` whose follower appends by Raft's rules; hooks report what its log does."""

    def __init__(
        self,
        self_node: str | Node,
        other_nodes: Sequence[str | Node],
        conf: SyncObjConf,
        **options: Any,
    ) -> None:
        if conf.dynamicMembershipChange:
            raise ValueError("Raft does not support pysyncobj's dynamic membership changes")
        # set before SyncObj's __init__: local to this node, never part of a snapshot
        self._raft_names: dict[int, str] | None = None
        self._sender: Node | None = None
        """The peer whose message is being handled."""
        super().__init__(self_node, other_nodes, conf, **options)

    # --- hooks (Raft thread; must not raise) ----------------------------------------------

    def on_apply(self, index: int, term: int, command: bytes) -> None:
        """Entry ``index`` of ``term`` is about to be applied."""

    def on_truncate(
        self, start: int, dropped: list[Entry], applied: int, commit: int, leader: Node | None
    ) -> None:
        """The entries from ``start`` on were deleted on an AppendEntries from ``leader`` (a
        pysyncobj node); ``applied`` and ``commit`` as they were."""

    def on_refuse(self, index: int, held: int, sent: int, applied: int, commit: int) -> None:
        """An AppendEntries put an entry of term ``sent`` at ``index``, where this node holds
        one of term ``held`` that it has committed or applied; it was refused."""

    def on_snapshot(self, index: int, term: int, installed: bool) -> None:
        """The state machine is now a snapshot taken at ``index``: installed from the leader,
        else loaded from this node's dump file at start."""

    # --- what the hooks are given ---------------------------------------------------------

    def command_name(self, command: bytes) -> str:
        """A log entry's command in a word: the replicated method's name without ``cmd_`` and
        its version suffix, or ``noop``, ``membership``, ``version``."""
        kind = command[0]
        if kind == NO_OP:
            return "noop"
        if kind in (MEMBERSHIP, VERSION):
            return "membership" if kind == MEMBERSHIP else "version"
        call = pickle.loads(command[1:])
        func = call[0] if isinstance(call, tuple) else call
        name = self._names().get(func, f"method-{func}")
        return name.removeprefix("cmd_").rsplit("_v", 1)[0]

    def _names(self) -> dict[int, str]:
        if self._raft_names is None:
            self._raft_names = {
                fid: name for name, fid in self._methodToID.items() if isinstance(name, str)
            }
        return self._raft_names

    def _status(self) -> tuple[int, int]:
        return self._SyncObj__raftLastApplied, self._SyncObj__raftCommitIndex

    # --- what the node asks and sets --------------------------------------------------------

    def leader(self) -> Node | None:
        """The last leader this node heard of (possibly outdated)."""
        return self._getLeader()

    def is_leader(self) -> bool:
        """Whether this node is in the leader state."""
        return self._isLeader()

    def last_log_index(self) -> int:
        """The index of the last entry in this node's log."""
        return self._SyncObj__getCurrentLogIndex()

    def set_election_deadline(self, deadline: float) -> None:
        """Stand for election at ``deadline`` (pysyncobj's clock) unless a leader is heard first."""
        self._SyncObj__raftElectionDeadline = deadline

    # --- pysyncobj's methods, corrected or watched -----------------------------------------

    def _SyncObj__onMessageReceived(self, node: Node, message: Message) -> None:
        """Route a follower's AppendEntries through ``_append``, a leader's refusal through
        ``_no_higher``; everything else, and whatever they leave, to pysyncobj."""
        self._sender = node
        kind = message.get("type") if isinstance(message, dict) else None
        left: Message | None = message
        if (
            kind == "append_entries"
            and "prevLogIdx" in message
            and message["term"] >= self._SyncObj__raftCurrentTerm
        ):
            left = self._append(node, message)
        elif kind == "next_node_idx" and self.is_leader():
            left = self._no_higher(node, message)
        if left is not None:
            SyncObj._SyncObj__onMessageReceived(self, node, left)

    def _append(self, node: Node, message: Message) -> Message | None:
        """Raft's AppendEntries receiver (rules 2-5), once the term is known to be current.

        Returns what pysyncobj must still handle: the message itself where it refuses it (no
        previous entry, or one of another term: rule 2, which pysyncobj follows) or where it is
        one part of an entry sent in parts; else, after the entries are in the log, the message
        stripped of them, so that pysyncobj only takes the leader, term and commit index from
        it. None when the message is refused here, or answered here.
        """
        transmission = message.get("transmission")
        if transmission in ("start", "process"):
            return message  # a part of one large entry: pysyncobj keeps it, the log is untouched
        entries = message.get("entries", [])
        if transmission == "finish":  # the large entry, whole: handled as if sent at once
            entries = [pickle.loads(self._SyncObj__recvTransmission + message["data"])]
            self._SyncObj__recvTransmission = ""
            message = {k: v for k, v in message.items() if k not in ("transmission", "data")}
            message["entries"] = entries
        prev = message["prevLogIdx"]
        held = self._SyncObj__getEntries(prev, 1)
        if not held or held[0][2] != message["prevLogTerm"]:
            return message
        last = self._SyncObj__getCurrentLogIndex()
        new: list[Entry] = []
        for at, entry in enumerate(entries):
            index, term = entry[1], entry[2]
            if index > last:
                new = entries[at:]
                break
            mine = self._SyncObj__getEntries(index, 1)[0][2]
            if mine != term:
                applied, commit = self._status()
                if index <= max(applied, commit):
                    log.critical(
                        "refused an AppendEntries whose entry %d (term %d) conflicts with the "
                        "committed one here (term %d; applied %d, commit %d): its leader lacks "
                        "a committed entry",
                        index, term, mine, applied, commit,
                    )  # fmt: skip
                    self.on_refuse(index, mine, term, applied, commit)
                    return None
                self._SyncObj__deleteEntriesFrom(index)
                new = entries[at:]
                break
        for entry in new:
            self._SyncObj__raftLog.add(*entry)
        vouched = prev + len(entries)
        rest = {
            "type": "append_entries",
            "term": message["term"],
            "commit_index": self._commit_bound(message["commit_index"], vouched),
        }
        SyncObj._SyncObj__onMessageReceived(self, node, rest)
        self._SyncObj__sendNextNodeIdx(node, nextNodeIdx=vouched + 1, success=True)
        return None

    def _commit_bound(self, leader_commit: int, vouched: int) -> int:
        """How far a follower may commit on an AppendEntries: the leader's commit index, but no
        further than the last entry it vouched for (rule 5)."""
        return min(leader_commit, vouched)

    def _no_higher(self, node: Node, message: Message) -> Message:
        """Keep the leader's next index for a follower from moving forward on a refusal.

        pysyncobj's leader pipelines AppendEntries and advances its next index optimistically; a
        follower refusing several of them answers each with a reset — to the conflicting index
        for one, to the end of its log for another — and the leader obeys them in turn. A
        follower holding a conflicting uncommitted tail then ping-pongs between the two for ever
        and never catches up (seen under partitions and restarts). Raft only ever lowers the next
        index on a refusal; so does this.
        """
        if message.get("reset") and not message.get("success"):
            current = self._SyncObj__raftNextIndex.get(node)
            if current is not None and message.get("next_node_idx", 0) > current:
                return {**message, "next_node_idx": current}
        return message

    def _SyncObj__doApplyCommand(self, command: bytes) -> object:
        """Tell ``on_apply`` of the entry, then apply it (pysyncobj applies entries in order,
        each at ``lastApplied + 1``)."""
        index = self._SyncObj__raftLastApplied + 1
        held = self._SyncObj__getEntries(index, 1)
        self.on_apply(index, held[0][2] if held else -1, command)
        return SyncObj._SyncObj__doApplyCommand(self, command)

    def _SyncObj__deleteEntriesFrom(self, fromIDx: int) -> None:
        """Tell ``on_truncate`` of the entries about to go, then delete them."""
        dropped = self._SyncObj__getEntries(fromIDx)
        if dropped:
            self.on_truncate(fromIDx, list(dropped), *self._status(), self._sender)
        SyncObj._SyncObj__deleteEntriesFrom(self, fromIDx)

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:
        """Load a snapshot; tell ``on_snapshot`` where the state machine now stands."""
        before = self._SyncObj__raftLastApplied
        SyncObj._SyncObj__loadDumpFile(self, clearJournal)
        index = self._SyncObj__raftLastApplied
        if index != before or clearJournal:
            held = self._SyncObj__getEntries(index, 1)
            self.on_snapshot(index, held[0][2] if held else -1, bool(clearJournal))


# --- pysyncobj's module globals --------------------------------------------------------------


def use_clock(now: Callable[[], float]) -> None:
    """Make every pysyncobj timer (elections, heartbeats, connection timeouts) read ``now``.

    pysyncobj binds its clock function into four modules at import; all four are replaced. Call
    this before constructing a SyncObj.
    """
    pysyncobj.syncobj.monotonicTime = now
    pysyncobj.transport.monotonicTime = now
    pysyncobj.tcp_connection.monotonicTime = now
    pysyncobj.dns_resolver.monotonicTime = now


_building = threading.Lock()


@contextlib.contextmanager
def journal_made_by(make: Callable[[str], Journal]) -> Iterator[None]:
    """While a ``SyncObj`` is built inside, pysyncobj opens its journal file with ``make(path)``
    (one without a journal file keeps pysyncobj's journal in memory)."""
    with _building:
        own = pysyncobj.syncobj.createJournal

        def create(path: str | None = None) -> Journal:
            return own(None) if path is None else make(path)

        pysyncobj.syncobj.createJournal = create
        try:
            yield
        finally:
            pysyncobj.syncobj.createJournal = own
