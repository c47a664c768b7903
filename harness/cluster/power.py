"""Power loss: each node's data directory seen through a losefs mount made on the host.

With ``lose-unsynced`` in the nemesis, a node's files live in its usual data directory (the
backing: what the harness, the checkers and the disk faults read), and the node is started on a
losefs mount of it (``node-N.losefs`` beside it), which passes everything through and remembers
what was not made durable. A power loss is: the node killed, losefs told to lose (SIGUSR1), which
unmounts and undoes the unsynced state on the backing directory, then a fresh mount for the
restart. The local backend starts its node processes on the mount; the Docker backend
bind-mounts it as the container's ``/data`` (the bind is made anew at every container start, so
a restarted container sees the fresh mount): FUSE runs on the host, and the node image needs
neither /dev/fuse nor CAP_SYS_ADMIN. Needs root (or fusermount3), /dev/fuse and pyfuse3 on the
host (``make install``).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import trio

from harness.systems.base import Unsupported

MOUNT_TIMEOUT = 10.0


def preflight() -> None:
    """Raise Unsupported with one line if a losefs mount cannot be made here."""
    if not Path("/dev/fuse").exists():
        raise Unsupported("lose-unsynced needs /dev/fuse (FUSE), which this host lacks")
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        raise Unsupported("lose-unsynced needs root or fusermount3 (`apt-get install fuse3`)")
    try:
        import pyfuse3  # noqa: F401
    except ImportError:
        raise Unsupported(
            "lose-unsynced needs pyfuse3 (built against libfuse3): run `make install` as root"
        ) from None


def losefs_log(backing: Path) -> Path:
    """Where the losefs mount of ``backing`` writes its output: ``node-N.losefs.log``."""
    return backing.with_name(backing.name + ".losefs.log")


def mounts(root: Path, nodes: list[int], keep: tuple[str, ...]) -> dict[int, "PowerMount"]:
    """A losefs mount for each node's data directory ``root/node-N``, at ``root/node-N.losefs``."""
    return {n: PowerMount(root / f"node-{n}", root / f"node-{n}.losefs", keep) for n in nodes}


class PowerMount:
    """One node's losefs mount of ``backing`` at ``mount``, files named in ``keep`` untracked."""

    def __init__(self, backing: Path, mount: Path, keep: tuple[str, ...]) -> None:
        self.backing = backing
        self.mount = mount
        self.keep = keep
        self._proc: trio.Process | None = None
        self._report = backing.with_name(backing.name + ".loss.json")

    async def up(self) -> None:
        """Mount (no-op if mounted); RuntimeError with losefs's words if it does not come up."""
        if self._proc is not None and self._proc.returncode is None:
            return
        await _unmount(self.mount)  # a mount whose losefs died (lstat: ENOTCONN) is in the way
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mount.mkdir(parents=True, exist_ok=True)
        log = losefs_log(self.backing)
        argv = [sys.executable, "-m", "losefs", str(self.backing), str(self.mount)]
        argv += ["--keep", ",".join(self.keep), "--report", str(self._report)]
        with open(log, "ab") as out:
            self._proc = await trio.lowlevel.open_process(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        with trio.move_on_after(MOUNT_TIMEOUT):
            while not os.path.ismount(self.mount):
                if self._proc.returncode is not None:
                    break
                await trio.sleep(0.02)
        if not os.path.ismount(self.mount):
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"losefs did not mount {self.mount}: {' '.join(tail) or 'no word'}")

    async def lose(self) -> dict[str, object]:
        """Lose what is not durable (the node must be dead); what was lost. Leaves it unmounted."""
        self._report.unlink(missing_ok=True)
        await self._end(signal.SIGUSR1)
        try:
            report: dict[str, object] = json.loads(self._report.read_text())
            return report
        except (OSError, ValueError):
            return {"error": "losefs wrote no report"}

    async def down(self) -> None:
        """Unmount keeping everything (a clean shutdown)."""
        await self._end(signal.SIGTERM)

    async def _end(self, signum: int) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signum)
            with trio.move_on_after(MOUNT_TIMEOUT):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await _unmount(self.mount)


async def _unmount(mount: Path) -> None:
    """Detach whatever is mounted at ``mount``, a mount whose losefs died included (stat on it
    fails with ENOTCONN, so ``os.path.ismount`` calls it no mount); nothing if none is."""
    await trio.run_process(["umount", "-l", str(mount)], check=False, capture_stderr=True)
