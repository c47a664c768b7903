"""Serving a connection: order, coalescing, bad frames — over trio's in-memory streams."""

import trio
import trio.testing

from walrus import protocol
from walrus.server import Deferred, serve_connection


def frames(data: bytes) -> list[bytes]:
    reader = protocol.FrameReader(limit=1 << 30)
    reader.feed(data)
    return list(reader.frames())


async def exchange(dispatch, payload: bytes, close=True, **kwargs) -> list[bytes]:
    client, server = trio.testing.memory_stream_pair()
    got = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_connection, server, dispatch, *kwargs.values())
        await client.send_all(payload)
        if close:
            await client.send_eof()
        while True:
            data = await client.receive_some()
            if not data:
                break
            got += data
    return frames(bytes(got))


def test_replies_come_in_request_order_even_when_later_ones_finish_first():
    slow = []

    def dispatch(body: bytes):
        if body.startswith(b"SLOW"):
            d = Deferred()
            slow.append((d, body))
            return d
        if slow:
            for d, b in slow:
                d.set(b"done " + b)
            slow.clear()
        return b"fast " + body

    async def main():
        payload = b"".join(protocol.frame(b) for b in [b"SLOW 1", b"SLOW 2", b"x", b"y"])
        return await exchange(dispatch, payload)

    assert trio.run(main) == [b"done SLOW 1", b"done SLOW 2", b"fast x", b"fast y"]


def test_ready_replies_are_written_together():
    writes = []

    async def main():
        client, server = trio.testing.memory_stream_pair()
        original = server.send_all

        async def counting(data):
            writes.append(len(data))
            await original(data)

        server.send_all = counting
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_connection, server, lambda b: b"OK")
            await client.send_all(b"".join(protocol.frame(b"GET t") for _ in range(100)))
            await client.send_eof()
            while await client.receive_some():
                pass

    trio.run(main)
    assert sum(writes) == 100 * 6
    assert len(writes) < 10


def test_bad_frames():
    def dispatch(body: bytes):
        return protocol.parse(body) and b"OK"

    async def main():
        payload = protocol.LENGTH.pack(0) + protocol.frame(b"\xff") + protocol.frame(b"GET t")
        return await exchange(dispatch, payload)

    assert trio.run(main) == [b"ERR invalid frame length 0", b"ERR invalid utf-8", b"OK"]


def test_oversized_frame_closes_the_connection():
    async def main():
        payload = protocol.frame(b"GET t") + protocol.LENGTH.pack(10_000_000) + b"junk"
        return await exchange(lambda b: b"OK", payload, close=False)

    replies = trio.run(main)
    assert replies[0] == b"OK"
    assert replies[1].startswith(b"ERR invalid frame length 10000000") and replies[1].endswith(
        b"closing"
    )


def test_half_a_frame_then_silence_times_out():
    async def main():
        payload = protocol.frame(b"GET t") + protocol.LENGTH.pack(100) + b"abc"
        return await exchange(lambda b: b"OK", payload, False, max_frame=1000, stall_timeout=5)

    clock = trio.testing.MockClock(autojump_threshold=0)
    replies = trio.run(main, clock=clock)
    assert replies == [b"OK", b"ERR incomplete frame: no data for 5 s, closing"]


def test_a_failing_handler_is_an_error_reply_not_a_crash():
    def dispatch(body: bytes):
        if body == b"boom":
            raise RuntimeError("bug")
        return b"OK"

    async def main():
        payload = protocol.frame(b"boom") + protocol.frame(b"next")
        return await exchange(dispatch, payload)

    assert trio.run(main) == [b"ERR internal error (see the node log)", b"OK"]
