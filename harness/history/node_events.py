"""The nodes' event logs, read by the harness: one typed reader for every checker.

A node writes ``<data-dir>/events.jsonl`` (``walrus.events``); the run collects them as
``nodes/<id>/events.jsonl``. The schema is ``docs/events.md``; this module is its one reader:
each line becomes a ``NodeEvent`` whose kind's required fields are checked, so a checker reads
attributes, never a dict it has to trust. A torn last line (a crash mid-write) is skipped; any
other line that does not parse is an ``EventLogError`` naming the file and line.
"""

import json
from dataclasses import dataclass
from pathlib import Path

REQUIRED = {
    "start": (),
    "stop": (),
    "lease-acquire": ("sent", "expiry"),
    "lease-renew": ("sent", "expiry"),
    "lease-loss": ("expiry",),
    "append": ("topic", "segment", "offset", "count", "epoch"),
    "seal": ("topic", "segment", "count"),
    "takeover": ("silent", "result"),
    "disk-lost": ("result",),
    "cursor": ("topic", "segment", "offset", "first", "tags", "values"),
    "meta-apply": ("index", "term", "hash", "cmd"),
    "meta-ack": ("index", "term", "hash", "cmd"),
    "meta-truncate": ("start", "end", "applied", "commit", "dropped", "leader"),
    "meta-refuse": ("index", "term", "sent_term", "applied", "commit"),
    "meta-snapshot": ("index", "term", "installed"),
}
"""Every event kind and the fields it must carry besides the common ones (``kind``, ``node``,
``true_ns``, ``node_time``)."""


class EventLogError(ValueError):
    """A node event log line that does not follow the schema."""


@dataclass(frozen=True)
class NodeEvent:
    """One event of one node; fields a kind does not carry are None (or empty)."""

    kind: str
    node: int
    true_ns: int
    node_time: float
    topic: str | None = None
    segment: int | None = None
    offset: int | None = None
    count: int | None = None
    epoch: int | None = None
    first: int | None = None
    tags: tuple[str | None, ...] = ()
    """``cursor``: the GETX tag each handed-out entry went to (from ``first`` on)."""
    values: tuple[str | None, ...] = ()
    """``cursor``: each handed-out entry's value when small enough to log, else None."""
    sent: float | None = None
    expiry: float | None = None
    silent: int | None = None
    renew_seq: int | None = None
    result: str | None = None
    compat: bool = False
    node_wall: float | None = None
    index: int | None = None
    """``meta-*``: a Raft log index (the entry applied, acknowledged, refused; a snapshot's)."""
    term: int | None = None
    hash: str | None = None
    """``meta-apply``, ``meta-ack``: the entry's command, hashed."""
    cmd: str | None = None
    """``meta-apply``, ``meta-ack``: the command's name (``renew``, ``rollover``, ``noop``...)."""
    start: int | None = None
    """``meta-truncate``: the first index deleted (``end`` the last)."""
    end: int | None = None
    applied: int | None = None
    """``meta-truncate``, ``meta-refuse``: the last index the node had applied."""
    commit: int | None = None
    dropped: tuple[tuple[int, int, str], ...] = ()
    """``meta-truncate``: (index, term, hash) of the first entries deleted."""
    sent_term: int | None = None
    leader: int | None = None
    """``meta-truncate``: the node whose AppendEntries made the truncation."""
    installed: bool = False
    """``meta-snapshot``: installed from the leader (else loaded from the node's dump file)."""


_FIELDS = set(NodeEvent.__dataclass_fields__)


def parse(raw: dict, where: str = "event") -> NodeEvent:
    """A NodeEvent from one decoded line; EventLogError naming ``where`` if it is malformed."""
    kind = raw.get("kind")
    if kind not in REQUIRED:
        raise EventLogError(f"{where}: unknown event kind {kind!r}")
    missing = [f for f in ("node", "true_ns", "node_time", *REQUIRED[kind]) if f not in raw]
    if missing:
        raise EventLogError(f"{where}: a {kind} event needs {', '.join(missing)}")
    fields = {k: v for k, v in raw.items() if k in _FIELDS}
    for name in ("tags", "values"):
        if name in fields:
            fields[name] = tuple(fields[name] or ())
    if "dropped" in fields:
        fields["dropped"] = tuple(tuple(entry) for entry in fields["dropped"] or ())
    fields["compat"] = bool(fields.get("compat", False))
    fields["installed"] = bool(fields.get("installed", False))
    return NodeEvent(**fields)


def read(path: Path) -> list[NodeEvent]:
    """Every complete event of one log."""
    out = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # torn by a crash
            try:
                raw = json.loads(line)
            except ValueError:
                raise EventLogError(f"{path}:{number}: not JSON") from None
            out.append(parse(raw, f"{path}:{number}"))
    return out


def read_nodes(nodes_dir: Path) -> list[NodeEvent]:
    """Every event of every ``<nodes_dir>/<node>/events.jsonl``."""
    events: list[NodeEvent] = []
    for path in sorted(nodes_dir.glob("*/events.jsonl")):
        events.extend(read(path))
    return events
