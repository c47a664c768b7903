"""The replication wire format and the high-water rule."""

import pytest

from walrus.protocol import ProtocolError
from walrus.replication import Append, high_water


def test_an_append_survives_the_wire_with_any_bytes():
    batch = Append("t", 3, 7, 120, (b"", b"a b\nc", bytes(range(256)) * 3))
    assert Append.decode(batch.encode()) == batch


@pytest.mark.parametrize(
    "command",
    [
        b"APPEND t 1 1 0 1",  # no payload section
        b"APPEND t 1 x 0 1\n\x00\x00\x00\x01a",  # epoch not a number
        b"APPEND t 1 1 0 2\n\x00\x00\x00\x01a",  # fewer payloads than said
        b"APPEND t 1 1 0 1\n\x00\x00\x00\x01ab",  # trailing bytes
        b"APPEND t 1 1 0 1\n\x00\x00\x00\x09a",  # a payload cut short
    ],
)
def test_a_malformed_append_is_refused_with_a_reason(command):
    with pytest.raises(ProtocolError, match="APPEND"):
        Append.decode(command)


def test_high_water_is_what_a_majority_holds():
    assert high_water([10], 1) == 10
    assert high_water([10, 4, 7], 3) == 7
    assert high_water([10, 4], 3) == 4  # the third copy not heard from
    assert high_water([10], 3) == 0
    assert high_water([9, 9, 2, 1, 0], 5) == 2
