"""harness.netq on real packets: a container's outgoing SYNs held for the delay, then let go."""

import subprocess
import sys

import pytest

from harness.images import engine, node_image
from harness.netq import READY
from harness.tools import missing_reason
from tests.integration.conftest import DOCKER

CONNECT = """
import socket, sys, time
took = []
for _ in range(5):
    t = time.monotonic()
    socket.create_connection((sys.argv[1], 8000), timeout=10).close()
    took.append(time.monotonic() - t)
print(min(took))
"""


@pytest.mark.parametrize("backend", [DOCKER])
@pytest.mark.skipif(
    missing_reason("libnetfilter-queue") is not None,
    reason=missing_reason("libnetfilter-queue") or "",
)
def test_a_queue_holds_packets_for_the_delay_and_releases_them_on_sigterm(backend):
    client = engine()
    image = node_image(client, None, lambda m: None)[0].tag
    network = client.networks.create("walrus-netq-test", labels={"walrus-harness": "test"})
    a = b = None
    try:
        b = client.containers.run(
            image, ["-m", "http.server", "8000"], entrypoint="python3", detach=True,
            network=network.name, labels={"walrus-harness": "test"},
        )  # fmt: skip
        a = client.containers.run(
            image, ["600"], entrypoint="sleep", detach=True, cap_add=["NET_ADMIN"],
            network=network.name, labels={"walrus-harness": "test"},
        )  # fmt: skip
        b.reload()
        a.reload()
        peer = b.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]

        def fastest_connect() -> float:
            code, out = a.exec_run(["python3", "-c", CONNECT, peer])
            assert code == 0, out
            return float(out.decode().strip())

        assert fastest_connect() < 0.3  # not held: no SYN waits the delay yet
        rule = f"iptables -A OUTPUT -d {peer} -j NFQUEUE --queue-num 2 --queue-bypass"
        assert a.exec_run(["sh", "-c", rule])[0] == 0
        pid = str(a.attrs["State"]["Pid"])
        netq = subprocess.Popen(
            ["nsenter", "-t", pid, "--net", sys.executable, "-m", "harness.netq",
             "--queue", "2", "--delay-ms", "300"], stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert netq.stdout.readline().startswith(READY)  # packets wait from here on
            assert fastest_connect() >= 0.3  # every SYN waited its 300 ms
        finally:
            netq.terminate()
            assert netq.wait(timeout=10) == 0
        assert fastest_connect() < 0.3  # let through once the delayer is gone
    finally:
        for container in (a, b):
            if container is not None:
                container.remove(force=True)
        network.remove()
