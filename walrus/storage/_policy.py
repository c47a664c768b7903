"""Fsync policies: when an append's bytes are forced to disk, relative to its acknowledgement."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FsyncPolicy:
    """``each``: ack after the fdatasync covering the record; ``interval``: ack after write, sync
    every ``interval_ms``; ``none``: ack after write, never sync."""

    mode: str
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> "FsyncPolicy":
        """Read ``each``, ``none`` or ``interval:<ms>`` (``<ms>ms`` also accepted, as Walrus)."""
        t = text.strip().lower()
        if t in ("each", "sync-each"):
            return cls("each")
        if t in ("none", "no-fsync"):
            return cls("none")
        ms = t.removeprefix("interval:").removesuffix("ms")
        if ms != t and ms.isdigit() and int(ms) > 0:
            return cls("interval", int(ms))
        raise ValueError(f"fsync policy must be each, none or interval:<ms> (ms > 0), not {text!r}")

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode
