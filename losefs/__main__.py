"""``python -m losefs BACKING MOUNT [--keep NAME,...] [--report FILE]``: mount until a signal.

SIGUSR1: a power loss — stop serving, unmount, undo everything not durable on BACKING, write
what was lost as JSON to ``--report``, exit 0. SIGTERM or SIGINT: a clean shutdown — unmount
keeping every change. The mount is ready when MOUNT is a mount point.
"""

import argparse
import json
import signal
import sys
from pathlib import Path

import trio


async def _serve(fs, lose: list[bool]) -> None:
    import pyfuse3

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pyfuse3.main)
        with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                lose.append(signum == signal.SIGUSR1)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    """Mount, serve until a signal, unmount; 1 with one line when it cannot mount."""
    parser = argparse.ArgumentParser(prog="python -m losefs", description=__doc__.splitlines()[0])
    parser.add_argument("backing", type=Path)
    parser.add_argument("mount", type=Path)
    parser.add_argument("--keep", default="", help="file names never tracked (comma-separated)")
    parser.add_argument("--trash", type=Path, help="default: BACKING.trash")
    parser.add_argument("--report", type=Path, help="where a power loss writes what it lost")
    args = parser.parse_args(argv)
    try:
        import pyfuse3
    except ImportError:
        print("losefs: pyfuse3 is not installed: run `make install` as root", file=sys.stderr)
        return 1
    from losefs.disk import Disk
    from losefs.fuse import LoseFs

    backing = args.backing.resolve()
    keep = frozenset(n for n in args.keep.split(",") if n)
    disk = Disk(backing, args.trash or backing.with_name(backing.name + ".trash"), keep)
    fs = LoseFs(disk)
    options = set(pyfuse3.default_options) | {"fsname=losefs"}
    try:
        pyfuse3.init(fs, str(args.mount), options)
    except RuntimeError as exc:
        print(f"losefs: cannot mount {args.mount}: {exc}", file=sys.stderr)
        return 1
    lose: list[bool] = []
    try:
        trio.run(_serve, fs, lose)
    finally:
        pyfuse3.close(unmount=True)
        fs.close_handles()
    if lose and lose[0]:
        loss = disk.lose_unsynced()
        if args.report:
            args.report.write_text(json.dumps(loss.to_json()))
    else:
        disk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
