"""Durable small files: write to a temporary, fsync it, rename over, fsync the directory.

Used for everything the node must find again exactly after a crash (node identity; cursors, as
durably as the store's fsync policy makes appends). Clock control is not: the harness writes it.
"""

import json
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so that entries created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` that survives a power loss: each directory it creates is made durable by an
    fsync of its parent (a new directory's entry is otherwise as volatile as a new file's)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_dir(directory.parent)


def atomic_write(path: Path, data: bytes, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash of the process leaves either the old or the
    new file; with ``sync``, a power loss too (the file and its directory fsynced). Without it,
    once anything syncs the directory the new name can outlive its bytes: a power loss may
    leave ``path`` empty, and its reader must take that for "never written" or "damaged"."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    """fsync a file that was written without ``sync``, and its directory entry."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, value: object, sync: bool = True) -> None:
    """atomic_write of ``value`` as compact JSON."""
    atomic_write(path, json.dumps(value, separators=(",", ":")).encode(), sync)
