"""The storage engine's exceptions: one type per way an operation can be refused."""

from walrus.names import InvalidTopic


class StorageError(Exception):
    """Base of every error the storage engine raises on purpose."""


class PayloadTooLarge(StorageError, ValueError):
    """A payload longer than the store's ``max_payload``; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class UnknownSegment(StorageError, LookupError):
    """The (topic, segment) has no file in this store."""

    def __init__(self, topic: str, segment: int) -> None:
        super().__init__(f"no segment {segment} of topic {topic!r} in this store")
        self.topic = topic
        self.segment = segment


class SegmentExists(StorageError):
    """create_segment on a segment that already has a file."""

    def __init__(self, topic: str, segment: int) -> None:
        super().__init__(f"segment {segment} of topic {topic!r} already exists")
        self.topic = topic
        self.segment = segment


class SegmentSealed(StorageError):
    """An append to a sealed (or sealing) segment; nothing was written."""

    def __init__(self, topic: str, segment: int, count: int | None) -> None:
        counted = "" if count is None else f" at {count} entries"
        super().__init__(f"segment {segment} of topic {topic!r} is sealed{counted}")
        self.topic = topic
        self.segment = segment
        self.count = count


class ReadPastEnd(StorageError, IndexError):
    """A read starting beyond the last entry of a segment."""

    def __init__(self, topic: str, segment: int, offset: int, count: int) -> None:
        super().__init__(
            f"offset {offset} is past the end of segment {segment} of topic {topic!r} "
            f"({count} entries)"
        )
        self.offset = offset
        self.count = count


class CorruptSegment(StorageError):
    """Damage that is not a torn tail (bit rot in written data); the segment is refused."""

    def __init__(self, path: str, position: int, why: str) -> None:
        super().__init__(f"{path}: corrupt at byte {position}: {why}")
        self.path = path
        self.position = position


class SegmentFailed(StorageError):
    """A write or sync failed; the segment takes no more appends until the store is reopened."""


class StoreClosed(StorageError):
    """An operation on a store that has been closed."""


__all__ = [
    "CorruptSegment",
    "InvalidTopic",
    "PayloadTooLarge",
    "ReadPastEnd",
    "SegmentExists",
    "SegmentFailed",
    "SegmentSealed",
    "StorageError",
    "StoreClosed",
    "UnknownSegment",
]
