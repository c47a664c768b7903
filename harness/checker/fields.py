"""What a checker reads of a node event: a field its kind carries, typed as present."""

from typing import TypeVar

T = TypeVar("T")


def carried(value: T | None) -> T:
    """A field of a node event whose kind carries it (the event reader's ``REQUIRED``, checked
    as each line is read); a checker reads it only from events of such kinds."""
    if value is None:
        raise ValueError("a node event lacks a field its kind carries")
    return value
