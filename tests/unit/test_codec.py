"""CRC32C kernels against the RFC 3720 vectors, and the record format's framing and checks."""

import os

import numpy as np
import pytest

from walrus import codec

# RFC 3720, appendix B.4, plus the customary check value.
VECTORS = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"", 0),
]


def software(data: bytes) -> int:
    buf = np.frombuffer(data, dtype=np.uint8)
    return int(
        codec._sw_update(np.uint64(0xFFFFFFFF), buf, 0, len(buf), codec._TABLES) ^ 0xFFFFFFFF
    )


def hardware(data: bytes) -> int:
    buf = np.frombuffer(data, dtype=np.uint8)
    raw = codec._update(np.uint64(0xFFFFFFFF), buf, 0, len(buf))
    return int(raw ^ 0xFFFFFFFF)


KERNELS = [pytest.param(software, id="slicing-by-8")]
if codec.HARDWARE:
    KERNELS.append(pytest.param(hardware, id="sse4.2"))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_rfc3720_vectors(kernel, data, expected):
    assert kernel(data) == expected


@pytest.mark.parametrize("data,expected", VECTORS)
def test_public_crc32c(data, expected):
    assert codec.crc32c(data) == expected


@pytest.mark.parametrize("kernel", KERNELS)
def test_lengths_around_the_stream_boundaries(kernel):
    crc32c = pytest.importorskip("crc32c")
    rng = np.random.default_rng(7)
    sizes = [3 * 8192 * 2 + 3 * 256 + 13, 3 * 8192, 3 * 8192 - 1, 3 * 256, 3 * 256 + 7, 1, 8, 9]
    for n in sizes:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert kernel(data) == crc32c.crc32c(data), n


def test_continuation_equals_whole():
    data = os.urandom(100_000)
    assert codec.crc32c(data[40_000:], codec.crc32c(data[:40_000])) == codec.crc32c(data)


def test_crc32c_takes_any_buffer():
    data = b"123456789"
    for form in (data, bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        assert codec.crc32c(form) == 0xE3069283


def frame(payloads: list[bytes], first: int = 0) -> bytes:
    ends = np.cumsum([len(p) for p in payloads]).astype(np.int64)
    out = np.zeros(codec.HEADER_SIZE * len(payloads) + int(ends[-1]), dtype=np.uint8)
    positions = np.zeros(len(payloads), dtype=np.int64)
    n = codec.encode_batch(b"".join(payloads), ends, first, out, 100, positions, 0)
    assert n == len(out)
    return out.tobytes()


def test_batch_round_trip():
    payloads = [b"a", b"", b"hello world", os.urandom(5000)]
    data = frame(payloads, first=7)
    out, ends, end, status = codec.decode_batch(data, 7)
    assert status == codec.SCAN_CLEAN and end == len(data)
    got = [out[s:e].tobytes() for s, e in zip([0, *ends[:-1]], ends, strict=True)]
    assert got == payloads


def test_positions_are_file_positions():
    payloads = [b"x" * 10, b"y" * 20]
    ends = np.array([10, 30], dtype=np.int64)
    out = np.zeros(62, dtype=np.uint8)
    positions = np.zeros(5, dtype=np.int64)
    codec.encode_batch(b"".join(payloads), ends, 0, out, 1000, positions, 2)
    assert positions.tolist() == [0, 0, 1000, 1026, 0]


def test_header_layout_is_little_endian():
    data = frame([b"abc"], first=0x0102030405060708)
    assert data[4:8] == (3).to_bytes(4, "little")
    assert data[8:16] == (0x0102030405060708).to_bytes(8, "little")
    assert int.from_bytes(data[:4], "little") == codec.crc32c(data[4:])


def test_scan_stops_at_a_partial_record():
    data = frame([b"one", b"two", b"three"])
    record_ends = [19, 38, 59]
    for cut in range(1, len(data) + 1):
        positions, end, status = codec.scan_records(data[:cut], 0)
        complete = [e for e in record_ends if e <= cut]
        assert len(positions) == len(complete)
        assert end == (complete[-1] if complete else 0)
        assert status == (codec.SCAN_CLEAN if cut in record_ends else codec.SCAN_SHORT)


def test_scan_flags_any_flipped_bit():
    data = bytearray(frame([b"one", b"two", b"three"]))
    for byte in range(len(data)):
        damaged = bytearray(data)
        damaged[byte] ^= 0x10
        positions, _, status = codec.scan_records(bytes(damaged), 0)
        assert status != codec.SCAN_CLEAN or len(positions) < 3


def test_scan_checks_offsets():
    data = frame([b"one", b"two"], first=5)
    assert len(codec.scan_records(data, 5)[0]) == 2
    positions, _, status = codec.scan_records(data, 4)
    assert len(positions) == 0 and status == codec.SCAN_CORRUPT


def test_seal_trailer():
    data = frame([b"one", b"two"])
    trailer = np.zeros(16, dtype=np.uint8)
    codec.encode_seal(2, trailer)
    positions, end, status = codec.scan_records(data + trailer.tobytes(), 0)
    assert status == codec.SCAN_SEALED and len(positions) == 2 and end == len(data) + 16
    codec.encode_seal(3, trailer)
    assert codec.scan_records(data + trailer.tobytes(), 0)[2] == codec.SCAN_CORRUPT


def test_find_later_record_sees_past_damage():
    data = bytearray(frame([b"one", b"two", b"three"]))
    data[20] ^= 1  # inside the header of record 1
    positions, end, status = codec.scan_records(bytes(data), 0)
    assert (len(positions), end, status) == (1, 19, codec.SCAN_CORRUPT)
    assert codec.find_later_record(bytes(data), end + 1, 1) == 38
    assert codec.find_later_record(bytes(data[:50]), end + 1, 1) == -1
