"""``walrus-harness serve``: the results browser over a run store."""

import argparse
from pathlib import Path


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the CLI's subparsers ``sub``."""
    serve = sub.add_parser("serve", help="a results browser over the run store, in a web page")
    serve.add_argument("--store", default="results/runs", help="the run store (results/runs)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (8080; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from harness.serve.app import make_server

    store = Path(args.store)
    if not store.is_dir():
        raise ValueError(f"{store}: no such run store (run a test first, or pass --store DIR)")
    try:
        server = make_server(store, args.host, args.port, lambda m: None)
    except OSError as exc:
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    print(f"walrus-harness: serving {store} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("walrus-harness: stopped")
    finally:
        server.server_close()
    return 0
