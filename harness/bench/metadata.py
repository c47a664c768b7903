"""What the cluster secret costs: metadata commits and node-to-node calls, with and without.

Two loads on a 3-node local cluster, run once with the secret (Raft encrypted with Fernet, node
RPC authenticated with a MAC per frame) and once ``--insecure``, in the same process run:

- **metadata commits/s**: concurrent clients REGISTER fresh topics through the Raft leader's
  node; each is one Raft command, committed and applied before its reply;
- **forwarded PUT/s**: clients PUT through a node that does not lead the topic, so each request
  and reply crosses the node RPC link (and the append, as usual, its leader's fsync policy).
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import trio

from harness.bench.cluster import PAYLOAD, BenchCluster
from walrus.client import AsyncClient, Client, WalrusError

SECURITY = ("secure", "insecure")


async def _load(address, clients: int, duration: float, request) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    counts = [0, 0]
    deadline = trio.current_time() + duration

    async def client_task(k: int) -> None:
        seq = 0
        async with AsyncClient(address.host, address.port, timeout=10) as client:
            while trio.current_time() < deadline:
                seq += 1
                t0 = time.perf_counter()
                try:
                    await request(client, k, seq)
                except WalrusError:
                    counts[1] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                counts[0] += 1

    async with trio.open_nursery() as nursery:
        for k in range(clients):
            nursery.start_soon(client_task, k)
    return counts[0], latencies, counts[1]


def _row(kind: str, security: str, clients: int, done: int, lat: list[float], errors: int,
         elapsed: float) -> dict:  # fmt: skip
    arr = np.asarray(lat) * 1000 if lat else np.asarray([np.nan])
    return {
        "load": kind,
        "security": security,
        "clients": clients,
        "ops_per_s": done / elapsed,
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "errors": errors,
    }


def run(clients: int, duration: float, fsync: str = "each", root: Path | None = None) -> dict:
    """Both loads, secure then insecure; the JSON document."""
    rows = []
    for security in SECURITY:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            args = ["--fsync", fsync, "--log-level", "WARNING"]
            cluster = BenchCluster(
                Path(tmp), args + (["--insecure"] if security == "insecure" else [])
            )
            try:
                cluster.start()
                with Client(cluster.peers[1].client.host, cluster.peers[1].client.port) as c:
                    leader = c.metrics()["current_leader"]
                    c.register("fwd")
                    holder = c.state("fwd")["leader_node"]
                via = next(n for n in cluster.peers if n != holder)

                async def register(client, k, seq):
                    await client.register(f"m-{k}-{seq}")

                async def forward(client, k, seq):
                    head = f"{k}-{seq}-".encode()
                    await client.put("fwd", head + b"x" * (PAYLOAD - len(head)))

                for kind, address, request in (
                    ("metadata commits", cluster.peers[leader].client, register),
                    ("forwarded PUT", cluster.peers[via].client, forward),
                ):
                    began = time.perf_counter()
                    done, lat, errors = trio.run(_load, address, clients, duration, request)
                    elapsed = time.perf_counter() - began
                    rows.append(_row(kind, security, clients, done, lat, errors, elapsed))
            finally:
                cluster.stop()
    return {"runs": rows, "setup": {"nodes": 3, "duration_s": duration, "fsync": fsync}}
