"""The metadata's Raft journal on real files: what it holds survives reopening, every answer it
backs is synced first (observed on the real calls), a torn last record is cut, bit rot refused."""

import os

import pytest

from walrus.raft_journal import MAGIC, DurableJournal, JournalDamaged

ENTRIES = [(b"\x00noop", 1, 0), (b"\x01set a", 2, 1), (b"\x01set b", 3, 1), (b"\x01set c", 4, 2)]


def journal(tmp_path, entries=ENTRIES) -> DurableJournal:
    j = DurableJournal(tmp_path / "journal", tmp_path / "dump")
    for e in entries:
        j.add(*e)
    return j


def reopen(j: DurableJournal) -> DurableJournal:
    j._destroy()
    return DurableJournal(j.path, j.snapshot)


def test_entries_term_and_vote_survive_reopening(tmp_path):
    j = journal(tmp_path)
    j.setCurrentTerm(2, "127.0.0.1:7001")
    j.setRaftCommitIndex(3)
    j = reopen(j)
    assert list(j) == ENTRIES and len(j) == 4 and j[-1] == ENTRIES[-1]
    assert j[1:3] == ENTRIES[1:3]
    assert (j.getCurrentTerm(), j.getVotedForNodeId(), j.getRaftCommitIndex()) == (
        2,
        "127.0.0.1:7001",
        3,
    )
    assert j.recovery_note is None


def test_a_new_journal_is_empty_with_defaults(tmp_path):
    j = DurableJournal(tmp_path / "journal")
    assert len(j) == 0 and (j.getCurrentTerm(), j.getVotedForNodeId()) == (0, None)
    assert j.getRaftCommitIndex() == 1
    assert (tmp_path / "journal").read_bytes() == MAGIC


def test_deleting_from_the_end_and_from_the_start(tmp_path):
    j = journal(tmp_path)
    j.deleteEntriesFrom(2)  # a new leader overwrote positions 2 and after
    j.add(b"\x01set z", 3, 3)
    j = reopen(j)
    assert list(j) == [*ENTRIES[:2], (b"\x01set z", 3, 3)]
    (tmp_path / "dump").write_bytes(b"snapshot")
    j.deleteEntriesTo(1)  # a snapshot covers position 0
    j = reopen(j)
    assert list(j) == [ENTRIES[1], (b"\x01set z", 3, 3)]
    j.clear()
    assert len(reopen(j)) == 0


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_last_record_is_cut(tmp_path, cut):
    j = journal(tmp_path)
    j._destroy()
    path = tmp_path / "journal"
    whole = path.read_bytes()
    path.write_bytes(whole[:-cut])
    again = DurableJournal(path)
    assert list(again) == ENTRIES[:-1]
    assert again.recovery_note and "torn" in again.recovery_note
    again.add(b"\x01set d", 4, 2)
    assert list(reopen(again)) == [*ENTRIES[:-1], (b"\x01set d", 4, 2)]


def test_damage_before_intact_records_is_refused(tmp_path):
    j = journal(tmp_path)
    j._destroy()
    path = tmp_path / "journal"
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 12] ^= 0xFF  # inside the first record's body
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamaged, match="followed by intact"):
        DurableJournal(path)
    assert path.read_bytes() == bytes(data), "nothing changed"


def test_a_foreign_file_is_refused_with_one_line(tmp_path):
    (tmp_path / "journal").write_bytes(b"PYSYNCOBJ\0\0\0" + bytes(40))
    with pytest.raises(JournalDamaged, match="not this node's journal format"):
        DurableJournal(tmp_path / "journal")


def test_every_answer_it_backs_is_synced_first(tmp_path, monkeypatch):
    """An entry is fdatasynced before add returns; term and vote, and the snapshot before the
    entries it covers are dropped, fsynced; the commit index never waits for a sync."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def spy(name, real):
        def call(fd: int) -> None:
            calls.append((name, os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
            real(fd)

        return call

    j = DurableJournal(tmp_path / "journal", tmp_path / "dump")
    monkeypatch.setattr(os, "fsync", spy("fsync", real_fsync))
    monkeypatch.setattr(os, "fdatasync", spy("fdatasync", real_fdatasync))
    j.add(b"\x00noop", 1, 0)
    assert calls == [("fdatasync", "journal")]
    calls.clear()
    j.setCurrentTerm(1, "me")
    assert ("fsync", ".journal.meta.tmp") in calls and ("fsync", tmp_path.name) in calls
    calls.clear()
    j.setRaftCommitIndex(1)
    j.onOneSecondTimer()
    assert calls == []
    (tmp_path / "dump").write_bytes(b"snapshot")
    j.deleteEntriesTo(1)
    assert calls[0] == ("fsync", "dump")


def test_saving_the_commit_index_never_rewrites_the_term_and_vote(tmp_path):
    """The unsynced save goes to a file of its own: the synced term and vote's file is the one
    setCurrentTerm wrote, whatever a power loss does to the other."""
    j = journal(tmp_path)
    j.setCurrentTerm(2, "me")
    written = (tmp_path / "journal.meta").stat()
    j.setRaftCommitIndex(3)
    j.onOneSecondTimer()
    after = (tmp_path / "journal.meta").stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert (tmp_path / "journal.commit").read_text() == "3"


@pytest.mark.parametrize("left", [b"", b"{", b'"x"'])
def test_a_commit_index_a_power_loss_left_unreadable_reads_as_none_saved(tmp_path, left):
    j = journal(tmp_path)
    j.setCurrentTerm(2, "me")
    j.setRaftCommitIndex(3)
    j = reopen(j)
    assert j.getRaftCommitIndex() == 3
    j._destroy()
    (tmp_path / "journal.commit").write_bytes(left)
    j = DurableJournal(j.path, j.snapshot)
    assert (j.getCurrentTerm(), j.getVotedForNodeId(), j.getRaftCommitIndex()) == (2, "me", 1)
    assert list(j) == ENTRIES
