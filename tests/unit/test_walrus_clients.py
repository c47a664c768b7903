"""Walrus's clients: how each reply of a real TCP peer becomes ok, fail or info, per system's
table."""

import pytest
import trio

from harness.clients.walrus import ANY_WALRUS, WALRUS_PY, Extended, Plain
from harness.systems.walrus_rs import ERRORS
from walrus import protocol


async def serve_replies(replies: list[bytes | None], task_status=trio.TASK_STATUS_IGNORED):
    """A TCP peer answering each request with the next reply (None: read it, never answer)."""

    async def handle(stream: trio.SocketStream) -> None:
        frames = protocol.FrameReader(limit=1 << 20)
        while replies:
            data = await stream.receive_some(65536)
            if not data:
                return
            frames.feed(data)
            for _ in frames.frames():
                reply = replies.pop(0)
                if reply is None:
                    await trio.sleep_forever()
                await stream.send_all(protocol.frame(reply))

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def outcomes(dialect, f: str, replies: list[bytes | None]) -> list:
    async def main():
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_replies, list(replies))
            got = []
            async with dialect.session(("127.0.0.1", port), timeout=0.5) as session:
                for _ in replies:
                    if f == "put":
                        got.append(await session.put("t", "v"))
                    else:
                        got.append(await session.get("t", None))
            nursery.cancel_scope.cancel()
            return got

    return trio.run(main)


def test_plain_puts_and_gets_read_ok_empty_and_values():
    put = outcomes(Plain(ANY_WALRUS), "put", [b"OK"])
    assert [(o.type, o.value) for o in put] == [("ok", "v")]
    got = outcomes(Plain(ANY_WALRUS), "get", [b"OK hello world", b"EMPTY", b"OK"])
    assert [(o.type, o.value) for o in got] == [("ok", "hello world"), ("ok", None), ("ok", "")]


@pytest.mark.parametrize(
    "reply, expected",
    [
        (b"ERR unknown topic t", "fail"),
        (b"ERR NotLeaderForPartition: t_t_s_3", "fail"),
        (b"ERR forward append failed: NotLeaderForPartition: t_t_s_3", "fail"),
        (b"ERR unknown addr for node 2", "fail"),
        (b"ERR Transport error: Connect error: invalid remote address", "fail"),
        (b"ERR RPC error: Request timeout", "info"),
        (b"ERR RPC error: Transport send failed: closed", "info"),
        (b"ERR forward append failed: unknown error", "info"),
        (b"ERR batch write failed, rolled back", "info"),
        (b"ERR something nobody has seen", "info"),
        (b"WHAT?", "info"),
    ],
)
def test_walrus_rs_put_errors_are_definite_only_where_its_code_says(reply, expected):
    [outcome] = outcomes(Plain(ERRORS), "put", [reply])
    assert outcome.type == expected
    assert outcome.extra["error"]


def test_a_walrus_rs_get_refused_as_not_leader_may_still_have_read():
    # NotLeaderForPartition is definite for a PUT (the lease check runs before the write) but not
    # listed for GET: a GET's errors are info unless nothing was sent.
    [get] = outcomes(Plain(ERRORS), "get", [b"ERR NotLeaderForPartition: t_t_s_1"])
    assert get.type == "info"
    [gone] = outcomes(Plain(ERRORS), "get", [b"ERR unknown topic t"])
    assert gone.type == "fail"


def test_an_unknown_cluster_gets_the_benefit_of_the_doubt():
    for reply in (b"ERR NotLeaderForPartition: x", b"ERR unavailable segment 2", b"ERR boom"):
        [outcome] = outcomes(Plain(ANY_WALRUS), "put", [reply])
        assert outcome.type == "info", reply
    [outcome] = outcomes(Plain(ANY_WALRUS), "put", [b"ERR unknown topic t"])
    assert outcome.type == "fail"


def test_our_node_in_plain_mode_keeps_its_contract():
    [maybe] = outcomes(Plain(WALRUS_PY), "put", [b"ERR indeterminate forward lost"])
    [no] = outcomes(Plain(WALRUS_PY), "put", [b"ERR unavailable no lease"])
    assert (maybe.type, no.type) == ("info", "fail")


def test_no_reply_in_time_is_info_and_no_connection_is_fail():
    [silent] = outcomes(Plain(ANY_WALRUS), "put", [None])
    assert silent.type == "info"

    async def refused():
        async with Extended().session(("127.0.0.1", 1), timeout=0.5) as session:
            return await session.put("t", "v")

    assert trio.run(refused).type == "fail"


def test_extended_records_positions():
    [placed] = outcomes(Extended(), "put", [b"OK 2 40 1 5"])
    assert placed.extra == {"pos": [2, 40], "node": 1, "epoch": 5}
    [entry] = outcomes(Extended(), "get", [b"OK 2 41 hello"])
    assert (entry.value, entry.extra) == ("hello", {"pos": [2, 41]})
