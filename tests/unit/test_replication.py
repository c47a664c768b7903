"""The replication wire format and the high-water rule."""

import pytest

from walrus.protocol import ProtocolError
from walrus.replication import TAIL_ENTRIES, Append, Replicated, _Stream, high_water


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


def test_the_tail_serves_what_was_sequenced_and_forgets_what_every_follower_holds():
    rep = Replicated("t", 0, 1, (1, 2, 3))
    rep.streams = {2: _Stream(2), 3: _Stream(3)}
    rep.sequenced(0, (b"a", b"b"))
    rep.sequenced(2, (b"c",))
    assert rep.tail_end == 3
    assert rep.from_tail(1, 10) == [b"b", b"c"]
    assert rep.from_tail(3, 10) is None  # nothing past the end
    rep.streams[2].acked, rep.streams[3].acked = 2, 1
    rep.trim()
    assert rep.tail_base == 1 and rep.from_tail(0, 1) is None and rep.from_tail(1, 1) == [b"b"]


def test_a_gap_in_what_was_sequenced_starts_the_tail_afresh():
    rep = Replicated("t", 0, 1, (1, 2))
    rep.streams = {2: _Stream(2)}
    rep.sequenced(0, (b"a",))
    rep.sequenced(5, (b"f",))  # entries 1-4 went to the store without passing the tail
    assert (rep.tail_base, rep.tail_end) == (5, 6)
    assert rep.from_tail(0, 1) is None and rep.from_tail(5, 1) == [b"f"]


def test_the_tail_stays_bounded_when_a_follower_lags():
    rep = Replicated("t", 0, 1, (1, 2))
    rep.streams = {2: _Stream(2)}
    for i in range(TAIL_ENTRIES + 1):
        rep.sequenced(i, (b"x",))
    assert len(rep.tail) <= TAIL_ENTRIES and rep.tail_end == TAIL_ENTRIES + 1
    assert rep.from_tail(0, 1) is None  # the lagging follower is sent what the store holds
