"""Redis's client without a server: which redis-py errors prove a command did not run, what the
client promises, and the configuration a node is started with."""

from pathlib import Path

import pytest
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError, TimeoutError

from harness.clients.redis import at_least_once, error_outcome
from harness.systems.base import Member, Unsupported, source_host
from harness.systems.redis import Redis
from walrus.config import Address


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (BaseParser.parse_error("READONLY You can't write against a read only replica."), "fail"),
        (BaseParser.parse_error("NOREPLICAS Not enough good replicas to write."), "fail"),
        (BaseParser.parse_error("LOADING Redis is loading the dataset in memory"), "fail"),
        (BaseParser.parse_error("MASTERDOWN Link with MASTER is down"), "fail"),
        (BaseParser.parse_error("NOGROUP No such key 't0' or consumer group"), "fail"),
        (BaseParser.parse_error("ERR something else"), "info"),
        (ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."), "fail"),
        (ConnectionError("Connection closed by server."), "info"),
        (TimeoutError("Timeout reading from socket"), "info"),
    ],
)
def test_only_a_refusal_or_a_failed_connect_fails_a_command(exc, outcome):
    assert error_outcome(exc) == outcome


def test_redis_promises_at_least_once_with_a_redelivery_bound_and_no_final_ack():
    promise = at_least_once(5000)
    assert not promise.once and promise.order == "none" and not promise.acked_final
    assert promise.redelivery_s is not None and promise.redelivery_s > 5


def _member(n: int) -> Member:
    return Member(
        n,
        Address("127.0.0.1", 20000 + n),
        {"redis": Address("127.0.0.1", 20100 + n), "sentinel": Address("127.0.0.1", 20000 + n)},
    )


def test_each_node_sends_from_its_own_address_announces_its_proxy_and_follows_node_1(
    tmp_path: Path,
):
    members = {n: _member(n) for n in (1, 2, 3)}
    routes = {
        n: {"redis": Address("127.0.0.1", 30100 + n), "sentinel": Address("127.0.0.1", 30000 + n)}
        for n in members
    }
    for n in members:
        (tmp_path / str(n)).mkdir()
        Redis(wait=1, appendfsync="always").local_command(
            members[n], members, tmp_path / str(n), routes
        )
    one = (tmp_path / "1" / "redis.conf").read_text()
    two = (tmp_path / "2" / "redis.conf").read_text()
    sentinel = (tmp_path / "2" / "sentinel.conf").read_text()
    assert f"bind-source-addr {source_host(2)}" in two and "replicaof 127.0.0.1 30101" in two
    assert "replicaof" not in one and "appendfsync always" in one
    assert "replica-announce-port 30102" in two
    assert "sentinel monitor walrus 127.0.0.1 30101 2" in sentinel
    assert "sentinel announce-port 30002" in sentinel and "port 20002" in sentinel


def test_a_restarted_node_keeps_what_its_sentinel_rewrote(tmp_path: Path):
    members = {n: _member(n) for n in (1, 2, 3)}
    ports = {"redis": Address("127.0.0.1", 1), "sentinel": Address("127.0.0.1", 2)}
    routes = {n: ports for n in members}
    (tmp_path / "sentinel.conf").write_text("rewritten by the sentinel\n")
    Redis().local_command(members[2], members, tmp_path, routes)
    assert (tmp_path / "sentinel.conf").read_text() == "rewritten by the sentinel\n"


@pytest.mark.parametrize(
    ("system", "backend", "nodes", "says"),
    [
        (Redis(), "local", 2, "3 nodes or more"),
        (Redis(wait=3), "local", 3, "between 0 and 2"),
        (Redis(appendfsync="sometimes"), "local", 3, "--appendfsync"),
    ],
)
def test_what_redis_cannot_run_is_refused_with_one_line(system, backend, nodes, says):
    with pytest.raises(Unsupported, match=says):
        system.preflight(backend, ["partition"], nodes)


def test_the_clock_shim_moves_the_wall_clock_only_and_follows_its_control_file(tmp_path: Path):
    """The shim preloaded into a real program (python3): its wall clock an hour ahead, its
    monotonic clock true, and back to true time when the file says so."""
    import subprocess
    import sys
    import time

    from harness.systems import faketime, wallclock
    from harness.tools import missing_reason

    if missing_reason("cc"):
        pytest.skip(str(missing_reason("cc")))
    read = "import time; print(time.time(), time.monotonic())"

    def steer(offset: float, rate: float) -> None:
        name, data = faketime.control(offset, rate)
        (tmp_path / name).write_bytes(data)

    def clocks() -> tuple[float, float]:
        env = {**wallclock.preload(tmp_path), "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True)
        wall, mono = out.stdout.split()
        return float(wall) - time.time(), float(mono) - time.monotonic()

    steer(3600.0, 1.0)
    wall, mono = clocks()
    assert 3599 < wall < 3601 and abs(mono) < 1
    steer(0.0, 1.0)
    wall, _ = clocks()
    assert abs(wall) < 1
