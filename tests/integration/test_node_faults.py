"""Real processes, real faults: SIGKILL, SIGSTOP past the lease, restarting every node."""

import signal
import socket
import time

import pytest

from walrus import protocol
from walrus.client import Client, DefiniteError, IndeterminateError, WalrusError


def drain(client: Client, topic: str) -> list[str]:
    out = []
    while (value := client.get(topic)) is not None:
        out.append(value.decode())
    return out


def put_until_ok(client: Client, topic: str, value: str, timeout: float = 20) -> float:
    """PUT, retrying only definite failures; returns when it was acknowledged."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.put(topic, value)
            return time.monotonic()
        except DefiniteError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def holder(cluster, topic: str, timeout: float = 10.0) -> int:
    """The node leading ``topic``, once every node has applied its registration (a node that
    has not yet answers ``unknown topic``, and in compat mode does not forward)."""
    deadline = time.monotonic() + timeout
    leader = None
    for n in cluster.peers:
        while True:
            try:
                with cluster.client(n) as c:
                    leader = c.state(topic)["leader_node"]
                break
            except DefiniteError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    return leader


def topic_with_entries(cluster, count: int, via_holder: bool) -> tuple[int, int, list[str]]:
    """Register "t" and PUT ``count`` entries; (its holder, another node, the values)."""
    with cluster.client(1) as c:
        c.register("t")
    h = holder(cluster, "t")
    other = next(n for n in cluster.peers if n != h)
    values = [f"a{i}" for i in range(count)]
    with cluster.client(h if via_holder else other) as c:
        for v in values:
            c.put("t", v)
    return h, other, values


def wait_counts_reported(client: Client, topic: str) -> None:
    deadline = time.monotonic() + 20
    while client.state(topic)["pending_seals"] and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_the_leader_of_an_open_segment_keeping_one_copy(make_cluster):
    """With one copy per segment the dead leader's count is unknown until it returns (with
    three, tests/integration/test_replication.py: the replicas answer)."""
    cluster = make_cluster(args=["--max-segment-entries", "1000", "--replicas", "1"])
    h, other, acked = topic_with_entries(cluster, 20, via_holder=False)
    with cluster.client(other) as c:
        cluster.kill(h)
        killed = time.monotonic()
        for i in range(20):
            put_until_ok(c, "t", f"b{i}")
            acked.append(f"b{i}")
        state = c.state("t")
        assert state["current_segment"] == 2 and state["leader_node"] != h
        assert state["pending_seals"] == [1]
        # The cursor is in the dead node's segment, whose count is unknown: no skipping ahead.
        with pytest.raises(DefiniteError, match="unavailable"):
            c.get("t")
    assert time.monotonic() - killed < 30
    cluster.start(h)
    cluster.wait_ready([h])
    with cluster.client(other) as c:
        wait_counts_reported(c, "t")
        assert c.state("t")["sealed_segments"] == {"1": 20}
        assert drain(c, "t") == acked


@pytest.mark.slow
def test_a_leader_paused_past_its_lease_refuses_the_old_segment(make_cluster):
    cluster = make_cluster(args=["--max-segment-entries", "1000"])
    h, other, acked = topic_with_entries(cluster, 10, via_holder=True)
    # Requests sent to the paused node wait in its socket buffer until it resumes.
    paused = socket.create_connection(("127.0.0.1", cluster.peers[h].client.port))
    cluster.signal(h, signal.SIGSTOP)
    paused.sendall(b"".join(protocol.frame(f"PUTX t late{i}".encode()) for i in range(5)))
    with cluster.client(other) as c:
        deadline = time.monotonic() + 20
        while c.state("t")["current_segment"] == 1:
            assert time.monotonic() < deadline, "no takeover of the paused node's segment"
            time.sleep(0.1)
        for i in range(10):
            put_until_ok(c, "t", f"b{i}")
            acked.append(f"b{i}")
    time.sleep(1)
    cluster.signal(h, signal.SIGCONT)
    paused.settimeout(30)
    replies = Client.__new__(Client)
    replies._sock = paused
    late = []
    for i in range(5):
        (n,) = protocol.LENGTH.unpack(replies._recv_exact(4))
        reply = replies._recv_exact(n)
        if reply.startswith(b"OK "):
            segment = int(reply.split()[1])
            assert segment != 1, f"late write landed in the old segment: {reply!r}"
            late.append(f"late{i}")
        else:
            assert reply.startswith(b"ERR"), reply
    paused.close()
    with cluster.client(other) as c:
        wait_counts_reported(c, "t")
        assert c.state("t")["sealed_segments"]["1"] == 10
        got = drain(c, "t")
    assert got[:20] == acked
    assert sorted(got[20:]) == sorted(late)


@pytest.mark.slow
def test_restarting_every_node_keeps_topics_counts_and_cursor(make_cluster):
    cluster = make_cluster(args=["--max-segment-entries", "10"])
    values = [f"v{i}" for i in range(35)]
    with cluster.client(2) as c:
        c.register("t")
        c.register("u")
        for v in values:
            c.put("t", v)
        c.put("u", "only")
        assert [c.get("t").decode() for _ in range(15)] == values[:15]
        before = c.state("t")
    for node in cluster.peers:
        assert cluster.stop(node) == 0
    for node in cluster.peers:
        cluster.start(node)
    cluster.wait_ready(list(cluster.peers))
    with cluster.client(3) as c:
        after = c.state("t")
        for key in ("sealed_segments", "segment_leaders", "cursor_segment", "current_segment"):
            assert after[key] == before[key]
        assert drain(c, "t") == values[15:]
        assert drain(c, "u") == ["only"]
        c.put("t", "after-restart")
        assert drain(c, "t") == ["after-restart"]


@pytest.mark.slow
def test_compat_mode_counts_reset_on_restart_lose_writes(make_cluster):
    """Walrus 0.3 keeps the entry count in memory: after the leader restarts mid-segment, the
    rollover seals the segment with too small a count and the tail is never read."""
    cluster = make_cluster(args=["--compat", "walrus", "--max-segment-entries", "10"])
    with cluster.client(1) as c:
        c.register("t")
    h = holder(cluster, "t")
    acked = []
    with cluster.client(h) as c:
        for i in range(6):
            c.put("t", f"a{i}")
            acked.append(f"a{i}")
    cluster.stop(h)
    cluster.start(h)
    cluster.wait_ready([h])
    with cluster.client(h) as c:
        for i in range(12):
            c.put("t", f"b{i}")
            acked.append(f"b{i}")
        deadline = time.monotonic() + 10
        while "1" not in c.state("t")["sealed_segments"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.state("t")["sealed_segments"]["1"] == 10
        got = drain(c, "t")
    lost = [v for v in acked if v not in got]
    assert lost, "compat mode was expected to lose the writes past its in-memory count"


@pytest.mark.slow
def test_compat_mode_topic_stuck_on_a_dead_leader(make_cluster):
    """Walrus 0.3 has no takeover: with the open segment's leader dead, PUTs fail for good."""
    cluster = make_cluster(args=["--compat", "walrus"])
    with cluster.client(1) as c:
        c.register("t")
    h = holder(cluster, "t")
    other = next(n for n in cluster.peers if n != h)
    cluster.kill(h)
    failures = 0
    with cluster.client(other) as c:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                c.put("t", "x")
                raise AssertionError("a PUT succeeded with the segment's leader dead")
            except (DefiniteError, IndeterminateError):
                failures += 1
                time.sleep(0.2)
        assert c.state("t")["leader_node"] == h
    assert failures > 5


