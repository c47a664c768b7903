"""What strangers on the client port can cost a node: a cap on connections, idle ones closed."""

import os
import resource
import socket
import time

import pytest

from walrus import protocol
from walrus.client import Client, DefiniteError


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_the_connection_cap_holds_under_5000_idle_connections(make_cluster):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 5200:
        pytest.skip(f"the open-file limit ({hard}) is below the 5,000 connections this needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cluster = make_cluster(nodes=1, args=["--max-connections", "1000"])
    addr = cluster.peers[1].client
    pid = cluster.procs[1].pid
    with cluster.client(1) as c:
        c.register("t")
    idle = []
    try:
        for _ in range(5000):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((addr.host, addr.port))
            idle.append(s)
        time.sleep(2)
        assert open_fds(pid) < 1000 + 300, "the node holds more connections than its cap"
        assert cluster.procs[1].poll() is None
        # A newcomer still gets in (the longest-idle stranger makes room) and is served. While
        # the node is still accepting the flood every live stranger may be younger than the
        # eviction age, so the newcomer is told to try later: it does, as the reply says.
        deadline = time.monotonic() + 30
        while True:
            try:
                with Client(addr.host, addr.port, timeout=10) as c:
                    c.put("t", "served")
                    assert c.get("t") == b"served"
                break
            except DefiniteError as e:
                assert "too many connections" in str(e) and time.monotonic() < deadline, e
                time.sleep(0.5)
        assert open_fds(pid) < 1000 + 300
    finally:
        for s in idle:
            s.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_full_node_refuses_newcomers_with_an_error_not_a_crash(make_cluster):
    cluster = make_cluster(nodes=1, args=["--max-connections", "5"])
    addr = cluster.peers[1].client
    busy = [socket.create_connection((addr.host, addr.port)) for _ in range(5)]
    try:
        with socket.create_connection((addr.host, addr.port), timeout=5) as late:
            reply = late.recv(200)
        assert reply[4:].startswith(b"ERR too many connections"), reply
        time.sleep(1.2)  # now the others have been idle long enough to make room
        with Client(addr.host, addr.port, timeout=5) as c:
            assert c.metrics()["id"] == 1
        with cluster.client(1) as c:
            c.register("t")
    finally:
        for s in busy:
            s.close()


def test_idle_connections_are_closed(make_cluster):
    cluster = make_cluster(nodes=1, args=["--idle-timeout-s", "1"])
    addr = cluster.peers[1].client
    with socket.create_connection((addr.host, addr.port), timeout=5) as s:
        s.sendall(protocol.frame(b"METRICS"))
        frames = protocol.FrameReader(1 << 24)
        got = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            frames.feed(data)
            got += list(frames.frames())
    assert got[0].startswith(b"{") and got[-1].startswith(b"ERR idle for 1 s")
