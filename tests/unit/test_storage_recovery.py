"""Damage segment files on disk and reopen: torn tails are cut, bit rot is refused by name."""

import os

import pytest

from walrus.storage import CorruptSegment, Store


def write(tmp_path, payloads, seal=False):
    with Store(tmp_path) as store:
        store.create_segment("t", 0)
        store.append_batch("t", 0, payloads)
        if seal:
            store.seal("t", 0)
    return tmp_path / "topics" / "t.topic" / f"{0:020d}.seg"


PAYLOADS = [f"record-{i}".encode() * (i + 1) for i in range(10)]
SIZES = [16 + len(p) for p in PAYLOADS]
ENDS = [sum(SIZES[: i + 1]) for i in range(10)]


@pytest.mark.parametrize("cut", [1, 8, 16, 17, SIZES[-1] - 1])
def test_torn_tail_is_truncated(tmp_path, cut):
    path = write(tmp_path, PAYLOADS)
    with open(path, "r+b") as f:
        f.truncate(ENDS[-1] - cut)
    with Store(tmp_path) as store:
        assert store.count("t", 0) == 9
        assert store.read("t", 0, 0, 20) == PAYLOADS[:9]
        assert len(store.recovery_notes) == 1 and "torn tail" in store.recovery_notes[0]
        assert store.append("t", 0, b"after") == 9
    assert os.path.getsize(path) == ENDS[8] + 16 + 5
    with Store(tmp_path) as store:
        assert store.read("t", 0, 9, 1) == [b"after"] and store.recovery_notes == []


@pytest.mark.parametrize("garbage", [b"\x00" * 100, os.urandom(3), os.urandom(4096)])
def test_garbage_after_the_last_record_is_truncated(tmp_path, garbage):
    path = write(tmp_path, PAYLOADS)
    with open(path, "ab") as f:
        f.write(garbage)
    with Store(tmp_path) as store:
        assert store.read("t", 0, 0, 20) == PAYLOADS
    assert os.path.getsize(path) == ENDS[-1]


def test_flipped_bit_in_the_last_record_reads_as_a_torn_write(tmp_path):
    path = write(tmp_path, PAYLOADS)
    with open(path, "r+b") as f:
        f.seek(ENDS[-1] - 3)
        byte = f.read(1)
        f.seek(ENDS[-1] - 3)
        f.write(bytes([byte[0] ^ 0x01]))
    with Store(tmp_path) as store:
        assert store.read("t", 0, 0, 20) == PAYLOADS[:9]


@pytest.mark.parametrize("where", [0, 3, ENDS[0] + 5, ENDS[4] + 20, ENDS[7] + 10])
def test_bit_rot_before_intact_records_is_refused(tmp_path, where):
    path = write(tmp_path, PAYLOADS)
    before = path.read_bytes()
    with open(path, "r+b") as f:
        f.seek(where)
        byte = f.read(1)
        f.seek(where)
        f.write(bytes([byte[0] ^ 0x40]))
    with pytest.raises(CorruptSegment) as err:
        Store(tmp_path)
    assert str(path) in str(err.value) and "bit rot" in str(err.value)
    damaged_at = max(e for e in [0, *ENDS] if e <= where)
    assert err.value.position == damaged_at
    # Nothing was truncated or rewritten: the evidence stays for the operator.
    after = path.read_bytes()
    assert len(after) == len(before)


def test_rot_in_a_sealed_segment_is_refused(tmp_path):
    path = write(tmp_path, PAYLOADS, seal=True)
    with open(path, "r+b") as f:
        f.seek(ENDS[2] + 18)
        f.write(b"\xff")
    with pytest.raises(CorruptSegment):
        Store(tmp_path)


def test_bytes_after_a_seal_are_refused(tmp_path):
    path = write(tmp_path, PAYLOADS, seal=True)
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(CorruptSegment, match="after the seal trailer"):
        Store(tmp_path)


def test_rot_found_by_a_read_is_an_error_not_data(tmp_path):
    path = write(tmp_path, PAYLOADS)
    store = Store(tmp_path)
    try:
        with open(path, "r+b") as f:
            f.seek(ENDS[4] + 17)
            f.write(b"\x00\x00")
        assert store.read("t", 0, 0, 5) == PAYLOADS[:5]
        with pytest.raises(CorruptSegment, match="checksum"):
            store.read("t", 0, 5, 1)
        with pytest.raises(CorruptSegment):
            store.read("t", 0, 3, 5)
    finally:
        store.close()
