"""The cluster benchmark: a 3-node local cluster under pipelining clients, PUT then GET.

Clients are trio tasks in this process, each with its own connection to the node leading its
topic and ``window`` requests in flight. Every payload is unique and 100 bytes. For each fsync
policy the cluster is started afresh; the run measures acknowledged PUTs for ``duration``
seconds, then GETs (which drain what was written) for as long, and the nodes' start-up time and
resident memory.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trio

from harness.cluster.local import free_base_port
from walrus.auth import secret_args
from walrus.client import AsyncClient, Client, WalrusError
from walrus.cluster import node_command, node_ready
from walrus.config import Peer, local_cluster

PAYLOAD = 100


class BenchCluster:
    """Three node processes for one benchmark run."""

    def __init__(self, root: Path, args: list[str]) -> None:
        self.root = root
        self.peers: dict[int, Peer] = local_cluster(3, free_base_port(3))
        self.args = args if "--insecure" in args else [*args, *secret_args(root)]
        self.procs: dict[int, subprocess.Popen] = {}
        self.startup_s: dict[int, float] = {}

    def start(self) -> None:
        """Start the nodes; record each one's time from spawn to taking writes."""
        spawned = {}
        for i in self.peers:
            d = self.root / f"node-{i}"
            d.mkdir(parents=True, exist_ok=True)
            with open(d / "node.log", "ab") as log:
                self.procs[i] = subprocess.Popen(
                    node_command(i, self.peers, d, self.args), stdout=log, stderr=subprocess.STDOUT
                )
            spawned[i] = time.monotonic()
        deadline = time.monotonic() + 60
        while len(self.startup_s) < len(self.peers):
            for i in self.peers:
                if i not in self.startup_s and node_ready(self.peers[i]):
                    self.startup_s[i] = time.monotonic() - spawned[i]
                if self.procs[i].poll() is not None:
                    raise RuntimeError(
                        f"benchmark node {i} exited; see {self.root}/node-{i}/node.log"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError("benchmark cluster did not become ready in 60 s")
            time.sleep(0.05)

    def rss_mb(self) -> dict[int, float]:
        """Resident memory of each node, in MB."""
        out = {}
        for i, proc in self.procs.items():
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[i] = int(line.split()[1]) / 1024
        return out

    def stop(self) -> None:
        """SIGTERM every node and wait."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _topics_on_distinct_leaders(cluster: BenchCluster) -> dict[str, int]:
    """Register topics until three of them are led by three different nodes."""
    chosen: dict[int, str] = {}
    with Client(cluster.peers[1].client.host, cluster.peers[1].client.port) as c:
        for i in range(200):
            name = f"bench-{i}"
            c.register(name)
            leader = c.state(name)["leader_node"]
            chosen.setdefault(leader, name)
            if len(chosen) == 3:
                return {topic: leader for leader, topic in chosen.items()}
    raise RuntimeError("could not place three topics on three leaders")


async def _load(
    cluster: BenchCluster,
    topics: dict[str, int],
    clients: int,
    window: int,
    duration: float,
    op: str,
) -> tuple[int, list[float], int]:
    names = sorted(topics)
    latencies: list[float] = []
    counts = [0, 0]
    deadline = trio.current_time() + duration

    async def client_task(k: int) -> None:
        topic = names[k % len(names)]
        addr = cluster.peers[topics[topic]].client
        seq = 0

        async def worker(w: int) -> None:
            nonlocal seq
            while trio.current_time() < deadline:
                seq += 1
                t0 = time.perf_counter()
                try:
                    if op == "put":
                        head = f"{k}-{w}-{seq}-".encode()
                        await client.put(topic, head + b"x" * (PAYLOAD - len(head)))
                    else:
                        await client.get(topic)
                except WalrusError:
                    counts[1] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                counts[0] += 1

        async with (
            AsyncClient(addr.host, addr.port, timeout=10) as client,
            trio.open_nursery() as n,
        ):
            for w in range(window):
                n.start_soon(worker, w)

    async with trio.open_nursery() as nursery:
        for k in range(clients):
            nursery.start_soon(client_task, k)
    return counts[0], latencies, counts[1]


def run(
    fsync_modes: list[str],
    clients: int,
    window: int,
    duration: float,
    root: Path | None = None,
    security: tuple[str, ...] = ("secure",),
    replicas: tuple[int, ...] = (3,),
) -> dict:
    """Run the benchmark for each fsync policy (and each of ``secure``, with the cluster secret,
    and ``insecure``, without, and each number of copies per segment); returns the JSON
    document."""
    rows, nodes = [], []
    runs = ((f, s, r) for f in fsync_modes for s in security for r in replicas)
    for fsync, secure, copies in runs:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            args = ["--fsync", fsync, "--replicas", str(copies), "--log-level", "WARNING"]
            if secure == "insecure":
                args.append("--insecure")
            cluster = BenchCluster(Path(tmp), args)
            try:
                cluster.start()
                topics = _topics_on_distinct_leaders(cluster)
                for op in ("put", "get"):
                    began = time.perf_counter()
                    done, lat, errors = trio.run(
                        _load, cluster, topics, clients, window, duration, op
                    )
                    elapsed = time.perf_counter() - began
                    arr = np.asarray(lat) * 1000 if lat else np.asarray([np.nan])
                    rows.append(
                        {
                            "op": op.upper(),
                            "fsync": fsync,
                            "security": secure,
                            "replicas": copies,
                            "clients": clients,
                            "ops_per_s": done / elapsed,
                            "p50_ms": float(np.percentile(arr, 50)),
                            "p99_ms": float(np.percentile(arr, 99)),
                            "max_ms": float(np.max(arr)),
                            "errors": errors,
                        }
                    )
                nodes.append(
                    {
                        "fsync": fsync,
                        "security": secure,
                        "replicas": copies,
                        "startup_s": cluster.startup_s,
                        "rss_mb": cluster.rss_mb(),
                    }
                )
            finally:
                cluster.stop()
    return {
        "runs": rows,
        "nodes": nodes,
        "setup": {
            "nodes": 3,
            "window": window,
            "payload_bytes": PAYLOAD,
            "duration_s": duration,
            "cores": os.cpu_count(),
            "python": sys.version.split()[0],
        },
    }
