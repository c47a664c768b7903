"""Real node processes for integration tests: start, SIGKILL, SIGSTOP/SIGCONT, restart."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.cluster.local import free_base_port
from walrus.auth import secret_args
from walrus.client import Client
from walrus.cluster import node_command, node_ready
from walrus.config import local_cluster


class LocalNodes:
    """N node processes on 127.0.0.1 with separate data directories under ``root``."""

    def __init__(self, root: Path, nodes: int = 3, args: list[str] | None = None, env=None):
        self.root = root
        self.peers = local_cluster(nodes, free_base_port(nodes))
        self.args = list(args or [])
        if not {"--insecure", "--cluster-secret-file"} & set(self.args):
            self.args += secret_args(root)
        self.env = {**os.environ, **(env or {})}
        self.procs: dict[int, subprocess.Popen] = {}

    def data_dir(self, node: int) -> Path:
        """Node ``node``'s data directory."""
        return self.root / f"node-{node}"

    def start(self, node: int) -> None:
        """Start (or restart) one node."""
        d = self.data_dir(node)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "node.log", "ab") as log:
            self.procs[node] = subprocess.Popen(
                node_command(node, self.peers, d, self.args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def start_all(self, timeout: float = 60) -> None:
        """Start every node and wait until each answers METRICS with a Raft leader known."""
        for node in self.peers:
            self.start(node)
        self.wait_ready(list(self.peers), timeout)

    def wait_ready(self, nodes: list[int], timeout: float = 60) -> None:
        """Wait until the nodes can take writes (see ``walrus.cluster.node_ready``)."""
        deadline = time.monotonic() + timeout
        waiting = set(nodes)
        while waiting:
            for node in list(waiting):
                proc = self.procs[node]
                if proc.poll() is not None:
                    raise AssertionError(f"node {node} exited: {self.log(node)[-2000:]}")
                if node_ready(self.peers[node]):
                    waiting.discard(node)
            if waiting and time.monotonic() > deadline:
                raise AssertionError(f"nodes {sorted(waiting)} not ready in {timeout} s")
            time.sleep(0.1)

    def client(self, node: int, timeout: float = 10) -> Client:
        """A blocking client connected to a node's client port."""
        addr = self.peers[node].client
        return Client(addr.host, addr.port, timeout)

    def log(self, node: int) -> str:
        """A node's output so far."""
        return (self.data_dir(node) / "node.log").read_text(errors="replace")

    def signal(self, node: int, sig: int) -> None:
        """Send a signal to a node's process."""
        self.procs[node].send_signal(sig)

    def kill(self, node: int) -> None:
        """SIGKILL a node and reap it."""
        self.signal(node, signal.SIGKILL)
        self.procs[node].wait()

    def stop(self, node: int) -> int:
        """SIGTERM a node; its exit status."""
        self.signal(node, signal.SIGTERM)
        return self.procs[node].wait(30)

    def close(self) -> None:
        """Kill whatever is still running."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def start_cluster_up(data_dir: Path, base: int, env: dict | None = None) -> subprocess.Popen:
    """`walrus cluster up --nodes 3` on base port ``base``, returned once it printed ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "walrus", "cluster", "up", "--nodes", "3", "--base-port",
         str(base), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise AssertionError(f"cluster up printed {line!r}: {proc.stderr.read()}")
    return proc


def stop_cluster_up(proc: subprocess.Popen) -> int:
    """SIGTERM `cluster up` (if it runs); its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(30)
