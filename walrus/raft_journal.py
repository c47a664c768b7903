"""The metadata's Raft journal, made durable: entries, term and vote survive a power loss.

Raft's safety rests on persistent state — the log, ``currentTerm``, ``votedFor`` — being "updated
on stable storage before responding to RPCs" (Ongaro and Ousterhout, *In Search of an
Understandable Consensus Algorithm*, Figure 2). pysyncobj 0.3.17's file journal writes entries
through an mmap it never msyncs and saves the term and vote with a plain write and rename, no
fsync: a SIGKILL loses nothing (the page cache survives), but after a power loss a node can
forget entries it acknowledged to a leader that counted them towards a commit, or a vote it
cast, and vote twice in one term.

``DurableJournal`` keeps pysyncobj's journal interface with a file of its own: records
appended and fdatasynced before ``add`` returns (pysyncobj answers an AppendEntries after adding
its entries, so the answer follows the sync), the term and vote replaced atomically and fsynced
before ``setCurrentTerm`` returns (a vote is granted after it), and the snapshot file fsynced
before the entries it covers are dropped. ``durable_journal`` hands it to pysyncobj in place of
its own while a ``SyncObj`` is built. The commit index is saved without a sync: Raft recomputes
it, and pysyncobj clamps a saved one to the journal's end. It has a file of its own
(``journal.commit``): an unsynced rename can outlive its bytes once anything syncs the directory
(a compaction does), and sharing the term and vote's file, it would take them with it and leave
a node that cannot start. Unreadable after a power loss, it reads as none saved.

Record: u32 body length, u32 CRC-32C of the body, then the body (u64 index, u64 term, command).
On open, a short or damaged *last* record is a torn append and is cut off; damage followed by
intact records is refused, as the segment store refuses bit rot.
"""

import contextlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict, overload

from pysyncobj.journal import Journal

from walrus import codec
from walrus.durable import atomic_write, atomic_write_json, fsync_file
from walrus.raft import Entry, journal_made_by

MAGIC = b"WALRUS-RAFT-JOURNAL-1\n"
HEAD = struct.Struct("<II")
ENTRY = struct.Struct("<QQ")


class JournalDamaged(Exception):
    """The journal has a damaged record followed by intact ones: not a torn append."""


class _Meta(TypedDict, total=False):
    """The ``.meta`` file: the term and vote (an older node's kept its commit index there too)."""

    term: int
    vote: str | None
    commit: int


