"""Systems under test (``docs/design.md`` §8): ``walrus-py`` (this repository's node, the default),
``walrus-rs`` (the original Walrus, built from a source tree the user gives), ``external`` (a
Walrus-protocol cluster that is already running), ``nats`` (NATS JetStream), ``rabbitmq`` and
``redis`` (Redis Streams with Sentinel). See
``harness.systems.base`` for what a system owns and what is left to the backends."""

from typing import Any

from harness.systems.base import Boot, Command, Member, System, Unsupported
from harness.systems.walrus_py import NodeSpec, WalrusPy

SYSTEMS = ("walrus-py", "walrus-rs", "external", "nats", "rabbitmq", "redis")
"""Every system's name, for ``--system``."""


def system_from_json(raw: dict[str, Any]) -> System:
    """The system a run's test.json describes (``TestConfig.to_json``), to run it again."""
    from dataclasses import fields

    from harness.systems.external import External
    from harness.systems.nats import Nats
    from harness.systems.rabbitmq import Rabbit
    from harness.systems.redis import Redis
    from harness.systems.walrus_rs import WalrusRs

    classes = {c.name: c for c in (WalrusPy, WalrusRs, External, Nats, Rabbit, Redis)}
    cls = classes.get(raw.get("name", ""))
    if cls is None:
        raise ValueError(f"test.json names no known system: {raw.get('name')!r}")
    values = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.name == "spec":
            value = NodeSpec(**{**value, "extra_args": tuple(value.get("extra_args", ()))})
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[f.name] = value
    return cls(**values)


__all__ = [
    "SYSTEMS",
    "Boot",
    "Command",
    "Member",
    "NodeSpec",
    "System",
    "Unsupported",
    "WalrusPy",
    "system_from_json",
]
