"""The Raft port runs nobody's code: pysyncobj drops what is not encrypted under the cluster's
secret before it unpickles anything."""

import os
import pickle
import socket
import struct
import time
import zlib

import pytest
import trio

from harness.cluster import make_cluster
from harness.cluster.local import free_base_port
from harness.systems import WalrusPy
from tests.integration.conftest import BACKEND_PARAMS
from tests.integration.nodes import start_cluster_up, stop_cluster_up
from walrus.client import Client


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def attack(host: str, port: int, command: str) -> None:
    """One connection carrying a 4-byte length and a zlib-compressed pickle that runs
    ``command`` when unpickled — what reached an unprotected pysyncobj."""
    data = zlib.compress(pickle.dumps(_Evil(command)))
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(struct.pack("i", len(data)) + data)
        time.sleep(0.3)


def still_serves(host: str, port: int, topic: str) -> None:
    with Client(host, port, timeout=10) as c:
        c.register(topic)
        c.put(topic, "still here")
        assert c.get(topic) == b"still here"


def test_the_pickle_attack_on_cluster_up_runs_nothing(tmp_path):
    base = free_base_port(3)
    proc = start_cluster_up(tmp_path / "cluster", base)
    proof = tmp_path / "pwned"
    try:
        for node in (1, 2, 3):
            attack("127.0.0.1", base + 200 + node, f"touch {proof}")
        time.sleep(1)
        assert not proof.exists(), "a pickle sent to the Raft port ran"
        still_serves("127.0.0.1", base + 1, "after-attack")
        assert proc.poll() is None
    finally:
        stop_cluster_up(proc)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_the_pickle_attack_on_a_harness_cluster_runs_nothing(tmp_path, backend):
    async def main():
        async with trio.open_nursery() as nursery:
            cluster = make_cluster(backend, tmp_path, 3, WalrusPy(), nursery)
            async with cluster:
                for node in cluster.nodes:
                    raft = cluster.members[node].links["raft"]
                    # The data directory is /data inside a container, the same files here.
                    target = "/data" if backend == "docker" else str(cluster.data_dir(node))
                    await trio.to_thread.run_sync(
                        attack, raft.host, raft.port, f"touch {target}/pwned"
                    )
                await trio.sleep(1)
                for node in cluster.nodes:
                    assert not (cluster.data_dir(node) / "pwned").exists()
                    assert await cluster.alive(node)
                host, port = cluster.client_address(1)
                await trio.to_thread.run_sync(still_serves, host, port, "after-attack")
            nursery.cancel_scope.cancel()

    trio.run(main)
