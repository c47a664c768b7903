"""The store on real files: appends, reads, seals, reopen, cursors, bad input, trio and threads."""

import os
import threading

import pytest
import trio

from walrus.storage import (
    Cursor,
    FsyncPolicy,
    InvalidTopic,
    PayloadTooLarge,
    ReadPastEnd,
    SegmentExists,
    SegmentSealed,
    StorageError,
    Store,
    StoreClosed,
    UnknownSegment,
)


@pytest.fixture(params=["each", "none", "interval:5"])
def store(request, tmp_path):
    s = Store(tmp_path / "data", fsync=request.param)
    yield s
    s.close()


def reopen(store: Store) -> Store:
    store.close()
    return Store(store.root, fsync=store.policy)


def test_append_read_round_trip(store):
    store.create_segment("t", 0)
    assert [store.append("t", 0, f"v{i}".encode()) for i in range(5)] == [0, 1, 2, 3, 4]
    assert store.read("t", 0, 0, 10) == [f"v{i}".encode() for i in range(5)]
    assert store.read("t", 0, 3, 1) == [b"v3"]
    assert store.read("t", 0, 5, 1) == []
    assert store.count("t", 0) == 5


def test_payload_bytes_kept_exactly(store):
    store.create_segment("t", 0)
    payloads = [b"", b"\x00", bytes(range(256)), "héllo wörld".encode(), b" spaces  "]
    first = store.append_batch("t", 0, payloads)
    assert first == 0
    assert store.read("t", 0, 0, 99) == payloads


def test_batches_and_single_appends_interleave(store):
    store.create_segment("t", 3)
    store.append("t", 3, b"a")
    assert store.append_batch("t", 3, [b"b", b"c", b"d"]) == 1
    assert store.append("t", 3, b"e") == 4
    assert store.read("t", 3, 0, 10) == [b"a", b"b", b"c", b"d", b"e"]


def test_reopen_restores_everything(store):
    store.create_segment("a", 0)
    store.create_segment("a", 4)
    store.create_segment("b.x-y_z", 1)
    store.append_batch("a", 0, [b"1", b"2"])
    store.seal("a", 0)
    store.append("a", 4, b"3")
    store.append_batch("b.x-y_z", 1, [b"q"] * 100)
    store.set_cursor("a", Cursor(0, 1))
    store = reopen(store)
    try:
        assert store.topics() == ["a", "b.x-y_z"]
        assert [(i.segment, i.count, i.sealed) for i in store.segments("a")] == [
            (0, 2, True),
            (4, 1, False),
        ]
        assert store.count("b.x-y_z", 1) == 100
        assert store.cursor("a") == Cursor(0, 1)
        assert store.cursor("b.x-y_z") is None
        assert store.append("a", 4, b"4") == 1
        assert list(store.scan("a")) == [(0, 0, b"1"), (0, 1, b"2"), (4, 0, b"3"), (4, 1, b"4")]
    finally:
        store.close()


def test_seal_refuses_appends_and_survives_reopen(store):
    store.create_segment("t", 0)
    store.append("t", 0, b"x")
    assert store.seal("t", 0) == 1
    assert store.seal("t", 0) == 1
    with pytest.raises(SegmentSealed, match="sealed at 1 entries"):
        store.append("t", 0, b"y")
    store = reopen(store)
    try:
        with pytest.raises(SegmentSealed):
            store.append_batch("t", 0, [b"y"])
        assert store.read("t", 0, 0, 5) == [b"x"]
        assert store.info("t", 0).sealed
    finally:
        store.close()


def test_empty_segment_seals(store):
    store.create_segment("t", 0)
    assert store.seal("t", 0) == 0
    store = reopen(store)
    try:
        assert store.info("t", 0).sealed and store.count("t", 0) == 0
    finally:
        store.close()


def test_bad_input_is_refused_and_nothing_written(store):
    store.create_segment("t", 0)
    store.append("t", 0, b"keep")
    with pytest.raises(PayloadTooLarge):
        store.append("t", 0, b"x" * (store.max_payload + 1))
    with pytest.raises(PayloadTooLarge):
        store.append_batch("t", 0, [b"ok", b"x" * (store.max_payload + 1)])
    with pytest.raises(TypeError, match="bytes"):
        store.append("t", 0, "text")
    with pytest.raises(InvalidTopic):
        store.create_segment("bad topic", 0)
    with pytest.raises(InvalidTopic):
        store.create_segment("x" * 129, 0)
    with pytest.raises(InvalidTopic):
        store.append("a/b", 0, b"x")
    with pytest.raises(UnknownSegment):
        store.append("t", 1, b"x")
    with pytest.raises(SegmentExists):
        store.create_segment("t", 0)
    with pytest.raises(ReadPastEnd):
        store.read("t", 0, 2, 1)
    with pytest.raises(ReadPastEnd):
        store.read("t", 0, -1, 1)
    with pytest.raises(ValueError):
        store.append_batch("t", 0, [])
    with pytest.raises(ValueError):
        store.set_cursor("t", Cursor(0, -1))
    assert store.read("t", 0, 0, 10) == [b"keep"]
    assert store.append("t", 0, b"next") == 1


def test_dot_topics_are_directories_of_their_own(tmp_path):
    with Store(tmp_path) as store:
        store.create_segment(".", 0)
        store.create_segment("..", 0)
        store.append(".", 0, b"dot")
        store.append("..", 0, b"dotdot")
    with Store(tmp_path) as store:
        assert store.read(".", 0, 0) == [b"dot"] and store.read("..", 0, 0) == [b"dotdot"]


def test_closed_store_refuses(tmp_path):
    store = Store(tmp_path)
    store.create_segment("t", 0)
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.append("t", 0, b"x")


def test_concurrent_threads_get_distinct_contiguous_offsets(store):
    store.create_segment("t", 0)
    results: list[list[int]] = [[] for _ in range(8)]

    def writer(k: int) -> None:
        for i in range(200):
            results[k].append(store.append("t", 0, f"{k}-{i}".encode()))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    offsets = sorted(o for r in results for o in r)
    assert offsets == list(range(1600))
    stored = store.read("t", 0, 0, 2000)
    for k, r in enumerate(results):
        assert [stored[o] for o in r] == [f"{k}-{i}".encode() for i in range(200)]


def test_trio_appends_do_not_block_and_keep_order(store):
    store.create_segment("t", 0)
    got: dict[int, int] = {}

    async def main() -> None:
        async def one(i: int) -> None:
            got[i] = await store.append_async("t", 0, f"v{i}".encode())

        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(one, i)
        first = await store.append_batch_async("t", 0, [b"b1", b"b2"])
        assert first == 300
        assert await store.read_async("t", 0, 300, 2) == [b"b1", b"b2"]
        assert await store.seal_async("t", 0) == 302

    trio.run(main)
    assert sorted(got.values()) == list(range(300))
    data = store.read("t", 0, 0, 300)
    assert all(data[o] == f"v{i}".encode() for i, o in got.items())


def test_trio_and_threads_share_a_segment(store):
    store.create_segment("t", 0)

    def threads_side() -> None:
        for i in range(300):
            store.append("t", 0, f"thread-{i}".encode())

    async def main() -> None:
        t = threading.Thread(target=threads_side)
        t.start()
        for i in range(300):
            await store.append_async("t", 0, f"trio-{i}".encode())
        await trio.to_thread.run_sync(t.join)

    trio.run(main)
    data = store.read("t", 0, 0, 1000)
    assert len(data) == 600
    assert [d for d in data if d.startswith(b"trio")] == [f"trio-{i}".encode() for i in range(300)]


def test_seal_waits_for_in_flight_appends(tmp_path):
    store = Store(tmp_path, fsync="each")
    store.create_segment("t", 0)
    acked: list[int] = []
    refused = []

    def writer() -> None:
        for i in range(10_000):
            try:
                acked.append(store.append("t", 0, f"{i}".encode()))
            except SegmentSealed:
                refused.append(i)
                return

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    while store.count("t", 0) < 50:
        pass
    count = store.seal("t", 0)
    for t in threads:
        t.join()
    assert len(refused) == 4
    assert sorted(acked) == list(range(count))
    store.close()
    with Store(tmp_path) as again:
        assert again.count("t", 0) == count and again.info("t", 0).sealed


def test_interval_policy_syncs_in_the_background(tmp_path):
    store = Store(tmp_path, fsync="interval:10")
    store.create_segment("t", 0)
    store.append("t", 0, b"x")
    seg = store._segments[("t", 0)]
    assert seg._dirty
    for _ in range(200):
        if not seg._dirty:
            break
        threading.Event().wait(0.01)
    assert not seg._dirty
    store.close()


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("each", FsyncPolicy("each")),
        ("sync-each", FsyncPolicy("each")),
        ("none", FsyncPolicy("none")),
        ("no-fsync", FsyncPolicy("none")),
        ("interval:1000", FsyncPolicy("interval", 1000)),
        ("1000ms", FsyncPolicy("interval", 1000)),
    ],
)
def test_policy_parse(text, policy):
    assert FsyncPolicy.parse(text) == policy
    assert FsyncPolicy.parse(str(policy)) == policy


@pytest.mark.parametrize("bad", ["", "always", "interval:", "interval:0", "interval:-5", "5s"])
def test_policy_parse_rejects(bad):
    with pytest.raises(ValueError, match="fsync policy"):
        FsyncPolicy.parse(bad)


def test_files_are_where_the_layout_says(tmp_path):
    with Store(tmp_path) as store:
        store.create_segment("t", 7)
        store.set_cursor("t", Cursor(7, 0))
    names = sorted(os.listdir(tmp_path / "topics" / "t.topic"))
    assert names == ["00000000000000000007.seg", "cursor.json"]


def test_guard_decides_atomically_with_sequencing(store):
    store.create_segment("t", 0)
    seen = []

    def guard(first: int, count: int) -> None:
        seen.append((first, count))
        if first + count > 3:
            raise OverflowError("full")

    async def main() -> None:
        assert await store.begin_append("t", 0, [b"a", b"b"], guard).wait() == 0
        with pytest.raises(OverflowError):
            store.begin_append("t", 0, [b"c", b"d"], guard)
        # The refused records gave their offsets back.
        assert await store.begin_append("t", 0, [b"c"], guard).wait() == 2
        with pytest.raises(OverflowError):
            store.begin_append("t", 0, [b"d"], guard)

    trio.run(main)
    assert seen == [(0, 2), (2, 2), (2, 1), (3, 1)]
    assert store.read("t", 0, 0, 10) == [b"a", b"b", b"c"]


def test_requests_begun_in_order_get_offsets_in_order(store):
    store.create_segment("t", 0)

    async def main() -> list[int]:
        pending = [store.begin_append("t", 0, [f"{i}".encode()]) for i in range(50)]
        return [await p.wait() for p in pending]

    assert trio.run(main) == list(range(50))


@pytest.mark.parametrize(
    ("policy", "at_once", "later"), [("each", 2, 2), ("none", 0, 0), ("interval:20", 0, 2)]
)
def test_a_cursor_is_as_durable_as_the_policy_makes_appends(
    tmp_path, monkeypatch, policy, at_once, later
):
    """Under ``each`` the cursor file and its directory are fsynced before set_cursor returns;
    under ``interval`` by the syncer; under ``none`` never (observed on the real calls)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    with Store(tmp_path, fsync=policy) as store:
        store.create_segment("t", 0)
        monkeypatch.setattr(os, "fsync", fsync)
        store.set_cursor("t", Cursor(0, 3))
        cursor_dir = str(tmp_path / "topics" / "t.topic")
        mine = [p for p in synced if p.startswith(cursor_dir) and not p.endswith(".seg")]
        assert len(mine) == at_once, synced
        for _ in range(100):
            mine = [p for p in synced if p.startswith(cursor_dir) and not p.endswith(".seg")]
            if len(mine) >= later:
                break
            threading.Event().wait(0.01)
        assert len(mine) == later, synced
        assert store.cursor("t") == Cursor(0, 3)


@pytest.mark.parametrize("policy", ["none", "interval:20"])
def test_a_cursor_a_power_loss_left_empty_is_dropped_where_the_policy_never_synced_it(
    tmp_path, policy
):
    """The name renamed into place, none of its bytes: the topic is read from its start again
    (entries handed out twice, never skipped), and the node's recovery notes say so."""
    with Store(tmp_path, fsync=policy) as store:
        store.create_segment("t", 0)
        store.set_cursor("t", Cursor(0, 3))
    (tmp_path / "topics" / "t.topic" / "cursor.json").write_bytes(b"")
    with Store(tmp_path, fsync=policy) as store:
        assert store.cursor("t") is None
        assert len(store.recovery_notes) == 1
        assert "t is read from its start" in store.recovery_notes[0]
        store.set_cursor("t", Cursor(0, 1))
        assert store.cursor("t") == Cursor(0, 1)


def test_an_unreadable_cursor_under_each_is_damage_and_stays_an_error(tmp_path):
    with Store(tmp_path, fsync="each") as store:
        store.create_segment("t", 0)
        store.set_cursor("t", Cursor(0, 3))
    (tmp_path / "topics" / "t.topic" / "cursor.json").write_bytes(b"")
    with Store(tmp_path, fsync="each") as store:
        assert store.recovery_notes == []
        with pytest.raises(StorageError, match="unreadable cursor"):
            store.cursor("t")
