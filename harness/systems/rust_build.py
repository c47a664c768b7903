"""The original Walrus built from a source tree the user gives, with cargo, cached by content.

The harness never downloads Walrus: ``--walrus-src DIR`` (or ``WALRUS_RS_SRC``) names a checkout
or an exported tree of github.com/nubskr/walrus, with or without ``.git``. Its
``distributed-walrus`` package is built with the host's cargo (``cargo build --release``; Rust's
crate registry must be reachable the first time; ``--locked``, so the tree's own Cargo.lock is
used and the tree is never written to), into a target directory shared by every build so that a
rebuild after a small change is incremental. The binary is kept under a hash of the
tree's files (everything but ``.git``, ``target`` and cargo's other outputs), so the same tree is
built once.
"""

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.tools import require

PACKAGE = "distributed-walrus"
SKIP_DIRS = {".git", "target", "test_data", "test_data_rollover", "__pycache__"}


class BuildError(RuntimeError):
    """The source tree is not a Walrus tree, or cargo could not build it; one line says which."""


def cache_root() -> Path:
    """Where built binaries and cargo's shared target directory live."""
    base = os.environ.get("WALRUS_HARNESS_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "walrus-harness"


def source_tree(given: str | None) -> Path:
    """The Walrus tree to build: ``given``, else $WALRUS_RS_SRC; BuildError if neither is a
    Walrus tree (a directory holding ``distributed-walrus/Cargo.toml``)."""
    text = given or os.environ.get("WALRUS_RS_SRC")
    if not text:
        raise BuildError(
            "walrus-rs needs the original Walrus's sources: give --walrus-src DIR or set "
            "WALRUS_RS_SRC (a checkout or export of github.com/nubskr/walrus)"
        )
    root = Path(text).expanduser().resolve()
    if (root / "Cargo.toml").is_file() and root.name == PACKAGE:
        root = root.parent  # the distributed-walrus directory itself was given
    manifest = root / PACKAGE / "Cargo.toml"
    if not root.is_dir():
        raise BuildError(f"{text}: no such directory (--walrus-src / WALRUS_RS_SRC)")
    if not manifest.is_file() or f'name = "{PACKAGE}"' not in manifest.read_text(errors="replace"):
        raise BuildError(
            f"{text} is not a Walrus source tree: it has no {PACKAGE}/Cargo.toml naming the "
            f"{PACKAGE} package"
        )
    return root


def tree_hash(root: Path) -> str:
    """A hash of every source file's path and content under ``root``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def binary(root: Path, log: Callable[[str], None] = print) -> Path:
    """The node binary built from ``root`` (built now unless this tree's build is cached)."""
    return cargo_binary(root / PACKAGE / "Cargo.toml", PACKAGE, tree_hash(root), "walrus-rs", log)


def cargo_binary(
    manifest: Path, package: str, key: str, cache: str, log: Callable[[str], None] = print
) -> Path:
    """``package``'s release binary built from ``manifest`` with the host's cargo (--locked), kept
    under ``cache``/``key`` in the cache root so the same sources are built once; cargo's target
    directory is shared by every build under ``cache``."""
    out = cache_root() / cache / key / package
    if out.is_file():
        return out
    cargo = require("cargo")
    target = cache_root() / cache / "target"
    log(
        f"building {package} from {manifest.parent} with cargo ({key}); "
        "the first build takes minutes"
    )
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    done = subprocess.run(
        [cargo, "build", "--release", "--locked", "--manifest-path", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BuildError(f"cargo could not build {manifest.parent}: {_first_error(done.stderr)}")
    built = target / "release" / package
    if not built.is_file():
        raise BuildError(f"cargo built {manifest.parent} but left no {built}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    shutil.copy2(built, partial)
    partial.replace(out)
    return out


def _first_error(stderr: str) -> str:
    """The first ``error`` line cargo printed (else its last line), for a one-line message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error"):
            return line[:300]
    return (lines[-1] if lines else "no output")[:300]
