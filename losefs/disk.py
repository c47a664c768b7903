"""The backing directory and what on it is not yet durable.

Model (the strict POSIX reading, as lazyfs takes it): a file's contents and size are durable as
of its last fsync or fdatasync (a file that existed at mount is durable whole; a created one is
durable empty); a directory's entries are durable as of its last fsync (those at mount, durable).
A name operation touching two directories (a rename across them) is durable once both were
fsynced after it. Files whose names are in ``keep`` (the harness's instruments: the node's log,
its event log) are never tracked: they survive as if on another disk, so the evidence a
verdict rests on is not what the fault destroys.

Every change is made on the backing directory at once; what it would undo is remembered:
unlinked and replaced files are moved to a trash directory (on the same file system) until the
unlink is durable, and the synced bytes an unsynced write or truncate overwrote are copied out.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

SHOWN = 20
"""How many undone things a ``Loss`` names."""


@dataclass
class _Dirty:
    """A file written since its last sync: its synced size, and the synced bytes overwritten."""

    fd: int
    synced_size: int
    path: str
    undo: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass
class _NameOp:
    """A name operation not yet durable: how to undo it, and the directories still to sync."""

    kind: str
    path: str
    dirs: set[int]
    other: str | None = None
    trash: str | None = None


@dataclass(frozen=True)
class Loss:
    """What ``lose_unsynced`` threw away."""

    files_cut: int
    bytes_dropped: int
    bytes_restored: int
    names_undone: int
    what: tuple[str, ...] = ()
    """The first ``SHOWN`` things undone, each as "<kind> <path relative to the root>"."""
    undo_errors: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """As recorded in the history."""
        return {
            "files_cut": self.files_cut,
            "bytes_dropped": self.bytes_dropped,
            "bytes_restored": self.bytes_restored,
            "names_undone": self.names_undone,
            "what": list(self.what),
            "undo_errors": list(self.undo_errors),
        }


class Disk:
    """The backing directory ``root``; ``trash`` must be on the same file system."""

    def __init__(self, root: Path, trash: Path, keep: frozenset[str] = frozenset()) -> None:
        self.root = str(root)
        self.trash = str(trash)
        self.keep = keep
        os.makedirs(self.trash, exist_ok=True)
        self._dirty: dict[int, _Dirty] = {}
        self._ops: list[_NameOp] = []
        self._trashed = 0

    def tracked(self, path: str) -> bool:
        """Whether the file's loss is modelled (not one of ``keep``)."""
        return os.path.basename(path) not in self.keep

    def _dir_ino(self, path: str) -> int:
        return os.stat(os.path.dirname(path)).st_ino

    def _to_trash(self, path: str) -> str:
        self._trashed += 1
        dest = os.path.join(self.trash, str(self._trashed))
        os.rename(path, dest)
        return dest

    def _file(self, ino: int, opener: str) -> _Dirty:
        dirty = self._dirty.get(ino)
        if dirty is None:
            fd = os.open(opener, os.O_RDWR)
            dirty = self._dirty[ino] = _Dirty(
                fd,
                os.fstat(fd).st_size,
                os.readlink(opener) if opener.startswith("/proc/") else opener,
            )
        return dirty

    # -- contents ------------------------------------------------------------------------------

    def before_write(self, ino: int, opener: str, offset: int, length: int) -> None:
        """About to write ``length`` bytes at ``offset`` of a tracked file (``opener``: a path
        that opens it now, such as ``/proc/self/fd/N``)."""
        dirty = self._file(ino, opener)
        if offset < dirty.synced_size and length:
            n = min(length, dirty.synced_size - offset)
            dirty.undo.append((offset, os.pread(dirty.fd, n, offset)))

    def before_truncate(self, ino: int, path: str, size: int) -> None:
        """About to cut or extend the file to ``size``."""
        if not self.tracked(path):
            return
        dirty = self._file(ino, path)
        if size < dirty.synced_size:
            dirty.undo.append((size, os.pread(dirty.fd, dirty.synced_size - size, size)))

    def synced(self, ino: int, fd: int, data_only: bool) -> None:
        """fsync (or fdatasync) the file through ``fd``: its contents are durable now."""
        (os.fdatasync if data_only else os.fsync)(fd)
        dirty = self._dirty.pop(ino, None)
        if dirty is not None:
            os.close(dirty.fd)

    # -- names ---------------------------------------------------------------------------------

    def created(self, path: str, ino: int, is_dir: bool = False) -> None:
        """``path`` was just made (a file, link or directory): durable once its directory is
        synced, and, for a file, durable empty until it is synced itself."""
        if not is_dir and not self.tracked(path):
            return
        self._ops.append(_NameOp("mkdir" if is_dir else "create", path, {self._dir_ino(path)}))
        if not is_dir and os.path.isfile(path) and not os.path.islink(path):
            fd = os.open(path, os.O_RDWR)
            self._dirty[ino] = _Dirty(fd, 0, path)

    def unlink(self, path: str) -> None:
        """Remove a file's name (kept in the trash until that is durable)."""
        if not self.tracked(path):
            os.unlink(path)
            return
        dirs = {self._dir_ino(path)}
        self._ops.append(_NameOp("unlink", path, dirs, trash=self._to_trash(path)))

    def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        dirs = {self._dir_ino(path)}
        os.rmdir(path)
        self._ops.append(_NameOp("rmdir", path, dirs))

    def rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new``, replacing it (the replaced file kept in the trash)."""
        if not self.tracked(new) and not self.tracked(old):
            os.rename(old, new)
            return
        dirs = {self._dir_ino(old), self._dir_ino(new)}
        trash = self._to_trash(new) if os.path.lexists(new) else None
        os.rename(old, new)
        self._ops.append(_NameOp("rename", new, dirs, other=old, trash=trash))

    def dir_synced(self, path: str, fd: int | None = None) -> None:
        """fsync the directory: the name operations in it are durable now."""
        if fd is None:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            os.fsync(fd)
        ino = os.stat(path).st_ino
        pending = []
        for op in self._ops:
            op.dirs.discard(ino)
            if op.dirs:
                pending.append(op)
            elif op.trash is not None:
                _remove(op.trash)
        self._ops = pending

    # -- the power loss ------------------------------------------------------------------------

    def lose_unsynced(self) -> Loss:
        """Undo everything not durable, on the backing directory; what was lost."""
        errors: list[str] = []
        what: list[str] = []
        undone = 0
        for op in reversed(self._ops):
            try:
                _undo(op)
                undone += 1
                what.append(f"undid {op.kind} {self._rel(op.path)}")
            except OSError as exc:
                errors.append(f"undo {op.kind} {op.path}: {exc.strerror}")
        self._ops = []
        dropped = restored = cut = 0
        for dirty in self._dirty.values():
            size = os.fstat(dirty.fd).st_size
            for offset, old in reversed(dirty.undo):
                os.pwrite(dirty.fd, old, offset)
                restored += len(old)
            if size != dirty.synced_size or dirty.undo:
                cut += 1
                what.append(f"cut {self._rel(dirty.path)} {size} -> {dirty.synced_size} bytes")
            dropped += max(0, size - dirty.synced_size)
            os.ftruncate(dirty.fd, dirty.synced_size)
            os.close(dirty.fd)
        self._dirty = {}
        shutil.rmtree(self.trash, ignore_errors=True)
        os.makedirs(self.trash, exist_ok=True)
        return Loss(cut, dropped, restored, undone, tuple(what[:SHOWN]), tuple(errors))

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.root) if path.startswith(self.root) else path

    def close(self) -> None:
        """Forget the bookkeeping, keeping every change (a clean shutdown)."""
        for dirty in self._dirty.values():
            os.close(dirty.fd)
        self._dirty = {}
        self._ops = []
        shutil.rmtree(self.trash, ignore_errors=True)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _undo(op: _NameOp) -> None:
    if op.kind in ("create", "mkdir"):
        _remove(op.path)
    elif op.kind == "unlink":
        os.rename(op.trash, op.path)
    elif op.kind == "rmdir":
        os.mkdir(op.path)
    elif op.kind == "rename":
        os.rename(op.path, op.other)
        if op.trash is not None:
            os.rename(op.trash, op.path)
