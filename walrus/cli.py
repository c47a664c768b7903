"""``walrus``: the node's command line."""

import argparse
import sys


def _store_info(args: argparse.Namespace) -> int:
    from walrus.storage import Store

    with Store(args.dir, fsync="none") as store:
        for note in store.recovery_notes:
            print(f"recovered: {note}")
        topics = store.topics()
        if not topics:
            print(f"{args.dir}: no segments")
        for topic in topics:
            cursor = store.cursor(topic)
            where = (
                "unset" if cursor is None else f"segment {cursor.segment} offset {cursor.offset}"
            )
            print(f"topic {topic} (cursor {where})")
            for info in store.segments(topic):
                state = "sealed" if info.sealed else "open"
                print(
                    f"  segment {info.segment:>6}  {state:<6} {info.count:>10} entries"
                    f"  {info.bytes:>12} bytes"
                )
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``walrus``."""
    p = argparse.ArgumentParser(prog="walrus", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    store = sub.add_parser("store", help="inspect a node's storage").add_subparsers(
        dest="store", required=True
    )
    info = store.add_parser(
        "info",
        help="open a data directory (recovering torn tails) and list topics, segments, cursors",
    )
    info.add_argument("dir", help="the node's data directory")
    info.set_defaults(run=_store_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from walrus.storage import StorageError

    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (StorageError, ValueError, OSError) as exc:
        print(f"walrus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
