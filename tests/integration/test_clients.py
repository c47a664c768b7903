"""The blocking and trio clients, and ``walrus cli``, against a real node."""

import signal
import subprocess
import sys

import pytest
import trio

from walrus.client import AsyncClient, DefiniteError, IndeterminateError


def test_trio_client_pipelines_in_order(make_cluster):
    cluster = make_cluster(nodes=1)
    addr = cluster.peers[1].client

    async def main() -> list:
        async with AsyncClient(addr.host, addr.port) as c:
            await c.register("t")
            async with trio.open_nursery() as n:
                for i in range(200):
                    n.start_soon(c.putx, "t", f"v{i}")
            got = []
            while (entry := await c.getx("t")) is not None:
                got.append(entry)
            with pytest.raises(DefiniteError) as err:
                await c.put("missing", "x")
            assert err.value.unknown_topic
            return got

    got = trio.run(main)
    assert sorted(e.payload for e in got) == sorted(f"v{i}".encode() for i in range(200))
    assert [e.offset for e in got] == list(range(200))


def test_a_silent_node_gives_indeterminate_errors(make_cluster):
    cluster = make_cluster(nodes=1)
    with cluster.client(1, timeout=1) as c:
        c.register("t")
        cluster.signal(1, signal.SIGSTOP)
        try:
            with pytest.raises(IndeterminateError):
                c.put("t", "maybe")
        finally:
            cluster.signal(1, signal.SIGCONT)


def test_cli_one_shot_and_repl(make_cluster):
    cluster = make_cluster(nodes=1)
    addr = str(cluster.peers[1].client)

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "walrus", "cli", "--addr", addr, *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=30,
        )

    assert cli("register", "t").returncode == 0
    assert cli("put", "t", "hello there").returncode == 0
    assert cli("get", "t").stdout == "hello there\n"
    assert cli("get", "t").stdout == "EMPTY\n"
    assert '"current_segment"' in cli("state", "t").stdout
    assert '"current_leader"' in cli("metrics").stdout
    missing = cli("put", "nope", "x")
    assert missing.returncode == 1 and "unknown topic nope" in missing.stderr
    assert cli("put", "t").returncode == 2
    repl = cli(stdin="PUT t a\nGET t\nFROB\nexit\n")
    assert repl.stdout.splitlines()[1:] == ["OK", "OK a", "ERR unknown command"]
