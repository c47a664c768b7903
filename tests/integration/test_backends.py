"""Both backends through the one interface: partitions, kills, pauses, clocks, teardown."""

import json

import pytest
import trio

from harness.cluster import make_cluster
from harness.systems import NodeSpec, WalrusPy
from nemesis import partition
from tests.integration.conftest import BACKEND_PARAMS
from walrus.client import AsyncClient, DefiniteError, WalrusError

pytestmark = pytest.mark.parametrize("backend", BACKEND_PARAMS)


async def put_until_ok(addr, topic, prefix, attempted, timeout=30):
    """PUTX fresh values until one is acknowledged (a failed one may still land later: with
    iptables a dropped request can arrive after the partition heals)."""
    with trio.fail_after(timeout):
        while True:
            value = f"{prefix}-{len(attempted)}"
            attempted.append(value.encode())
            try:
                async with AsyncClient(*addr, timeout=3) as c:
                    return value, await c.putx(topic, value)
            except WalrusError:
                await trio.sleep(0.2)


def test_a_partitioned_holder_loses_its_segment_and_reports_on_heal(tmp_path, backend):
    """One copy per segment: only the holder knows the count, and it reports on heal."""

    async def main():
        async with trio.open_nursery() as nursery:
            cluster = make_cluster(backend, tmp_path, 3, WalrusPy(NodeSpec(replicas=1)), nursery)
            async with cluster:
                addr1 = cluster.client_address(1)
                async with AsyncClient(*addr1) as c:
                    await c.register("t")
                    first = await c.putx("t", "before")
                holder = first.node
                other = next(n for n in cluster.nodes if n != holder)
                await cluster.partition(partition.isolate(cluster.nodes, holder))
                attempted = [b"before"]
                acked, placed = await put_until_ok(
                    cluster.client_address(other), "t", "during", attempted
                )
                assert placed.node != holder and placed.segment == 2
                attempted.append(b"isolated")
                # The isolated holder cannot reach anyone: it refuses, never acknowledges.
                async with AsyncClient(*cluster.client_address(holder), timeout=8) as c:
                    try:
                        wrong = await c.putx("t", "isolated")
                        raise AssertionError(f"an isolated node acknowledged {wrong}")
                    except WalrusError:
                        pass
                await cluster.heal()
                async with AsyncClient(*cluster.client_address(other)) as c:
                    with trio.fail_after(30):
                        while (await c.state("t"))["pending_seals"]:
                            await trio.sleep(0.2)
                    got = []
                    while (entry := await c.getx("t")) is not None:
                        got.append(entry.payload)
                assert got[0] == b"before" and acked.encode() in got
                assert len(got) == len(set(got)), f"delivered twice: {got}"
                assert set(got) <= set(attempted)
                await cluster.collect_logs(tmp_path / "logs")
            nursery.cancel_scope.cancel()
        events = (tmp_path / "logs" / str(holder) / "events.jsonl").read_text().splitlines()
        kinds = {json.loads(line)["kind"] for line in events}
        assert {"start", "lease-acquire", "append", "seal"} <= kinds

    trio.run(main)


def test_kill_restart_pause_and_clock(tmp_path, backend):
    async def main():
        async with trio.open_nursery() as nursery:
            cluster = make_cluster(backend, tmp_path, 3, WalrusPy(), nursery)
            async with cluster:
                await cluster.kill(2)
                assert not await cluster.alive(2)
                try:
                    async with AsyncClient(*cluster.client_address(2), timeout=2) as c:
                        await c.metrics()
                    raise AssertionError("a killed node answered")
                except DefiniteError:
                    pass
                await cluster.restart(2)
                assert await cluster.alive(2)
                await cluster.wait_ready([2])
                await cluster.pause(3)
                await cluster.resume(3)
                await cluster.set_clock(1, 5.0, 1.05)
                await trio.sleep(0.2)
                async with AsyncClient(*cluster.client_address(1)) as c:
                    clock = (await c.metrics())["walrus"]["clock"]
                assert clock == {"offset": 5.0, "rate": 1.05}
                await cluster.reset_clocks()
            assert not await cluster.alive(1)
            nursery.cancel_scope.cancel()

    trio.run(main)
