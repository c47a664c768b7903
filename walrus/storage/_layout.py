"""Where a store keeps its files, as pure functions of its root: one place for the engine and for
anything that must find a segment file without opening the store (the harness's disk faults)."""

from pathlib import Path

from walrus.names import check_topic

NODE_STORE = "store"
"""The store's directory under a node's data directory."""
TOPIC_SUFFIX = ".topic"
SEGMENT_SUFFIX = ".seg"


def topics_dir(root: Path) -> Path:
    """The directory of every topic."""
    return root / "topics"


def topic_dir(root: Path, topic: str) -> Path:
    """One topic's directory."""
    return topics_dir(root) / f"{check_topic(topic)}{TOPIC_SUFFIX}"


def segment_path(root: Path, topic: str, segment: int) -> Path:
    """A segment's file."""
    return topic_dir(root, topic) / f"{segment:020d}{SEGMENT_SUFFIX}"


CURSOR_FILE = "cursor.json"
"""A topic's cursor file, in its directory."""


def cursor_path(root: Path, topic: str) -> Path:
    """A topic's durable cursor."""
    return topic_dir(root, topic) / CURSOR_FILE


def cursor_files(root: Path) -> list[tuple[str, Path]]:
    """(topic, file) of every cursor file under the store, sorted."""
    return [
        (check_topic(path.parent.name.removesuffix(TOPIC_SUFFIX)), path)
        for path in sorted(topics_dir(root).glob(f"*{TOPIC_SUFFIX}/{CURSOR_FILE}"))
    ]


def segment_files(root: Path) -> list[tuple[str, int, Path]]:
    """(topic, segment, file) of every segment file under the store, sorted."""
    out = []
    for directory in sorted(topics_dir(root).glob(f"*{TOPIC_SUFFIX}")):
        topic = check_topic(directory.name.removesuffix(TOPIC_SUFFIX))
        for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
            out.append((topic, int(path.stem), path))
    return out
