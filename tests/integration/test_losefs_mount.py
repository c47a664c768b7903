"""losefs as the kernel sees it: a real FUSE mount, real files through it, a power loss."""

import os
from pathlib import Path

import pytest
import trio

from harness.cluster.power import PowerMount
from tests.integration.conftest import no_fuse

pytestmark = pytest.mark.skipif(no_fuse() is not None, reason=no_fuse() or "")


def durable_write(path: Path, data: bytes) -> None:
    """What walrus.durable does: temporary, fsync, rename, fsync the directory."""
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def test_a_power_loss_through_the_mount_keeps_only_what_was_synced(tmp_path):
    backing, mount = tmp_path / "node-1", tmp_path / "node-1.losefs"

    async def main() -> dict:
        power = PowerMount(backing, mount, ("node.log",))
        await power.up()
        try:
            os.mkdir(mount / "store")
            fd = os.open(mount, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            with open(mount / "store" / "seg", "wb") as f:
                f.write(b"acknowledged")
                f.flush()
                os.fdatasync(f.fileno())
                f.write(b"-not-synced")
            durable_write(mount / "store" / "cursor", b"7")
            (mount / "store" / "cursor").write_bytes(b"9")  # in place, never synced
            with open(mount / "store" / "orphan", "wb") as f:
                f.write(b"synced, but its name never was")
                f.flush()
                os.fsync(f.fileno())
            with open(mount / "node.log", "ab") as f:
                f.write(b"the harness's evidence\n")
            assert (mount / "store" / "seg").read_bytes() == b"acknowledged-not-synced"
            return await power.lose()
        finally:
            await power.down()

    loss = trio.run(main)
    assert not os.path.ismount(mount)
    store = backing / "store"
    assert (store / "seg").read_bytes() == b"acknowledged"
    assert (store / "cursor").read_bytes() == b"7"
    assert not (store / "orphan").exists()
    assert (backing / "node.log").read_bytes() == b"the harness's evidence\n"
    assert loss["bytes_dropped"] > 0 and loss["names_undone"] >= 1, loss


def test_a_clean_unmount_keeps_everything_and_a_remount_sees_it(tmp_path):
    backing, mount = tmp_path / "d", tmp_path / "d.losefs"

    async def main() -> bytes:
        power = PowerMount(backing, mount, ())
        await power.up()
        (mount / "f").write_bytes(b"never synced")
        await power.down()
        await power.up()
        try:
            return (mount / "f").read_bytes()
        finally:
            await power.down()

    assert trio.run(main) == b"never synced"


def test_a_mount_whose_losefs_died_is_detached_and_mounted_again(tmp_path):
    backing, mount = tmp_path / "d", tmp_path / "d.losefs"

    async def main() -> tuple[int, bytes]:
        power = PowerMount(backing, mount, ())
        await power.up()
        (mount / "f").write_bytes(b"kept")
        os.killpg(power._proc.pid, 9)  # losefs gone, its mount left: stat says ENOTCONN
        await power._proc.wait()
        with pytest.raises(OSError) as dead:
            os.stat(mount)
        await power.up()
        try:
            return dead.value.errno, (mount / "f").read_bytes()
        finally:
            await power.down()

    errno_seen, data = trio.run(main)
    assert errno_seen == 107  # ENOTCONN: the dead mount the restart had to get past
    assert data == b"kept"
