"""The client protocol, shared by the server and the clients: framing, commands, replies.

Compatible with Walrus: each frame is a 4-byte little-endian length and that many bytes of UTF-8
text; a connection carries any number of request/reply pairs in order. A request is split on
single spaces into at most three parts, so a ``PUT`` payload is everything after the second
space, kept byte for byte. ``STATE`` and ``METRICS`` answer raw JSON; errors are ``ERR <why>``.

Error replies come in two kinds a client must tell apart (``walrus.client`` does):
``ERR indeterminate ...`` means the operation may or may not have happened (a forward whose
answer was lost, a timeout after the request left); every other ``ERR`` means it certainly did
not happen.
"""

import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from walrus.names import TOPIC_PATTERN

LENGTH = struct.Struct("<I")
TAG_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_FRAME = 1024 * 1024
"""Largest request frame accepted (Walrus accepts 64 KiB; anything Walrus accepts, so do we)."""

INDETERMINATE = "indeterminate"
UNAVAILABLE = "unavailable"

COMMANDS = ("REGISTER", "PUT", "GET", "STATE", "METRICS", "PUTX", "GETX", "SCAN")


class ProtocolError(Exception):
    """A request that cannot be parsed; ``reply`` is the ERR text to send back."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Request:
    """A parsed client request. ``payload`` is set for PUT/PUTX; ``scan`` for SCAN; ``tag``
    for a GETX that names itself (the node logs which entry it handed to which tag)."""

    command: str
    topic: str = ""
    payload: bytes = b""
    scan: tuple[int, int, int] = (0, 0, 0)
    tag: str = ""

    def encode(self) -> bytes:
        """The request's text, as a client sends it (without the length prefix)."""
        if self.command == "METRICS":
            return b"METRICS"
        if self.command in ("PUT", "PUTX"):
            return f"{self.command} {self.topic} ".encode() + self.payload
        if self.command == "SCAN":
            return f"SCAN {self.topic} {self.scan[0]} {self.scan[1]} {self.scan[2]}".encode()
        if self.tag:
            return f"{self.command} {self.topic} {self.tag}".encode()
        return f"{self.command} {self.topic}".encode()


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length."""
    return LENGTH.pack(len(body)) + body


def _topic(command: str, topic: str) -> str:
    if not topic:
        raise ProtocolError(f"ERR {command} requires a topic")
    if not TOPIC_PATTERN.fullmatch(topic):
        raise ProtocolError(
            f"ERR invalid topic name {topic!r}: use 1-128 characters from A-Z a-z 0-9 . _ -"
        )
    return topic


def parse(body: bytes) -> Request:
    """Parse one request frame's body; raises ProtocolError with the reply for bad requests.

    Trailing whitespace is ignored, as Walrus ignores it, except inside a PUT payload, which is
    kept byte for byte.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("ERR invalid utf-8") from None
    command, _, rest = text.rstrip().partition(" ")
    if command in ("PUT", "PUTX"):
        topic, sep, payload = text.partition(" ")[2].partition(" ")
        topic = _topic(command, topic.rstrip())
        if not sep:
            raise ProtocolError(f"ERR {command} requires a payload")
        return Request(command, topic, payload.encode("utf-8"))
    if command == "METRICS":
        return Request("METRICS")
    if command == "GETX":
        topic, _, tag = rest.partition(" ")
        if tag and not TAG_PATTERN.fullmatch(tag):
            raise ProtocolError("ERR GETX tags are 1-64 characters from A-Z a-z 0-9 . _ -")
        return Request(command, _topic(command, topic), tag=tag)
    if command in ("REGISTER", "GET", "STATE"):
        return Request(command, _topic(command, rest.split(" ", 1)[0]))
    if command == "SCAN":
        parts = rest.split(" ")
        if len(parts) != 4:
            raise ProtocolError("ERR SCAN takes <topic> <segment> <from> <max>")
        topic = _topic(command, parts[0])
        try:
            segment, start, count = (int(p) for p in parts[1:])
        except ValueError:
            raise ProtocolError(
                "ERR SCAN takes <topic> <segment> <from> <max> as integers"
            ) from None
        if segment < 0 or start < 0 or count < 1:
            raise ProtocolError("ERR SCAN needs segment >= 0, from >= 0 and max >= 1")
        return Request("SCAN", topic, scan=(segment, start, count))
    raise ProtocolError("ERR unknown command")


class FrameReader:
    """Cuts a byte stream into frames; ``feed`` data, iterate complete frame bodies.

    A declared length of zero is yielded as an empty body (the caller answers it); a declared
    length over ``limit`` raises ProtocolError, after which the stream cannot be trusted.
    """

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._limit = limit

    def feed(self, data: bytes | bytearray) -> None:
        """Add received bytes."""
        self._buf += data

    @property
    def partial(self) -> bool:
        """True while part of a frame is buffered."""
        return bool(self._buf)

    def next_frame(self) -> bytes | None:
        """The first complete frame buffered, consumed; None if there is none yet."""
        buf = self._buf
        if len(buf) < 4:
            return None
        (n,) = LENGTH.unpack_from(buf, 0)
        self._check(n)
        if len(buf) - 4 < n:
            return None
        body = bytes(buf[4 : 4 + n])
        del buf[: 4 + n]
        return body

    def _check(self, n: int) -> None:
        if n > self._limit:
            raise ProtocolError(f"ERR invalid frame length {n} (the limit is {self._limit} bytes)")

    def frames(self) -> Iterator[bytes]:
        """Every complete frame buffered so far, in order."""
        buf = self._buf
        pos = 0
        try:
            while len(buf) - pos >= 4:
                (n,) = LENGTH.unpack_from(buf, pos)
                self._check(n)
                if len(buf) - pos - 4 < n:
                    break
                yield bytes(buf[pos + 4 : pos + 4 + n])
                pos += 4 + n
        finally:
            del buf[:pos]


# --- replies ---------------------------------------------------------------------------------

OK = b"OK"
EMPTY = b"EMPTY"


def ok(payload: bytes | None = None) -> bytes:
    """``OK`` or ``OK <payload>``."""
    return OK if payload is None else b"OK " + payload


def err(message: str) -> bytes:
    """``ERR <message>``."""
    return f"ERR {message}".encode()


def unavailable(why: str) -> bytes:
    """A definite failure: the operation did not happen and may be retried."""
    return err(f"{UNAVAILABLE} {why}")


def indeterminate(why: str) -> bytes:
    """The operation may or may not have happened."""
    return err(f"{INDETERMINATE} {why}")


def unknown_topic(topic: str) -> bytes:
    """The reply to PUT/GET/STATE on a topic never registered (as Walrus words it)."""
    return err(f"unknown topic {topic}")


def putx_reply(segment: int, offset: int, node: int, epoch: int) -> bytes:
    """``OK <segment> <offset> <node> <epoch>``."""
    return f"OK {segment} {offset} {node} {epoch}".encode()


def getx_reply(segment: int, offset: int, payload: bytes) -> bytes:
    """``OK <segment> <offset> <payload>``."""
    return f"OK {segment} {offset} ".encode() + payload


JsonObject = dict[str, Any]
"""A JSON object as parsed: what its values are, the document says."""


def parse_json_object(body: bytes | str) -> JsonObject:
    """A reply that is a JSON object (STATE, METRICS, SCAN), parsed."""
    parsed: JsonObject = json.loads(body)
    return parsed


def json_reply(value: object, pretty: bool = False) -> bytes:
    """Raw JSON, no ``OK`` prefix (STATE, METRICS, SCAN)."""
    return json.dumps(value, indent=2 if pretty else None).encode()
