"""Cutting a benchmarked node off from its peers (``harness.bench.omb.cut``) on real processes
and real TCP: the links go silent both ways while the cut holds, come back when it heals, and a
comparison under ``partition-leader`` sees the cut leader's errors and its recovery."""

import socket
import subprocess
import sys
import time

import pytest

from harness.bench.omb import compare, cut
from harness.bench.omb.workload import load

pytestmark = pytest.mark.skipif(cut.unavailable() is not None, reason=str(cut.unavailable()))

_CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1.5).sendall(b"x")
    print("reached")
except OSError:
    print("cut")
"""


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _connects(c: cut.Cut, node: str, port: int) -> bool:
    """Whether a process in ``node``'s cgroup reaches ``port`` (it is placed before it dials)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep(0.3)\n{_CONNECT}", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    c.place(node, proc.pid)
    out, _ = proc.communicate(timeout=30)
    return out.strip() == "reached"


def test_a_cut_node_neither_reaches_its_peers_nor_is_reached_until_healed():
    c = cut.Cut(f"walrus-bench-test-{time.monotonic_ns()}")
    a, b, client = _listener(), _listener(), _listener()
    ports = {"a": [a.getsockname()[1]], "b": [b.getsockname()[1]]}
    try:
        assert _connects(c, "a", ports["b"][0]) and _connects(c, "b", ports["a"][0])
        c.isolate("a", ports)
        assert not _connects(c, "a", ports["b"][0]), "the cut node still reaches its peer"
        assert not _connects(c, "b", ports["a"][0]), "its peer still reaches the cut node"
        assert _connects(c, "a", client.getsockname()[1]), "a non-peer port must stay reachable"
        c.heal()
        assert _connects(c, "a", ports["b"][0]) and _connects(c, "b", ports["a"][0])
    finally:
        c.remove()
        for s in (a, b, client):
            s.close()
    rules = subprocess.run(["iptables", "-S", "OUTPUT"], capture_output=True, text=True).stdout
    assert c._tag not in rules


@pytest.mark.slow
def test_a_comparison_cuts_our_leader_off_and_sees_it_recover(tmp_path):
    path = tmp_path / "cut.yaml"
    path.write_text(
        "name: cut\ntopics: 1\nmessageSize: 100\nproducersPerTopic: 2\n"
        "subscriptionsPerTopic: 1\nconsumerPerSubscription: 1\nproducerRate: 300\n"
        "nemesis: partition-leader\nnemesisAtSeconds: 3\nnemesisDownSeconds: 4\n"
        "warmupDurationSeconds: 1\ntestDurationSeconds: 14\n"
    )
    doc = compare.run(["walrus-py"], [load(path)], tmp_path / "out", live=False)
    (entry,) = [r for r in doc["results"] if r.get("variant") == "fsync=each"]
    assert "error" not in entry, entry
    assert entry["nemesis"] == "partition-leader" and entry["isolated"]
    assert len(entry["fault_s"]) == 2 and entry["fault_s"][1] > entry["fault_s"][0]
    assert entry["publish_errors"] > 0, "a leader cut off from its peers cannot commit"
    assert entry["recovery_s"] is not None, entry
    rules = subprocess.run(["iptables", "-S", "OUTPUT"], capture_output=True, text=True).stdout
    assert "walrus-bench" not in rules
