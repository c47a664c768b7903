"""A link proxy counts what it carries and what a partition drops, per direction (real TCP)."""

from functools import partial

import trio

from harness.cluster.proxy import LinkProxy


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
