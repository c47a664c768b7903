"""Hypothesis state machine: the store behaves like a dict of lists across appends and reopens."""

import shutil
import tempfile

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from walrus.storage import Cursor, ReadPastEnd, SegmentSealed, Store

TOPICS = st.sampled_from(["a", "b.c", "_-9"])
SEGMENTS = st.integers(min_value=0, max_value=3)
PAYLOADS = st.binary(max_size=200)


class StoreModel(RuleBasedStateMachine):
    """Random appends, batches, seals, cursor moves and reopens against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="store-model-")
        self.policy = "none"
        self.store = Store(self.dir, fsync=self.policy)
        self.data: dict[tuple[str, int], list[bytes]] = {}
        self.sealed: set[tuple[str, int]] = set()
        self.cursors: dict[str, Cursor] = {}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir)

    @rule(topic=TOPICS, segment=SEGMENTS)
    def create(self, topic, segment):
        if (topic, segment) not in self.data:
            self.store.create_segment(topic, segment)
            self.data[(topic, segment)] = []

    @precondition(lambda self: self.data)
    @rule(pick=st.data(), payload=PAYLOADS)
    def append(self, pick, payload):
        key = pick.draw(st.sampled_from(sorted(self.data)))
        if key in self.sealed:
            try:
                self.store.append(*key, payload)
                raise AssertionError("append to a sealed segment succeeded")
            except SegmentSealed:
                return
        assert self.store.append(*key, payload) == len(self.data[key])
        self.data[key].append(payload)

    @precondition(lambda self: self.data)
    @rule(pick=st.data(), payloads=st.lists(PAYLOADS, min_size=1, max_size=20))
    def append_batch(self, pick, payloads):
        key = pick.draw(st.sampled_from(sorted(self.data)))
        if key in self.sealed:
            return
        assert self.store.append_batch(*key, payloads) == len(self.data[key])
        self.data[key].extend(payloads)

    @precondition(lambda self: self.data)
    @rule(pick=st.data())
    def seal(self, pick):
        key = pick.draw(st.sampled_from(sorted(self.data)))
        assert self.store.seal(*key) == len(self.data[key])
        self.sealed.add(key)

    @precondition(lambda self: self.data)
    @rule(pick=st.data(), offset=st.integers(0, 50), count=st.integers(1, 30))
    def read(self, pick, offset, count):
        key = pick.draw(st.sampled_from(sorted(self.data)))
        expected = self.data[key]
        if offset > len(expected):
            try:
                self.store.read(*key, offset, count)
                raise AssertionError("read past the end succeeded")
            except ReadPastEnd:
                return
        assert self.store.read(*key, offset, count) == expected[offset : offset + count]

    @rule(topic=TOPICS, segment=SEGMENTS, offset=st.integers(0, 100))
    def move_cursor(self, topic, segment, offset):
        self.store.set_cursor(topic, Cursor(segment, offset))
        self.cursors[topic] = Cursor(segment, offset)

    @rule(policy=st.sampled_from(["each", "none", "interval:20"]))
    def reopen(self, policy):
        self.store.close()
        self.policy = policy
        self.store = Store(self.dir, fsync=policy)
        assert self.store.recovery_notes == []

    @invariant()
    def counts_and_cursors_agree(self):
        for (topic, segment), entries in self.data.items():
            info = self.store.info(topic, segment)
            assert info.count == len(entries)
            assert info.sealed == ((topic, segment) in self.sealed)
        for topic, cursor in self.cursors.items():
            assert self.store.cursor(topic) == cursor


TestStoreModel = StoreModel.TestCase
TestStoreModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
