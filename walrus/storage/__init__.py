"""The storage engine: append-only segment files, group commit, crash recovery, durable cursors."""

from walrus.storage._commit import Guard, Request
from walrus.storage._errors import (
    CorruptSegment,
    InvalidTopic,
    PayloadTooLarge,
    ReadPastEnd,
    SegmentExists,
    SegmentFailed,
    SegmentSealed,
    StorageError,
    StoreClosed,
    UnknownSegment,
)
from walrus.storage._layout import NODE_STORE, cursor_path, segment_files
from walrus.storage._policy import FsyncPolicy
from walrus.storage._segment import SegmentInfo
from walrus.storage._store import DEFAULT_MAX_PAYLOAD, Cursor, Store

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "NODE_STORE",
    "CorruptSegment",
    "Cursor",
    "FsyncPolicy",
    "Guard",
    "InvalidTopic",
    "PayloadTooLarge",
    "ReadPastEnd",
    "Request",
    "SegmentExists",
    "SegmentFailed",
    "SegmentInfo",
    "SegmentSealed",
    "StorageError",
    "Store",
    "StoreClosed",
    "UnknownSegment",
    "cursor_path",
    "segment_files",
]
