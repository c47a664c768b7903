"""A client written the way Walrus's local_smoke.py and local_rollover_read_test.py are, against
``walrus cluster up`` with WALRUS_MAX_SEGMENT_ENTRIES=10: a new connection per command, the
leader found through METRICS ``current_leader``, GETs through node 2."""

import json
import signal
import socket
import struct
import time

import pytest

from harness.cluster.local import free_base_port
from tests.integration.nodes import start_cluster_up, stop_cluster_up


def send_cmd(port: int, cmd: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = cmd.encode()
        s.sendall(struct.pack("<I", len(data)) + data)
        (n,) = struct.unpack("<I", s.recv(4))
        buf = b""
        while len(buf) < n:
            buf += s.recv(n - len(buf))
        return buf.decode()


def leader_port(ports: dict[int, int]) -> int:
    for port in ports.values():
        try:
            leader = json.loads(send_cmd(port, "METRICS")).get("current_leader")
        except (OSError, ValueError):
            continue
        if leader in ports:
            return ports[leader]
    return ports[1]


@pytest.fixture
def walrus_cluster(tmp_path):
    base = free_base_port(3)
    proc = start_cluster_up(tmp_path / "cluster", base, {"WALRUS_MAX_SEGMENT_ENTRIES": "10"})
    try:
        yield {i: base + i for i in (1, 2, 3)}, proc
    finally:
        stop_cluster_up(proc)


def test_smoke_and_rollover_read_back(walrus_cluster):
    ports, proc = walrus_cluster
    topic = f"rollover_local_{int(time.time())}"
    assert send_cmd(leader_port(ports), f"REGISTER {topic}") == "OK"
    messages = [f"msg-{i}" for i in range(60)]
    for msg in messages:
        assert send_cmd(leader_port(ports), f"PUT {topic} {msg}") == "OK"
    deadline = time.monotonic() + 15
    while True:
        state = json.loads(send_cmd(ports[1], f"STATE {topic}"))
        if len(state["sealed_segments"]) >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    sealed = state["sealed_segments"]
    assert len(sealed) >= 6
    assert all(count == 10 for count in sealed.values())
    assert len(set(state["segment_leaders"].values())) == 3
    read_back = []
    for _ in messages:
        reply = send_cmd(ports[2], f"GET {topic}")
        assert reply.startswith("OK "), reply
        read_back.append(reply[3:])
    assert read_back == messages
    assert send_cmd(ports[2], f"GET {topic}") == "EMPTY"
    assert send_cmd(ports[3], "PUT never-registered x") == "ERR unknown topic never-registered"
    assert send_cmd(ports[3], "GARBAGE").startswith("ERR")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    for port in ports.values():
        with pytest.raises(OSError):
            send_cmd(port, "METRICS")


def test_nodes_stop_when_cluster_up_is_killed(walrus_cluster):
    ports, proc = walrus_cluster
    assert json.loads(send_cmd(ports[1], "METRICS"))["id"] == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 15
    alive = set(ports)
    while alive and time.monotonic() < deadline:
        for node in list(alive):
            try:
                send_cmd(ports[node], "METRICS")
            except (OSError, struct.error):  # refused, or closed while stopping
                alive.discard(node)
        time.sleep(0.2)
    assert not alive, f"nodes {sorted(alive)} outlived their parent"