def test_bad_input_on_a_live_node(make_cluster):
    cluster = make_cluster(nodes=1)
    port = cluster.peers[1].client.port
    with cluster.client(1) as c:
        c.register("keep")
        for i in range(10):
            c.put("keep", f"v{i}")

    def raw(data: bytes, replies: int) -> list[bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            reader = protocol.FrameReader(limit=1 << 30)
            out = []
            while len(out) < replies:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reader.feed(chunk)
                out.extend(reader.frames())
            return out

    assert raw(protocol.LENGTH.pack(0), 1) == [b"ERR invalid frame length 0"]
    assert raw(protocol.frame(b"\xff\xfe"), 1) == [b"ERR invalid utf-8"]
    assert raw(protocol.frame(b"FROB t"), 1) == [b"ERR unknown command"]
    assert raw(protocol.frame(b"GET bad/topic"), 1)[0].startswith(b"ERR invalid topic name")
    assert raw(protocol.frame(b"PUT nope x"), 1) == [b"ERR unknown topic nope"]
    oversized = raw(protocol.LENGTH.pack(50_000_000) + b"x" * 100, 2)
    assert len(oversized) == 1 and oversized[0].startswith(b"ERR invalid frame length")
    # Many garbage connections at once, then the node still serves, with nothing lost.
    socks = []
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(bytes([i % 256]) * (i % 37 + 1))
        socks.append(s)
    for s in socks:
        s.close()
    with cluster.client(1) as c:
        c.put("keep", "after")
        assert drain(c, "keep") == [f"v{i}" for i in range(10)] + ["after"]


@pytest.mark.slow
def test_half_a_frame_then_silence_is_cut_off(make_cluster):
    cluster = make_cluster(nodes=1)
    with socket.create_connection(("127.0.0.1", cluster.peers[1].client.port), timeout=30) as s:
        s.sendall(protocol.LENGTH.pack(100) + b"GET")
        start = time.monotonic()
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert b"ERR incomplete frame" in data
        assert time.monotonic() - start >= 5


def test_misuse_gets_clear_messages(make_cluster, tmp_path):
    import subprocess
    import sys

    from walrus.cluster import node_command

    cluster = make_cluster(nodes=1)

    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, timeout=60)

    # The client port of a running node.
    peers = dict(cluster.peers)
    busy = run(node_command(1, peers, tmp_path / "other", cluster.args))
    assert (
        busy.returncode == 1 and "already in use" in busy.stderr and "Traceback" not in busy.stderr
    )
    # A data directory that is a file.
    (tmp_path / "file").write_text("x")
    bad = run(node_command(1, peers, tmp_path / "file", cluster.args))
    assert bad.returncode == 1 and "data directory" in bad.stderr
    # Another node's data directory.
    cluster.stop(1)
    cmd = node_command(1, peers, cluster.data_dir(1), cluster.args)
    cmd[cmd.index("--id") + 1] = "7"
    other_id = run(cmd)
    assert other_id.returncode == 1 and "belongs to node 1" in other_id.stderr
    bad_peer = run(
        [
            sys.executable,
            "-m",
            "walrus",
            "node",
            "--id",
            "1",
            "--data-dir",
            str(tmp_path / "d"),
            "--listen",
            "127.0.0.1:1",
            "--rpc",
            "127.0.0.1:2",
            "--raft",
            "127.0.0.1:3",
            "--peer",
            "2=nonsense",
        ]
    )
    assert bad_peer.returncode == 1 and "--peer takes" in bad_peer.stderr
    # No cluster secret and no --insecure: refused, saying how to make one.
    unsafe = run(node_command(1, peers, tmp_path / "unsafe", []))
    assert unsafe.returncode == 1 and unsafe.stderr.count("\n") == 1
    assert "no cluster secret" in unsafe.stderr and "walrus secret new" in unsafe.stderr
    (tmp_path / "loose.secret").write_text("x" * 64)
    (tmp_path / "loose.secret").chmod(0o644)
    loose = run(
        node_command(
            1, peers, tmp_path / "unsafe", ["--cluster-secret-file", str(tmp_path / "loose.secret")]
        )
    )
    assert loose.returncode == 1 and "chmod 600" in loose.stderr


@pytest.mark.slow
def test_peers_that_disagree_are_refused_loudly(make_cluster):
    cluster = make_cluster(start=False)
    cluster.start(1)
    cluster.start(2)
    # Node 3 believes in a cluster where node 2 lives elsewhere.
    from walrus.cluster import node_command
    from walrus.config import Address, Peer

    peers = dict(cluster.peers)
    p2 = peers[2]
    peers[2] = Peer(2, p2.client, Address("127.0.0.1", p2.rpc.port + 1000), p2.raft)
    cmd = node_command(3, peers, cluster.data_dir(3), cluster.args)
    import subprocess

    cluster.data_dir(3).mkdir(parents=True)
    with open(cluster.data_dir(3) / "node.log", "ab") as log:
        cluster.procs[3] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    cluster.wait_ready([1, 2])
    with cluster.client(1) as c:
        deadline = time.monotonic() + 20
        seen = False
        while time.monotonic() < deadline and not seen:
            for topic in ("a", "b", "c", "d", "e", "f"):
                try:
                    c.register(topic)
                    c.put(topic, "x")
                except WalrusError:
                    pass
            seen = any("different cluster configuration" in cluster.log(n) for n in (1, 2, 3))
            time.sleep(0.2)
    assert seen
