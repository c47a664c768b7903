"""Topic names: what clients may use, checked in one place for the protocol and the store."""

import re

TOPIC_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")


class InvalidTopic(ValueError):
    """A topic name outside ``[A-Za-z0-9._-]{1,128}``."""

    def __init__(self, topic: object) -> None:
        super().__init__(
            f"invalid topic name {topic!r}: use 1-128 characters from A-Z a-z 0-9 . _ -"
        )
        self.topic = topic


def check_topic(topic: object) -> str:
    """Return ``topic`` if it is a valid topic name, else raise InvalidTopic."""
    if not isinstance(topic, str) or not TOPIC_PATTERN.fullmatch(topic):
        raise InvalidTopic(topic)
    return topic
