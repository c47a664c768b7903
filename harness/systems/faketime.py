"""Clock skew for nodes the harness cannot change: libfaketime preloaded, steered by a file.

The way Jepsen skews programs it does not own: ``LD_PRELOAD`` libfaketime with a control file in
the node's data directory that it re-reads every second (``FAKETIME_CACHE_DURATION``), holding an
offset and a rate. ``FAKETIME_DONT_FAKE_MONOTONIC`` keeps the monotonic clock true, so offsets and
rates move the wall clock only, as NTP steps and slews move CLOCK_REALTIME; a rate change restarts
libfaketime's reference point (``FAKETIME_XRESET``) so the wall reading does not jump. It reaches
programs that read the time through libc — not Go's, which reads the vDSO directly.
"""

from pathlib import Path

CONTROL_FILE = "faketime.rc"
"""The control file, in the node's data directory."""


def preload(data_dir: Path, lib: str) -> dict[str, str]:
    """The environment that preloads libfaketime (at ``lib``) steered from ``data_dir``."""
    return {
        "LD_PRELOAD": lib,
        "FAKETIME_TIMESTAMP_FILE": str(data_dir / CONTROL_FILE),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_XRESET": "1",
    }


def control(offset: float, rate: float) -> tuple[str, bytes]:
    """The control file (name, contents) that sets a node's wall clock ``offset`` seconds off
    true time, running at ``rate`` (written whole by the cluster, so it is never read half
    written)."""
    return CONTROL_FILE, f"{offset:+.6f} x{rate:.6f}\n".encode()
