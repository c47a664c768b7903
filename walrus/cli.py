"""``walrus``: run a node, a local cluster, or talk to a node."""

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from walrus.config import (
    DEFAULT_MAX_SEGMENT_ENTRIES,
    Address,
    ConfigError,
    NodeConfig,
    Peer,
    default_replicas,
    env_int,
)


def _peer(text: str) -> Peer:
    node, sep, addrs = text.partition("=")
    parts = addrs.split(",")
    if not sep or not node.isdigit() or len(parts) != 3:
        raise ConfigError(
            f"--peer takes ID=CLIENT_HOST:PORT,RPC_HOST:PORT,RAFT_HOST:PORT, not {text!r}"
        )
    client, rpc, raft = (Address.parse(p, f"--peer {node}") for p in parts)
    return Peer(int(node), client, rpc, raft)


def _route(text: str) -> tuple[int, Address, Address]:
    node, sep, addrs = text.partition("=")
    parts = addrs.split(",")
    if not sep or not node.isdigit() or len(parts) != 2:
        raise ConfigError(f"--route takes ID=RPC_HOST:PORT,RAFT_HOST:PORT, not {text!r}")
    return int(node), Address.parse(parts[0], "--route"), Address.parse(parts[1], "--route")


def add_node_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``walrus node`` and ``walrus cluster up``."""
    g = p.add_argument_group("data plane")
    g.add_argument(
        "--max-segment-entries",
        type=int,
        help="entries per segment before rollover (default: $WALRUS_MAX_SEGMENT_ENTRIES or "
        f"{DEFAULT_MAX_SEGMENT_ENTRIES:,})",
    )
    g.add_argument(
        "--fsync",
        default="each",
        help="each (ack after fdatasync; default), none, or interval:<ms>",
    )
    g.add_argument(
        "--replicas",
        type=int,
        help="copies of each segment, on its leader and R-1 followers; a PUT is acknowledged "
        "once a majority hold it (default 3 on 3 or more nodes, else 1; --compat walrus: 1)",
    )
    g.add_argument("--lease-ms", type=int, default=2000, help="lease duration L (default 2000)")
    g.add_argument("--drift", type=float, default=0.1, help="clock drift bound rho (default 0.1)")
    g.add_argument(
        "--compat",
        choices=["walrus"],
        help="reproduce Walrus 0.3's unsafe behaviour (for the verifier to catch)",
    )
    g.add_argument(
        "--forward-timeout-ms",
        type=int,
        default=5000,
        help="node-to-node call timeout (default 5000)",
    )
    g.add_argument(
        "--monitor-ms",
        type=int,
        help="compat mode's rollover monitor period (default: $WALRUS_MONITOR_CHECK_MS or 10000)",
    )
    g.add_argument(
        "--cluster-secret-file",
        metavar="FILE",
        help="the cluster's secret (mode 0600; `walrus secret new FILE` makes one): it encrypts "
        "Raft traffic and authenticates node-to-node RPC (default: $WALRUS_CLUSTER_SECRET)",
    )
    g.add_argument(
        "--insecure",
        action="store_true",
        help="run without a cluster secret: anyone who reaches the Raft port can run code here",
    )
    g.add_argument(
        "--max-connections",
        type=int,
        default=1024,
        help="client connections at once; when full the longest-idle one makes room, else a "
        "newcomer is refused (default 1024)",
    )
    g.add_argument(
        "--idle-timeout-s",
        type=float,
        default=300.0,
        help="close client connections idle this long (default 300)",
    )
    g.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    g.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this node goes away (for harnesses)",
    )


def cluster_secret(args: argparse.Namespace) -> str | None:
    """The secret from --cluster-secret-file or $WALRUS_CLUSTER_SECRET; None with --insecure;
    ConfigError saying how to make one if there is none."""
    from walrus.auth import SECRET_ENV, AuthError, check_secret, read_secret

    given = getattr(args, "cluster_secret_file", None)
    if args.insecure:
        if given or os.environ.get(SECRET_ENV):
            raise ConfigError("--insecure and a cluster secret exclude each other")
        return None
    try:
        if given:
            return read_secret(Path(given))
        if os.environ.get(SECRET_ENV):
            return check_secret(os.environ[SECRET_ENV].strip(), f"${SECRET_ENV}")
    except AuthError as exc:
        raise ConfigError(str(exc)) from None
    raise ConfigError(
        "no cluster secret: make one with `walrus secret new FILE` and give every node "
        f"--cluster-secret-file FILE (or set {SECRET_ENV}); --insecure runs without one"
    )


def node_config(
    args: argparse.Namespace,
    node_id: int,
    peers: dict[int, Peer],
    data_dir: Path,
    rpc_routes: dict[int, Address] | None = None,
    raft_routes: dict[int, Address] | None = None,
) -> NodeConfig:
    """A NodeConfig from parsed options."""
    from walrus.auth import raft_password
    from walrus.lease import LeaseConfig
    from walrus.metadata import RaftSettings
    from walrus.server import Limits
    from walrus.storage import FsyncPolicy

    max_entries = args.max_segment_entries
    if max_entries is None:
        max_entries = env_int("WALRUS_MAX_SEGMENT_ENTRIES", DEFAULT_MAX_SEGMENT_ENTRIES, 1)
    monitor_ms = args.monitor_ms
    if monitor_ms is None:
        monitor_ms = max(10, env_int("WALRUS_MONITOR_CHECK_MS", 10_000, 1))
    try:
        fsync = FsyncPolicy.parse(args.fsync)
        lease = LeaseConfig(args.lease_ms / 1000, args.drift)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.forward_timeout_ms <= 0:
        raise ConfigError("--forward-timeout-ms must be positive")
    secret = cluster_secret(args)
    if args.max_connections < 1 or args.idle_timeout_s <= 0:
        raise ConfigError("--max-connections and --idle-timeout-s must be positive")
    limits = Limits(max_connections=args.max_connections, idle_timeout=args.idle_timeout_s)
    return NodeConfig(
        node_id=node_id,
        data_dir=data_dir,
        peers=peers,
        rpc_routes=rpc_routes or {},
        raft_routes=raft_routes or {},
        max_segment_entries=max_entries,
        fsync=fsync,
        lease=lease,
        compat=args.compat == "walrus",
        replicas=args.replicas or default_replicas(len(peers), args.compat == "walrus"),
        secret=secret,
        limits=limits,
        raft=RaftSettings(password=None if secret is None else raft_password(secret)),
        forward_timeout=args.forward_timeout_ms / 1000,
        monitor_interval=monitor_ms / 1000,
        exit_with_parent=args.exit_with_parent,
    )


def _node(args: argparse.Namespace) -> int:
    from walrus.node import run_node

    me = Peer(
        args.id,
        Address.parse(args.listen, "--listen"),
        Address.parse(args.rpc, "--rpc"),
        Address.parse(args.raft, "--raft"),
    )
    peers = {me.id: me}
    for text in args.peer:
        peer = _peer(text)
        if peer.id in peers:
            raise ConfigError(f"node {peer.id} is given twice (--id and --peer, or two --peer)")
        peers[peer.id] = peer
    rpc_routes, raft_routes = {}, {}
    for text in args.route:
        node, rpc, raft = _route(text)
        rpc_routes[node], raft_routes[node] = rpc, raft
    config = node_config(args, args.id, peers, Path(args.data_dir), rpc_routes, raft_routes)
    _setup_logging(args.log_level, args.id)
    if config.secret is None:
        logging.getLogger("walrus.node").warning(
            "RUNNING INSECURE (--insecure): no cluster secret, so Raft messages are unpickled "
            "unauthenticated and node RPC is open: anyone who can reach %s can run code here",
            config.me.raft,
        )
    run_node(config)
    return 0


def _setup_logging(level: str, node: int) -> None:
    try:
        logging.basicConfig(
            level=level.upper(),
            format=f"%(asctime)s node-{node} %(levelname)s %(name)s: %(message)s",
        )
    except ValueError:
        raise ConfigError(
            f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {level!r}"
        ) from None
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)


def _cluster_up(args: argparse.Namespace) -> int:
    from walrus.auth import SECRET_ENV, SECRET_FILE, write_secret
    from walrus.cluster import cluster_up

    data_dir = Path(args.data_dir)
    if not (args.insecure or args.cluster_secret_file or os.environ.get(SECRET_ENV)):
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            write_secret(data_dir / SECRET_FILE)
        except OSError as exc:
            raise ConfigError(f"cannot use data directory {data_dir}: {exc.strerror}") from None
        args.cluster_secret_file = str((data_dir / SECRET_FILE).resolve())
    node_config(args, 1, {1: Peer(1, Address("h", 1), Address("h", 2), Address("h", 3))}, Path("."))
    secret = (
        ["--insecure"]
        if args.insecure
        else ["--cluster-secret-file", str(Path(args.cluster_secret_file).resolve())]
        if args.cluster_secret_file
        else []  # $WALRUS_CLUSTER_SECRET reaches the nodes through the environment
    )
    extra = [
        *secret,
        *(
            ["--max-segment-entries", str(args.max_segment_entries)]
            if args.max_segment_entries
            else []
        ),
        "--fsync",
        args.fsync,
        *(["--replicas", str(args.replicas)] if args.replicas else []),
        "--lease-ms",
        str(args.lease_ms),
        "--drift",
        str(args.drift),
        "--forward-timeout-ms",
        str(args.forward_timeout_ms),
        "--max-connections",
        str(args.max_connections),
        "--idle-timeout-s",
        str(args.idle_timeout_s),
        *(["--monitor-ms", str(args.monitor_ms)] if args.monitor_ms else []),
        *(["--compat", args.compat] if args.compat else []),
        "--log-level",
        args.log_level,
        "--exit-with-parent",
    ]
    return cluster_up(args.nodes, args.base_port, data_dir, extra)


def _cluster_control(args: argparse.Namespace) -> int:
    from walrus.cluster import control

    if args.cluster != "status" and args.node is None:
        raise ConfigError(f"walrus cluster {args.cluster} needs --node N")
    reply = control(Path(args.data_dir), args.cluster, args.node)
    if not reply.get("ok"):
        print(f"walrus: {reply.get('error')}", file=sys.stderr)
        return 1
    if args.cluster == "status":
        for node, st in sorted(reply["nodes"].items(), key=lambda kv: int(kv[0])):
            print(f"node {node}: {st['state']} (pid {st['pid']})")
    else:
        print(reply.get("message", "done"))
    return 0


def _secret_new(args: argparse.Namespace) -> int:
    from walrus.auth import write_secret

    path = Path(args.file)
    if path.exists():
        raise ConfigError(f"{path} exists already; a cluster keeps its secret")
    try:
        write_secret(path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    print(
        f"wrote a new cluster secret to {path} (mode 0600); give every node "
        f"--cluster-secret-file {path}"
    )
    return 0


def _cli(args: argparse.Namespace) -> int:
    from walrus.shell import one_shot, repl

    if args.op is None:
        return repl(args.addr)
    return one_shot(args.addr, args.op, args.args)


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

    node = sub.add_parser("node", help="run one node")
    node.add_argument("--id", type=int, required=True, help="this node's id (a positive integer)")
    node.add_argument("--data-dir", required=True, help="where the node keeps everything")
    node.add_argument("--listen", required=True, help="client address HOST:PORT")
    node.add_argument("--rpc", required=True, help="node RPC address HOST:PORT (cluster network)")
    node.add_argument("--raft", required=True, help="Raft address HOST:PORT (cluster network)")
    node.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="ID=CLIENT,RPC,RAFT",
        help="another node of the cluster (repeat for each)",
    )
    node.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="ID=RPC,RAFT",
        help="reach node ID's RPC and Raft at these addresses instead (e.g. through a proxy)",
    )
    add_node_options(node)
    node.set_defaults(run=_node)

    cluster = sub.add_parser("cluster", help="local clusters").add_subparsers(
        dest="cluster", required=True
    )
    up = cluster.add_parser("up", help="run N nodes on 127.0.0.1 until interrupted")
    up.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    up.add_argument(
        "--base-port", type=int, default=10080, help="P: node i uses P+i, P+100+i, P+200+i"
    )
    up.add_argument("--data-dir", required=True, help="node i's data goes in DATA_DIR/node-i")
    add_node_options(up)
    up.set_defaults(run=_cluster_up)
    for op, what in (
        ("kill", "SIGKILL a node of a running `cluster up` (its data kept)"),
        ("pause", "SIGSTOP a node"),
        ("resume", "SIGCONT a paused node"),
        ("restart", "start a node again (killing it first if it runs); waits until it is ready"),
        ("status", "each node's state"),
    ):
        ctl = cluster.add_parser(op, help=what)
        ctl.add_argument("--data-dir", required=True, help="the --data-dir of the `cluster up`")
        ctl.add_argument("--node", type=int, help="the node (1..N)")
        ctl.set_defaults(run=_cluster_control)

    cli = sub.add_parser("cli", help="talk to a node: a REPL, or one command")
    cli.add_argument("--addr", default="127.0.0.1:9091", help="the node's client address")
    cli.add_argument("op", nargs="?", choices=["register", "put", "get", "state", "metrics"])
    cli.add_argument("args", nargs="*", help="topic, and the payload for put")
    cli.set_defaults(run=_cli)

    secret = sub.add_parser("secret", help="cluster secrets").add_subparsers(
        dest="secret", required=True
    )
    new = secret.add_parser("new", help="write a new random cluster secret (mode 0600)")
    new.add_argument("file", help="where to write it (must not exist)")
    new.set_defaults(run=_secret_new)

    store = sub.add_parser("store", help="inspect a node's storage").add_subparsers(
        dest="store", required=True
    )
    info = store.add_parser(
        "info",
        help="open a store directory (recovering torn tails) and list topics, segments, cursors",
    )
    info.add_argument("dir", help="the store directory (a node's DATA_DIR/store)")
    info.set_defaults(run=_store_info)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from walrus.storage import StorageError

    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (ConfigError, StorageError, ValueError, OSError) as exc:
        print(f"walrus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
