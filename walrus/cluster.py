"""``walrus cluster up``: N nodes as child processes on one host, until interrupted.

Node i (1..N) gets client port P+i, RPC port P+100+i, Raft port P+200+i and the data directory
``<data-dir>/node-<i>`` (its output goes to ``node.log`` there). Once every node answers
``METRICS`` with a Raft leader known and a lease held, the command prints one line, ``ready``; on
SIGINT or SIGTERM it stops every node with SIGTERM (SIGKILL after 10 s) and exits.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

from walrus.client import Client, WalrusError
from walrus.config import ConfigError, Peer, local_cluster

STOP_GRACE = 10.0


def node_command(node: int, peers: dict[int, Peer], data_dir: Path, extra: list[str]) -> list[str]:
    """The ``walrus node`` command line for node ``node`` of ``peers``."""
    me = peers[node]
    cmd = [
        sys.executable,
        "-m",
        "walrus",
        "node",
        "--id",
        str(node),
        "--data-dir",
        str(data_dir),
        "--listen",
        str(me.client),
        "--rpc",
        str(me.rpc),
        "--raft",
        str(me.raft),
    ]
    for peer in peers.values():
        if peer.id != node:
            cmd += ["--peer", f"{peer.id}={peer.client},{peer.rpc},{peer.raft}"]
    return cmd + extra


def node_ready(peer: Peer) -> bool:
    """True once the node answers METRICS, knows a Raft leader and (unless in compat mode, which
    has no leases) holds a lease, so that it can take writes."""
    try:
        with Client(peer.client.host, peer.client.port, timeout=2) as client:
            metrics = client.metrics()
    except (WalrusError, OSError, ValueError):
        return False
    ours = metrics.get("walrus", {})
    return metrics.get("current_leader") is not None and (
        ours.get("compat") or ours.get("lease_holds")
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cluster_up(
    nodes: int, base_port: int, data_dir: Path, node_args: list[str], ready_timeout: float = 60.0
) -> int:
    """Run the cluster until SIGINT/SIGTERM; returns the exit status."""
    peers = local_cluster(nodes, base_port)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot use data directory {data_dir}: {exc.strerror}") from None
    stop = []
    previous = {
        s: signal.signal(s, lambda signum, frame: stop.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    procs: list[subprocess.Popen] = []
    try:
        for i in peers:
            node_dir = data_dir / f"node-{i}"
            node_dir.mkdir(exist_ok=True)
            with open(node_dir / "node.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        node_command(i, peers, node_dir, node_args),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + ready_timeout
        waiting = set(peers)
        while waiting and not stop:
            for i, proc in zip(peers, procs, strict=True):
                if proc.poll() is not None:
                    tail = (data_dir / f"node-{i}" / "node.log").read_text(errors="replace")
                    print(
                        f"walrus: node {i} exited with status {proc.returncode}:\n"
                        + "\n".join(tail.splitlines()[-5:]),
                        file=sys.stderr,
                    )
                    return 1
            waiting = {i for i in waiting if not node_ready(peers[i])}
            if waiting and time.monotonic() > deadline:
                print(
                    f"walrus: nodes {sorted(waiting)} did not answer within {ready_timeout:g} s",
                    file=sys.stderr,
                )
                return 1
            if waiting:
                time.sleep(0.2)
        if stop:
            return 130
        print("ready", flush=True)
        while not stop:
            for i, proc in zip(peers, procs, strict=True):
                if proc.poll() is not None:
                    print(f"walrus: node {i} exited with status {proc.returncode}", file=sys.stderr)
                    stop.append(None)
            time.sleep(0.2)
        return 0
    finally:
        _stop(procs)
        for s, handler in previous.items():
            signal.signal(s, handler)