class DurableJournal(Journal):
    """pysyncobj's journal interface over a file synced before each answer it backs."""

    def __init__(self, path: str | Path, snapshot: str | Path | None = None) -> None:
        self.path = Path(path)
        self.snapshot = None if snapshot is None else Path(snapshot)
        self.meta_path = self.path.with_name(self.path.name + ".meta")
        self.commit_path = self.path.with_name(self.path.name + ".commit")
        self._entries: list[Entry] = []
        self._ends: list[int] = []
        """File offset just past each entry's record."""
        self.recovery_note: str | None = None
        self._meta = self._read_meta()
        self._commit = self._read_commit()
        self._commit_saved = True
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size == 0:
            self._reset([])
        else:
            self._load()

    # --- the file ------------------------------------------------------------------------

    def _read_meta(self) -> _Meta:
        try:
            meta: _Meta = json.loads(self.meta_path.read_text())
            return meta
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise JournalDamaged(f"{self.meta_path}: unreadable ({exc})") from exc

    def _read_commit(self) -> int:
        """The saved commit index; 1 (none) when its file is missing or a power loss left it
        unreadable (a journal of an older node kept it with the term and vote)."""
        try:
            return int(json.loads(self.commit_path.read_text()))
        except (OSError, ValueError, TypeError):
            return self._meta.get("commit", 1)

    def _load(self) -> None:
        data = os.pread(self._fd, os.fstat(self._fd).st_size, 0)
        if not data.startswith(MAGIC):
            raise JournalDamaged(
                f"{self.path}: not this node's journal format (an older node's pysyncobj journal?"
                " start that node from an empty data directory)"
            )
        at = len(MAGIC)
        entries, ends = [], []
        for entry, end in _records(data, at):
            entries.append(entry)
            ends.append(end)
        good = ends[-1] if ends else at
        if good < len(data):
            if _intact_record_after(data, good + 1):
                raise JournalDamaged(
                    f"{self.path}: damaged record at byte {good} followed by intact ones"
                )
            self.recovery_note = f"{self.path}: cut a torn last record at byte {good}"
            os.ftruncate(self._fd, good)
            os.fsync(self._fd)
        self._entries, self._ends = entries, ends

    def _reset(self, entries: list[Entry]) -> None:
        """Make the file exactly ``entries``, atomically (a new file renamed over)."""
        body = bytearray(MAGIC)
        ends = []
        for entry in entries:
            body += _record(*entry)
            ends.append(len(body))
        atomic_write(self.path, bytes(body))
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR)
        self._entries, self._ends = list(entries), ends

    def _snapshot_durable(self) -> None:
        """fsync the snapshot file that replaces entries about to be dropped."""
        if self.snapshot is not None and self.snapshot.exists():
            fsync_file(self.snapshot)

    # --- pysyncobj's interface -----------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        """Append an entry; it is on stable storage when this returns."""
        record = _record(command, idx, term)
        start = self._ends[-1] if self._ends else len(MAGIC)
        os.pwrite(self._fd, record, start)
        os.fdatasync(self._fd)
        self._entries.append((bytes(command), idx, term))
        self._ends.append(start + len(record))

    def clear(self) -> None:
        """Drop every entry (a snapshot from the leader replaces them)."""
        self._snapshot_durable()
        self._reset([])

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        """Drop the entries from position ``entryFrom`` on (a leader overwrote them)."""
        if entryFrom >= len(self._entries):
            return
        end = self._ends[entryFrom - 1] if entryFrom > 0 else len(MAGIC)
        os.ftruncate(self._fd, end)
        os.fsync(self._fd)
        del self._entries[entryFrom:], self._ends[entryFrom:]

    def deleteEntriesTo(self, entryTo: int) -> None:
        """Drop the entries before position ``entryTo`` (a snapshot covers them)."""
        self._snapshot_durable()
        self._reset(self._entries[entryTo:])

    @overload
    def __getitem__(self, item: int) -> Entry: ...
    @overload
    def __getitem__(self, item: slice) -> list[Entry]: ...
    def __getitem__(self, item: int | slice) -> Entry | list[Entry]:
        """An entry (command, index, term), or a slice of them."""
        return self._entries[item]

    def __len__(self) -> int:
        """How many entries the journal holds."""
        return len(self._entries)

    def _destroy(self) -> None:
        self.onOneSecondTimer()
        os.close(self._fd)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        """Remember the commit index (saved lazily: Raft recomputes it)."""
        self._commit = raftCommitIndex
        self._commit_saved = False

    def getRaftCommitIndex(self) -> int:
        """The commit index last saved (1 when none was)."""
        return self._commit

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:
        """Save the term and vote; on stable storage when this returns."""
        self._meta = {"term": term, "vote": votedForNodeId}
        atomic_write_json(self.meta_path, self._meta)

    def getCurrentTerm(self) -> int:
        """The saved term (0 when none was)."""
        return self._meta.get("term", 0)

    def getVotedForNodeId(self) -> str | None:
        """The saved vote of the saved term (None when none was)."""
        return self._meta.get("vote")

    def onOneSecondTimer(self) -> None:
        """Save a changed commit index, without a sync, in its own file."""
        if not self._commit_saved:
            atomic_write_json(self.commit_path, self._commit, sync=False)
            self._commit_saved = True


def _record(command: bytes, idx: int, term: int) -> bytes:
    body = ENTRY.pack(idx, term) + bytes(command)
    return HEAD.pack(len(body), codec.crc32c(body)) + body


def _records(data: bytes, at: int) -> Iterator[tuple[Entry, int]]:
    """Intact records from ``at`` on, each with the offset just past it; stops at the first
    short or damaged one."""
    while at + HEAD.size <= len(data):
        length, crc = HEAD.unpack_from(data, at)
        body = data[at + HEAD.size : at + HEAD.size + length]
        if length < ENTRY.size or len(body) < length or codec.crc32c(body) != crc:
            return
        idx, term = ENTRY.unpack_from(body)
        at += HEAD.size + length
        yield (bytes(body[ENTRY.size :]), idx, term), at


def _intact_record_after(data: bytes, start: int) -> bool:
    """Whether an intact record begins anywhere after ``start`` (bit rot has some after it; a
    torn append has none)."""
    for at in range(start, len(data) - HEAD.size):
        length, crc = HEAD.unpack_from(data, at)
        end = at + HEAD.size + length
        fits = ENTRY.size <= length <= len(data) - at - HEAD.size
        if fits and codec.crc32c(data[at + HEAD.size : end]) == crc:
            return True
    return False


@contextlib.contextmanager
def durable_journal(snapshot: Path) -> Iterator[None]:
    """While a ``SyncObj`` is built inside, pysyncobj opens its journal file as a
    ``DurableJournal`` (whose snapshot file is ``snapshot``)."""
    with journal_made_by(lambda path: DurableJournal(path, snapshot)):
        yield
