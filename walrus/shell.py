"""``walrus cli``: an interactive REPL like walrus-cli, and one-shot commands.

The REPL sends each line verbatim and prints the raw reply; ``exit``, ``quit`` or ``q`` leave.
One-shot commands print what walrus-cli prints: nothing after a successful ``register`` or
``put``, the payload (or ``EMPTY``) for ``get``, the JSON for ``state`` and ``metrics``.
"""

import sys

from walrus.client import Client, WalrusError, check


def repl(addr: str) -> int:
    """Read commands from stdin until EOF or exit."""
    client = Client.at(addr)
    interactive = sys.stdin.isatty()
    print(f"connected to {addr}; type REGISTER/PUT/GET/STATE/METRICS, 'exit' to quit")
    try:
        while True:
            try:
                line = input("walrus> " if interactive else "")
            except EOFError:
                print()
                return 0
            line = line.strip()
            if not line:
                continue
            if line.lower() in ("exit", "quit", "q"):
                return 0
            try:
                print(client.request(line.encode()).decode("utf-8", "replace"))
            except WalrusError as exc:
                print(f"ERR {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print()
        return 0
    finally:
        client.close()


def one_shot(addr: str, op: str, args: list[str]) -> int:
    """Run one command; 0 on success, 1 (with the error on stderr) otherwise."""
    needed = {"register": 1, "put": 2, "get": 1, "state": 1, "metrics": 0}[op]
    if len(args) != needed:
        usage = {"register": "TOPIC", "put": "TOPIC PAYLOAD", "get": "TOPIC", "state": "TOPIC"}
        print(f"walrus cli: {op} takes {usage.get(op, 'no arguments')}", file=sys.stderr)
        return 2
    body = " ".join([op.upper(), *args]).encode()
    try:
        with Client.at(addr) as client:
            reply = check(client.request(body))
    except WalrusError as exc:
        print(f"walrus cli: {exc}", file=sys.stderr)
        return 1
    if op in ("register", "put"):
        return 0
    if op == "get":
        print("EMPTY" if reply == b"EMPTY" else reply[3:].decode("utf-8", "replace"))
        return 0
    print(reply.decode("utf-8", "replace"))
    return 0
