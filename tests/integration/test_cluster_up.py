"""`walrus cluster up` outlives a node's death, and its controls break and mend a running
cluster."""

import fcntl
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.cluster.local import free_base_port
from tests.integration.nodes import start_cluster_up, stop_cluster_up
from walrus.client import Client, WalrusError


def walrus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "walrus", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cluster(tmp_path):
    base = free_base_port(3)
    data = tmp_path / "cluster"
    proc = start_cluster_up(data, base)
    fcntl.fcntl(proc.stderr, fcntl.F_SETFL, os.O_NONBLOCK)
    yield data, {i: base + i for i in (1, 2, 3)}, proc
    stop_cluster_up(proc)


def pids(data) -> dict[int, int]:
    out = walrus("cluster", "status", "--data-dir", str(data)).stdout
    return {int(line.split()[1][:-1]): int(line.split("pid ")[1][:-1]) for line in out.splitlines()}


def put(port: int, topic: str, value: str) -> bool:
    try:
        with Client("127.0.0.1", port, timeout=5) as c:
            c.put(topic, value)
        return True
    except (WalrusError, OSError):
        return False


def stderr_lines(proc, timeout: float) -> str:
    """What the supervisor wrote to stderr within ``timeout`` (whole lines)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline and not data.endswith(b"\n"):
        try:
            data += os.read(proc.stderr.fileno(), 65536)
        except BlockingIOError:
            time.sleep(0.1)
    return data.decode()


def test_a_killed_node_leaves_the_others_serving_and_comes_back(cluster):
    data, ports, proc = cluster
    with Client("127.0.0.1", ports[1]) as c:
        c.register("t")
        state = c.state("t")
    acked = [f"before-{i}" for i in range(20)]
    for value in acked:
        assert put(ports[1], "t", value)
    victim = state["leader_node"]
    os.kill(pids(data)[victim], signal.SIGKILL)
    said = stderr_lines(proc, 10)
    assert f"node {victim} exited" in said and f"--node {victim}" in said, said
    assert proc.poll() is None, "the survivors keep running"
    survivor = next(n for n in ports if n != victim)
    started = time.monotonic()
    while not put(ports[survivor], "t", "after-kill"):
        assert time.monotonic() - started < 30, "writes never resumed after the kill"
        time.sleep(0.1)
    print(f"writes resumed {time.monotonic() - started:.2f} s after node {victim} was killed")
    acked.append("after-kill")
    back = walrus("cluster", "restart", "--data-dir", str(data), "--node", str(victim))
    assert back.returncode == 0 and "ready" in back.stdout, back.stderr
    while not put(ports[victim], "t", "after-restart"):
        time.sleep(0.2)
    acked.append("after-restart")
    read = []
    with Client("127.0.0.1", ports[victim]) as c:
        while True:
            try:
                value = c.get("t")
            except WalrusError:
                time.sleep(0.2)
                continue
            if value is None:
                break
            read.append(value.decode())
    assert sorted(read) == sorted(acked), "everything acknowledged is read, once"


def test_controls_pause_resume_kill_and_refuse_nonsense(cluster, tmp_path):
    data, ports, proc = cluster
    assert walrus("cluster", "pause", "--data-dir", str(data), "--node", "3").returncode == 0
    with pytest.raises(WalrusError), Client("127.0.0.1", ports[3], timeout=1) as c:
        c.metrics()
    assert walrus("cluster", "resume", "--data-dir", str(data), "--node", "3").returncode == 0
    with Client("127.0.0.1", ports[3], timeout=5) as c:
        assert c.metrics()["id"] == 3
    killed = walrus("cluster", "kill", "--data-dir", str(data), "--node", "2")
    assert killed.returncode == 0 and "killed" in killed.stdout
    assert "node 2: killed" in walrus("cluster", "status", "--data-dir", str(data)).stdout
    assert stderr_lines(proc, 1) == "", "a kill asked for is not reported as a death"
    for args, words in (
        (("pause", "--node", "2"), "not running"),
        (("kill", "--node", "7"), "no node 7"),
        (("kill",), "needs --node"),
    ):
        done = walrus("cluster", *args[:1], "--data-dir", str(data), *args[1:])
        assert done.returncode == 1 and words in done.stderr and done.stderr.count("\n") == 1
    nobody = walrus("cluster", "kill", "--data-dir", str(tmp_path / "none"), "--node", "1")
    assert nobody.returncode == 1 and "no `walrus cluster up`" in nobody.stderr
    twice = walrus("cluster", "up", "--nodes", "3", "--base-port", str(free_base_port(3)),
                   "--data-dir", str(data))  # fmt: skip
    assert twice.returncode == 1 and "already running" in twice.stderr
    assert stop_cluster_up(proc) == 0
    assert not (data / "cluster.sock").exists()
