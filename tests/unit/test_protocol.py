"""Parsing requests and cutting frames, as Walrus clients send them."""

import pytest

from walrus import protocol
from walrus.protocol import FrameReader, ProtocolError, Request, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"REGISTER t1", Request("REGISTER", "t1")),
        (b"REGISTER t1\n", Request("REGISTER", "t1")),
        (b"GET t.x-y_z", Request("GET", "t.x-y_z")),
        (b"GET t extra ignored", Request("GET", "t")),
        (b"STATE t", Request("STATE", "t")),
        (b"GETX t", Request("GETX", "t")),
        (b"METRICS", Request("METRICS")),
        (b"METRICS anything", Request("METRICS")),
        (b"PUT t hello", Request("PUT", "t", b"hello")),
        (b"PUT t  two  spaces  ", Request("PUT", "t", b" two  spaces  ")),
        (b"PUT t line\n", Request("PUT", "t", b"line\n")),
        (b"PUT t ", Request("PUT", "t", b"")),
        ("PUT t héllo ✓".encode(), Request("PUT", "t", "héllo ✓".encode())),
        (b"PUTX t v", Request("PUTX", "t", b"v")),
        (b"SCAN t 3 0 100", Request("SCAN", "t", scan=(3, 0, 100))),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (b"", "ERR unknown command"),
        (b"   ", "ERR unknown command"),
        (b"GARBAGE", "ERR unknown command"),
        (b"put t x", "ERR unknown command"),
        (b"PUT", "ERR PUT requires a topic"),
        (b"PUT t", "ERR PUT requires a payload"),
        (b"PUT t\n", "ERR PUT requires a payload"),
        (b"REGISTER", "ERR REGISTER requires a topic"),
        (b"GET", "ERR GET requires a topic"),
        (b"STATE", "ERR STATE requires a topic"),
        (b"GET bad/topic", "ERR invalid topic name 'bad/topic'"),
        (b"PUT " + b"x" * 129 + b" v", "ERR invalid topic name"),
        (b"\xff\xfe", "ERR invalid utf-8"),
        (b"SCAN t 1 2", "ERR SCAN takes"),
        (b"SCAN t a b c", "ERR SCAN takes"),
        (b"SCAN t 1 0 0", "ERR SCAN needs"),
    ],
)
def test_bad_requests(text, reply):
    with pytest.raises(ProtocolError) as err:
        parse(text)
    assert err.value.reply.startswith(reply)


@pytest.mark.parametrize(
    "req",
    [
        Request("PUT", "t", b" a b "),
        Request("PUTX", "t", b""),
        Request("GET", "t"),
        Request("METRICS"),
        Request("SCAN", "t", scan=(1, 2, 3)),
    ],
)
def test_encode_round_trips(req):
    assert parse(req.encode()) == req


def test_frames_split_anywhere():
    bodies = [b"PUT t a", b"", b"GET t", b"x" * 1000]
    stream = b"".join(protocol.frame(b) for b in bodies)
    for step in (1, 3, 7, len(stream)):
        reader = FrameReader()
        got = []
        for i in range(0, len(stream), step):
            reader.feed(stream[i : i + step])
            got.extend(reader.frames())
        assert got == bodies
        assert not reader.partial


def test_oversized_frame_is_refused():
    reader = FrameReader(limit=10)
    reader.feed(protocol.frame(b"ok") + protocol.LENGTH.pack(11) + b"x" * 11)
    frames = reader.frames()
    assert next(frames) == b"ok"
    with pytest.raises(ProtocolError, match="invalid frame length 11"):
        next(frames)


def test_replies():
    assert protocol.putx_reply(3, 7, 2, 5) == b"OK 3 7 2 5"
    assert protocol.getx_reply(3, 7, b"a b") == b"OK 3 7 a b"
    assert protocol.unknown_topic("t") == b"ERR unknown topic t"
    assert protocol.unavailable("x").startswith(b"ERR unavailable")
    assert protocol.indeterminate("x").startswith(b"ERR indeterminate")
