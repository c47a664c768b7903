"""losefs's bookkeeping on a plain directory: what a power loss keeps and what it undoes."""

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from losefs.disk import Disk


def fsync_dir(path: Path, disk: Disk) -> None:
    disk.dir_synced(str(path))


class Files:
    """The calls losefs.fuse makes for each operation, on a real directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.disk = Disk(root, root.with_name(root.name + ".trash"), frozenset({"node.log"}))

    def create(self, name: str) -> None:
        path = self.root / name
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        self.disk.created(str(path), os.stat(path).st_ino)

    def write(self, name: str, offset: int, data: bytes) -> None:
        path = self.root / name
        fd = os.open(path, os.O_RDWR)
        try:
            if self.disk.tracked(str(path)):
                ino = os.fstat(fd).st_ino
                self.disk.before_write(ino, f"/proc/self/fd/{fd}", offset, len(data))
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def truncate(self, name: str, size: int) -> None:
        path = self.root / name
        self.disk.before_truncate(os.stat(path).st_ino, str(path), size)
        os.truncate(path, size)

    def fsync(self, name: str) -> None:
        fd = os.open(self.root / name, os.O_RDONLY)
        try:
            self.disk.synced(os.fstat(fd).st_ino, fd, data_only=True)
        finally:
            os.close(fd)

    def fsync_dir(self) -> None:
        self.disk.dir_synced(str(self.root))

    def rename(self, old: str, new: str) -> None:
        self.disk.rename(str(self.root / old), str(self.root / new))

    def unlink(self, name: str) -> None:
        self.disk.unlink(str(self.root / name))

    def contents(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.root.iterdir())}


@pytest.fixture
def files(tmp_path: Path) -> Files:
    root = tmp_path / "disk"
    root.mkdir()
    return Files(root)


def test_an_unsynced_append_is_lost_and_a_synced_one_kept(files):
    files.create("seg")
    files.fsync_dir()
    files.write("seg", 0, b"a" * 10)
    files.fsync("seg")
    files.write("seg", 10, b"b" * 5)
    loss = files.disk.lose_unsynced()
    assert files.contents() == {"seg": b"a" * 10}
    assert loss.bytes_dropped == 5 and loss.files_cut == 1


def test_a_file_whose_directory_was_never_synced_is_gone_though_it_was_synced(files):
    files.create("seg")
    files.write("seg", 0, b"x")
    files.fsync("seg")
    files.disk.lose_unsynced()
    assert files.contents() == {}


def test_an_overwrite_of_synced_bytes_is_undone(files):
    files.create("f")
    files.fsync_dir()
    files.write("f", 0, b"0123456789")
    files.fsync("f")
    files.write("f", 9, b"?!")  # the last synced byte, and one past it
    files.write("f", 3, b"XYZ")
    files.truncate("f", 5)
    files.write("f", 8, b"!!")
    loss = files.disk.lose_unsynced()
    assert files.contents() == {"f": b"0123456789"}
    assert loss.bytes_restored > 0


def test_an_atomic_replace_needs_the_directory_fsync(files):
    files.create("cursor")
    files.write("cursor", 0, b"old")
    files.fsync("cursor")
    files.fsync_dir()
    for synced_dir in (False, True):
        files.create(".cursor.tmp")
        files.write(".cursor.tmp", 0, b"new" if synced_dir else b"mid")
        files.fsync(".cursor.tmp")
        files.rename(".cursor.tmp", "cursor")
        if synced_dir:
            files.fsync_dir()
    files.disk.lose_unsynced()
    assert files.contents() == {"cursor": b"new"}


def test_a_replace_without_the_directory_fsync_brings_the_old_file_back(files):
    files.create("cursor")
    files.write("cursor", 0, b"old")
    files.fsync("cursor")
    files.fsync_dir()
    files.create(".cursor.tmp")
    files.write(".cursor.tmp", 0, b"new")
    files.fsync(".cursor.tmp")
    files.rename(".cursor.tmp", "cursor")
    files.disk.lose_unsynced()
    assert files.contents() == {"cursor": b"old"}


def test_an_unlink_not_made_durable_is_undone(files):
    files.create("f")
    files.write("f", 0, b"keep me")
    files.fsync("f")
    files.fsync_dir()
    files.unlink("f")
    assert files.contents() == {}
    files.disk.lose_unsynced()
    assert files.contents() == {"f": b"keep me"}


def test_kept_files_are_never_touched(files):
    (files.root / "node.log").write_bytes(b"")
    files.write("node.log", 0, b"evidence")
    files.disk.lose_unsynced()
    assert files.contents() == {"node.log": b"evidence"}


NAMES = ("a", "b", "c")
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.sampled_from(NAMES),
            st.integers(0, 6),
            st.binary(min_size=1, max_size=6),
        ),
        st.tuples(st.just("truncate"), st.sampled_from(NAMES), st.integers(0, 8)),
        st.tuples(st.just("fsync"), st.sampled_from(NAMES)),
        st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
        st.tuples(st.just("unlink"), st.sampled_from(NAMES)),
        st.tuples(st.just("create"), st.sampled_from(NAMES)),
        st.tuples(st.just("fsync_dir")),
    ),
    max_size=25,
)


class Model:
    """What a power loss leaves, kept directly: each file's synced bytes, the directory's
    synced names (name -> file), and the live state beside them."""

    def __init__(self) -> None:
        self.live: dict[str, int] = {}
        self.data: dict[int, bytearray] = {}
        self.synced: dict[int, bytes] = {}
        self.names: dict[str, int] = {}
        self.next = 0

    def apply(self, op: tuple) -> None:
        kind, *args = op
        if kind == "create":
            self.next += 1
            self.live[args[0]] = self.next
            self.data[self.next] = bytearray()
            self.synced[self.next] = b""
        elif kind == "write":
            data = self.data[self.live[args[0]]]
            offset, value = args[1], args[2]
            if len(data) < offset:
                data.extend(bytes(offset - len(data)))
            data[offset : offset + len(value)] = value
        elif kind == "truncate":
            data = self.data[self.live[args[0]]]
            del data[args[1] :]
            data.extend(bytes(args[1] - len(data)))
        elif kind == "fsync":
            file = self.live[args[0]]
            self.synced[file] = bytes(self.data[file])
        elif kind == "rename":
            self.live[args[1]] = self.live.pop(args[0])
        elif kind == "unlink":
            del self.live[args[0]]
        elif kind == "fsync_dir":
            self.names = dict(self.live)

    def after_loss(self) -> dict[str, bytes]:
        return {name: self.synced[file] for name, file in sorted(self.names.items())}


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_a_power_loss_leaves_exactly_the_synced_state(tmp_path_factory, ops):
    root = tmp_path_factory.mktemp("disk")
    files, model = Files(root), Model()
    for op in ops:
        kind, *args = op
        if kind == "rename" and args[0] == args[1]:
            continue
        if kind != "fsync_dir" and (args[0] in model.live) == (kind == "create"):
            if kind == "create":
                continue
            files.create(args[0])  # an operation on a missing file creates it first
            model.apply(("create", args[0]))
        getattr(files, kind)(*args)
        model.apply(op)
    assert files.contents() == {n: bytes(model.data[f]) for n, f in sorted(model.live.items())}
    files.disk.lose_unsynced()
    assert files.contents() == model.after_loss()
