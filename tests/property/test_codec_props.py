"""Hypothesis: the numba CRC32C kernels equal the crc32c package; framing round-trips."""

import crc32c
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_codec import KERNELS, frame
from walrus import codec

buffers = st.binary(min_size=0, max_size=80_000)


@settings(max_examples=300, deadline=None)
@given(data=buffers, split=st.integers(min_value=0, max_value=80_000))
def test_crc32c_matches_the_package_at_any_split(data, split):
    split = min(split, len(data))
    assert codec.crc32c(data) == crc32c.crc32c(data)
    assert codec.crc32c(data[split:], codec.crc32c(data[:split])) == crc32c.crc32c(data)


@settings(max_examples=200, deadline=None)
@given(data=buffers)
def test_every_kernel_matches_the_package(data):
    expected = crc32c.crc32c(data)
    for kernel in KERNELS:
        assert kernel.values[0](data) == expected


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=3000), min_size=1, max_size=40),
    first=st.integers(min_value=0, max_value=2**40),
)
def test_frames_round_trip(payloads, first):
    data = frame(payloads, first)
    out, ends, end, status = codec.decode_batch(data, first)
    assert (status, end) == (codec.SCAN_CLEAN, len(data))
    starts = [0, *ends[:-1].tolist()]
    assert [out[s:e].tobytes() for s, e in zip(starts, ends.tolist(), strict=True)] == payloads


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=10),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_a_flipped_bit_never_passes(payloads, where, bit):
    data = bytearray(frame(payloads))
    where %= len(data)
    data[where] ^= 1 << bit
    positions, end, status = codec.scan_records(bytes(data), 0)
    assert len(positions) < len(payloads)
    assert status != codec.SCAN_CLEAN or end < len(data)
    record_starts = np.cumsum([0] + [16 + len(p) for p in payloads])
    damaged = int(np.searchsorted(record_starts, where, side="right")) - 1
    assert len(positions) == damaged
