"""A link proxy counts what it carries and what a partition drops, per direction (real TCP)."""

from functools import partial

import trio

from harness.cluster.proxy import LinkProxy
from nemesis.interfaces import LinkShape


async def _echo(stream: trio.SocketStream) -> None:
    async for data in stream:
        await stream.send_all(data)


def test_carried_and_dropped_bytes_are_counted_per_direction():
    async def main() -> list[dict]:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            proxy = LinkProxy(1, 2, ("127.0.0.1", port), "rpc")
            await nursery.start(proxy.serve)
            client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            await client.send_all(b"x" * 100)
            got = b""
            while len(got) < 100:
                got += await client.receive_some(1000)
            proxy.set_grudge({2: {1}})  # node 2 no longer hears node 1
            await client.send_all(b"y" * 50)
            with trio.move_on_after(0.5):
                await client.receive_some(1000)  # nothing comes back: the bytes were dropped
            traffic = proxy.traffic()
            proxy.close()
            nursery.cancel_scope.cancel()
        return traffic

    traffic = {(t["from"], t["to"]): t for t in trio.run(main)}
    assert set(traffic) == {(1, 2), (2, 1)}
    assert sum(traffic[(1, 2)]["carried"].values()) == 100
    assert sum(traffic[(2, 1)]["carried"].values()) == 100
    assert sum(traffic[(1, 2)]["dropped"].values()) == 50
    assert not traffic[(2, 1)]["dropped"] and traffic[(1, 2)]["service"] == "rpc"


def _through_shaped_proxy(shape: LinkShape, chunks: list[bytes]) -> tuple[bytes, float]:
    """Send ``chunks`` (one at a time) through an echo behind a proxy of ``shape``; what came
    back, and how long the last byte took from the first send."""

    async def main() -> tuple[bytes, float]:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            proxy = LinkProxy(1, 2, ("127.0.0.1", port), "rpc")
            await nursery.start(proxy.serve)
            proxy.set_shape(shape)
            client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            start = trio.current_time()
            for chunk in chunks:
                await client.send_all(chunk)
                await trio.sleep(0.005)
            want = sum(len(c) for c in chunks)
            got = b""
            while len(got) < want:
                got += await client.receive_some(65536)
            took = trio.current_time() - start
            proxy.close()
            nursery.cancel_scope.cancel()
        return got, took

    return trio.run(main)


def test_a_delayed_link_delivers_no_sooner_than_the_delay_and_in_order():
    chunks = [bytes([i]) * 10 for i in range(40)]
    got, took = _through_shaped_proxy(LinkShape(delay=0.15, jitter=0.1), chunks)
    assert got == b"".join(chunks)  # jitter never reorders a stream
    assert took >= 2 * 0.05  # out and back, each at least delay - jitter


def test_a_throttled_link_carries_no_faster_than_its_rate():
    chunks = [b"z" * 8192] * 8
    got, took = _through_shaped_proxy(LinkShape(rate=64 * 1024.0), chunks)
    assert got == b"".join(chunks)
    # 64 KiB at 64 KiB/s (the echo's way back runs alongside); a chunk's time is paid after it
    # is sent, so the last one's is not counted
    assert took >= (len(got) - 8192) / (64 * 1024.0)


def test_shapes_combine_to_the_larger_delay_and_the_tighter_rate():
    both = LinkShape(delay=0.05, rate=1000).merged(LinkShape(delay=0.2, jitter=0.1, rate=0))
    assert both == LinkShape(delay=0.2, jitter=0.1, rate=1000)


def test_packet_shapes_combine_and_say_what_needs_packets():
    both = LinkShape(duplicate=0.1, reorder=0.5, hold=0.005).merged(
        LinkShape(duplicate=0.2, loss=0.05, hold=0.02)
    )
    assert both == LinkShape(loss=0.05, duplicate=0.2, reorder=0.5, hold=0.02)
    assert both.packets_only and both.queued
    assert not LinkShape(delay=0.1, rate=1000).packets_only
    assert not LinkShape(duplicate=0.5).queued


def test_a_shared_proxy_knows_each_sender_by_its_source_address_and_never_cuts_outsiders():
    """One proxy for node 3, reached by nodes 1 and 2 from their own loopback addresses and by a
    client from 127.0.0.1: a partition that keeps node 3 from hearing node 1 drops node 1's bytes
    only."""

    async def exchange(port: int, source: str | None, data: bytes) -> bytes:
        stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
        await stream.send_all(data)
        got = b""
        with trio.move_on_after(0.5):
            while len(got) < len(data):
                got += await stream.receive_some(1000)
        await stream.aclose()
        return got

    async def main() -> tuple[dict[str, bytes], list[dict]]:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, _echo, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            sources = {"127.0.0.21": 1, "127.0.0.22": 2}
            proxy = LinkProxy(None, 3, ("127.0.0.1", port), "redis", sources)
            await nursery.start(proxy.serve)
            proxy.set_grudge({3: {1}})
            got = {
                "node 1": await exchange(proxy.port, "127.0.0.21", b"a" * 10),
                "node 2": await exchange(proxy.port, "127.0.0.22", b"b" * 10),
                "client": await exchange(proxy.port, None, b"c" * 10),
            }
            traffic = proxy.traffic()
            proxy.close()
            nursery.cancel_scope.cancel()
        return got, traffic

    got, traffic = trio.run(main)
    assert got == {"node 1": b"", "node 2": b"b" * 10, "client": b"c" * 10}
    by_pair = {(t["from"], t["to"]): t for t in traffic}
    assert sum(by_pair[(1, 3)]["dropped"].values()) == 10
    assert sum(by_pair[(2, 3)]["carried"].values()) == 10
    assert not by_pair[(3, 1)]["carried"]  # node 3 never heard node 1, so never answered
    assert set(by_pair) == {(1, 3), (3, 1), (2, 3), (3, 2)}  # the client's bytes: no link's
