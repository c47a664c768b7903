"""The benchmark driver against the null server, a slow server, our cluster and the real peers.

Rates here are low enough for any machine: these tests check what the driver counts and
measures, never how fast anything is (speed is the benchmark's business).
"""

import shutil
import socket
import threading
import time

import pytest

from harness.bench.omb.driver import Slot, run_phase
from harness.bench.omb.servers import (
    LaunchedServer,
    NatsServer,
    NullServer,
    RabbitServer,
    RedisServer,
)
from harness.systems import NodeSpec, WalrusPy
from harness.tools import missing_reason


def _slots(server, producers: int = 1, consumers: int = 1, topic: str = "t0"):
    e = server.endpoint
    address = e.address_for(0, getattr(server, "leader_of", lambda t: None)(topic))
    return (
        [Slot(e.kind, topic, address, e.options, i) for i in range(producers)],
        [Slot(e.kind, topic, address, e.options, i) for i in range(consumers)],
    )


def test_against_the_null_server_a_fixed_rate_is_kept_and_measured(tmp_path):
    server = NullServer(tmp_path)
    try:
        producers, consumers = _slots(server, producers=2)
        ph = run_phase(producers, consumers, 400.0, 0.5, 2.0, 100, drain_s=5.0)
    finally:
        server.stop()
    total = sum(ph.published)
    assert ph.publish_errors == 0
    assert 0.9 * 400 * 2.5 <= total <= 400 * 2.5 + 2, total  # the schedule, not the speed
    assert ph.latency.get_total_count() > 0 and ph.delay.get_total_count() > 0
    assert sum(ph.consumed) == 0 and ph.e2e.get_total_count() == 0  # it stores nothing
    assert ph.backlog()[-1] == total


class _SlowServer:
    """Answers each PUT 20 ms after reading it, one at a time: at most 50 a second."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            f = conn.makefile("rb")
            while head := f.read(4):
                body = f.read(int.from_bytes(head, "little"))
                if not body.startswith(b"REGISTER"):
                    time.sleep(0.02)
                conn.sendall(b"\x02\x00\x00\x00OK")


def test_a_server_that_falls_behind_shows_as_publish_delay_not_as_latency():
    """Coordinated omission: the sends the slow server held back are late against their
    schedule, and the driver says so instead of waiting politely."""
    server = _SlowServer()
    try:
        slot = Slot("walrus", "t", [("127.0.0.1", server.port)])
        ph = run_phase([slot], [], 200.0, 0.0, 3.0, 100)
    finally:
        server.sock.close()
    assert ph.publish_rate < 100  # it could not keep up with 200/s
    delay_p99 = ph.delay.get_value_at_percentile(99) / 1000
    assert delay_p99 >= 1000, f"sends late by seconds, measured {delay_p99} ms"


def _all_consumed(ph) -> None:
    assert ph.publish_errors == 0, ph.first_error
    assert sum(ph.published) > 0
    assert sum(ph.consumed) == sum(ph.published), (sum(ph.consumed), sum(ph.published))
    assert ph.e2e.get_total_count() > 0


def test_against_our_cluster_everything_published_is_consumed_once(tmp_path):
    server = LaunchedServer(tmp_path, WalrusPy(NodeSpec()), log=lambda m: None)
    try:
        producers, consumers = _slots(server, producers=2, consumers=2)
        ph = run_phase(producers, consumers, 300.0, 0.5, 2.0, 100, drain_s=5.0)
    finally:
        server.stop()
    _all_consumed(ph)


@pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (make install installs it with apt)",
)
def test_the_redis_streams_adapter(tmp_path):
    server = RedisServer(tmp_path, "always")
    try:
        ph = run_phase(*_slots(server, producers=2, consumers=2), 300.0, 0.5, 2.0, 100, drain_s=5.0)
    finally:
        server.stop()
    _all_consumed(ph)


@pytest.mark.skipif(
    shutil.which("nats-server") is None,
    reason="nats-server is not installed (make install installs it with apt)",
)
def test_the_nats_jetstream_adapter_on_a_replicated_stream(tmp_path):
    server = NatsServer(tmp_path, replicas=3)
    try:
        ph = run_phase(*_slots(server, producers=2, consumers=2), 300.0, 0.5, 2.0, 100, drain_s=5.0)
    finally:
        server.stop()
    _all_consumed(ph)


_NO_RABBIT = missing_reason("rabbitmq-server") or missing_reason("erlc")


@pytest.mark.skipif(_NO_RABBIT is not None, reason=str(_NO_RABBIT))
def test_the_amqp_adapter_on_a_quorum_queue_and_nothing_left_running(tmp_path):
    import subprocess

    server = RabbitServer(tmp_path, log=lambda m: None)
    try:
        ph = run_phase(*_slots(server, producers=2, consumers=2), 200.0, 0.5, 2.0, 100, drain_s=5.0)
    finally:
        server.stop()
    _all_consumed(ph)
    left = subprocess.run(["pgrep", "-fa", str(tmp_path)], capture_output=True, text=True).stdout
    assert left == ""


def test_rates_count_whole_windows_only():
    """A window the phase only partly covers (a fractional warm-up or duration) is left out, so
    a system that kept up reads as keeping up."""
    from harness.bench.omb.driver import Phase, new_histogram

    h = new_histogram
    ph = Phase(100.0, 0.5, 2.0, [50, 100, 50], [0, 0, 0], [50, 100, 50], h(), h(), h())
    assert ph.measured == slice(1, 2) and ph.publish_rate == 100 and ph.consume_rate == 100
    whole = Phase(100.0, 1.0, 2.0, [100, 100, 100, 0], [0] * 4, [0] * 4, h(), h(), h())
    assert whole.measured == slice(1, 3) and whole.publish_rate == 100
