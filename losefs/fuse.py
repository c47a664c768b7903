"""The pyfuse3 shell: the kernel's requests, by inode and handle, routed to ``losefs.disk``.

pyfuse3 runs its request loop on trio, as the node and the harness do, and binds Debian's
libfuse3 (the maintained binding of the current FUSE ABI; fusepy targets libfuse 2). Inode
numbers are the backing files' own (the root excepted), each mapped to one backing path, moved
with renames; a handle is the backing file's descriptor. Attributes and entries are never
cached by the kernel (timeouts 0, no page cache kept across opens), so what the harness does to
the backing files while a node is down is what the node reads next.
"""

import errno
import os
import stat
from collections.abc import Callable
from functools import wraps
from typing import Any

import pyfuse3

from losefs.disk import Disk


def _errors(fn: Callable) -> Callable:
    """OSError -> FUSEError with its errno."""

    @wraps(fn)
    async def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None

    return wrapped


class LoseFs(pyfuse3.Operations):
    """A pass-through of ``disk.root`` that keeps ``disk``'s bookkeeping."""

    enable_writeback_cache = False

    def __init__(self, disk: Disk) -> None:
        super().__init__()
        self.disk = disk
        self._root_ino = os.stat(disk.root).st_ino
        self._paths: dict[int, str] = {pyfuse3.ROOT_INODE: disk.root}
        self._handles: dict[int, tuple[int, bool, bool]] = {}
        """Backing descriptor -> (inode, opened for append, tracked)."""

    def _ino(self, st: os.stat_result) -> int:
        return pyfuse3.ROOT_INODE if st.st_ino == self._root_ino else st.st_ino

    def _path(self, inode: int) -> str:
        try:
            return self._paths[inode]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None

    def _child(self, parent: int, name: bytes) -> str:
        return os.path.join(self._path(parent), os.fsdecode(name))

    def _entry(self, path: str | None = None, fd: int | None = None) -> pyfuse3.EntryAttributes:
        st = os.fstat(fd) if fd is not None else os.lstat(path)
        ino = self._ino(st)
        if path is not None:
            self._paths[ino] = path
        entry = pyfuse3.EntryAttributes()
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size"):
            setattr(entry, name, getattr(st, name))
        entry.st_ino = ino
        entry.st_blksize = st.st_blksize
        entry.st_blocks = st.st_blocks
        entry.st_atime_ns = st.st_atime_ns
        entry.st_mtime_ns = st.st_mtime_ns
        entry.st_ctime_ns = st.st_ctime_ns
        entry.generation = 0
        entry.entry_timeout = 0
        entry.attr_timeout = 0
        return entry

    def _moved(self, old: str, new: str) -> None:
        prefix = old + os.sep
        for ino, path in list(self._paths.items()):
            if path == old:
                self._paths[ino] = new
            elif path.startswith(prefix):
                self._paths[ino] = new + path[len(old) :]

    @_errors
    def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext):
        """An entry by name."""
        return self._entry(self._child(parent_inode, name))

    @_errors
    def getattr(self, inode: int, ctx: pyfuse3.RequestContext):
        """An inode's attributes."""
        return self._entry(self._path(inode))

    @_errors
    def setattr(self, inode, attr, fields, fh, ctx):
        """Size (tracked as a truncate), mode, owner, times."""
        path = self._path(inode)
        if fields.update_size:
            self.disk.before_truncate(self._real_ino(inode), path, attr.st_size)
            if fh is not None:
                os.ftruncate(fh, attr.st_size)
            else:
                os.truncate(path, attr.st_size)
        if fields.update_mode:
            os.chmod(path, stat.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            os.chown(
                path,
                attr.st_uid if fields.update_uid else -1,
                attr.st_gid if fields.update_gid else -1,
                follow_symlinks=False,
            )
        if fields.update_atime or fields.update_mtime:
            st = os.lstat(path)
            os.utime(
                path,
                ns=(
                    attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                    attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns,
                ),
                follow_symlinks=False,
            )
        return self._entry(path)

    def _real_ino(self, inode: int) -> int:
        return self._root_ino if inode == pyfuse3.ROOT_INODE else inode

    @_errors
    def readlink(self, inode, ctx):
        """A symlink's target."""
        return os.fsencode(os.readlink(self._path(inode)))

    @_errors
    def opendir(self, inode, ctx):
        """The directory's inode is its handle."""
        return inode

    @_errors
    def readdir(self, fh, start_id, token):
        """Entries from ``start_id`` on (names sorted, so ids are stable)."""
        path = self._path(fh)
        names = sorted(os.listdir(path))
        for i, name in enumerate(names[start_id:], start_id + 1):
            try:
                entry = self._entry(os.path.join(path, name))
            except FileNotFoundError:
                continue
            if not pyfuse3.readdir_reply(token, os.fsencode(name), entry, i):
                break

    @_errors
    def releasedir(self, fh):
        """Nothing held."""

    @_errors
    def fsyncdir(self, fh, datasync):
        """The directory's name operations become durable."""
        self.disk.dir_synced(self._path(fh))

    @_errors
    def mkdir(self, parent_inode, name, mode, ctx):
        """A directory (durable once its parent is synced)."""
        path = self._child(parent_inode, name)
        os.mkdir(path, mode)
        self.disk.created(path, os.lstat(path).st_ino, is_dir=True)
        return self._entry(path)

    @_errors
    def rmdir(self, parent_inode, name, ctx):
        """Remove an empty directory."""
        self.disk.rmdir(self._child(parent_inode, name))

    @_errors
    def unlink(self, parent_inode, name, ctx):
        """Remove a name; an open file stays readable through its handles."""
        path = self._child(parent_inode, name)
        ino = self._ino(os.lstat(path))
        self.disk.unlink(path)
        if self._paths.get(ino) == path:
            del self._paths[ino]

    @_errors
    def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        """Rename (RENAME_NOREPLACE honoured; RENAME_EXCHANGE refused)."""
        old = self._child(parent_inode_old, name_old)
        new = self._child(parent_inode_new, name_new)
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise OSError(errno.EINVAL, "RENAME_EXCHANGE is not supported")
        if flags & pyfuse3.RENAME_NOREPLACE and os.path.lexists(new):
            raise OSError(errno.EEXIST, "exists")
        self.disk.rename(old, new)
        self._moved(old, new)

    @_errors
    def symlink(self, parent_inode, name, target, ctx):
        """A symlink (durable once its directory is synced)."""
        path = self._child(parent_inode, name)
        os.symlink(os.fsdecode(target), path)
        self.disk.created(path, os.lstat(path).st_ino)
        return self._entry(path)

    @_errors
    def link(self, inode, new_parent_inode, new_name, ctx):
        """A hard link (durable once its directory is synced)."""
        path = self._child(new_parent_inode, new_name)
        os.link(self._path(inode), path)
        self.disk.created(path, os.lstat(path).st_ino)
        return self._entry(path)

    def _open(self, path: str, flags: int, mode: int = 0o644) -> pyfuse3.FileInfo:
        fd = os.open(path, flags, mode)
        self._handles[fd] = (
            os.fstat(fd).st_ino,
            bool(flags & os.O_APPEND),
            self.disk.tracked(path),
        )
        return pyfuse3.FileInfo(fh=fd, keep_cache=False)

    @_errors
    def open(self, inode, flags, ctx):
        """Open the backing file (O_TRUNC tracked as a truncate)."""
        path = self._path(inode)
        if flags & os.O_TRUNC:
            self.disk.before_truncate(self._real_ino(inode), path, 0)
        return self._open(path, flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOCTTY))

    @_errors
    def create(self, parent_inode, name, mode, flags, ctx):
        """Create and open a file (durable, empty, once its directory is synced)."""
        path = self._child(parent_inode, name)
        info = self._open(path, flags | os.O_CREAT | os.O_EXCL, mode)
        self.disk.created(path, self._handles[info.fh][0])
        return info, self._entry(path)

    @_errors
    def read(self, fh, off, size):
        """The backing file's bytes."""
        return os.pread(fh, size, off)

    @_errors
    def write(self, fh, off, buf):
        """Write through, remembering any synced bytes it overwrites."""
        ino, append, tracked = self._handles[fh]
        if append:
            off = os.fstat(fh).st_size
        if tracked:
            self.disk.before_write(ino, f"/proc/self/fd/{fh}", off, len(buf))
        return os.pwrite(fh, buf, off)

    @_errors
    def fsync(self, fh, datasync):
        """The file's contents become durable."""
        self.disk.synced(self._handles[fh][0], fh, bool(datasync))

    @_errors
    def flush(self, fh):
        """Nothing buffered here."""

    @_errors
    def release(self, fh):
        """Close the backing descriptor."""
        del self._handles[fh]
        os.close(fh)

    @_errors
    def statfs(self, ctx):
        """The backing file system's."""
        st = os.statvfs(self.disk.root)
        out = pyfuse3.StatvfsData()
        for name in (
            "f_bsize",
            "f_frsize",
            "f_blocks",
            "f_bfree",
            "f_bavail",
            "f_files",
            "f_ffree",
            "f_favail",
            "f_namemax",
        ):
            setattr(out, name, getattr(st, name))
        return out

    def forget(self, inode_list):
        """Paths stay mapped: inodes are the backing files' own, so a stale entry is harmless."""

    def close_handles(self) -> None:
        """Close every backing descriptor still open (before the bookkeeping is applied)."""
        for fd in list(self._handles):
            os.close(fd)
        self._handles.clear()
