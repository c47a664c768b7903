"""The node's clock: true monotonic time bent by a rate, plus a wall reading with an offset,
both from ``clock.ctl``.

Everything in a node that measures time — lease arithmetic, trio's timers (through
``TrioClock``) and pysyncobj's election and connection timers (``walrus.raft.use_clock``) —
reads ``NodeClock.now()``, which the rate bends (as a real clock drifts) but an offset never
moves, as a real node times leases on ``CLOCK_MONOTONIC`` rather than on wall time: a lease or a
takeover wait measured across an offset jump would be off by the jump (``python -m spec.explore
--config bump`` shows the two writers that follows). ``NodeClock.wall()`` is ``now()`` plus the
offset, the node's wall-clock reading. The clock nemesis skews a node by writing
``<data-dir>/clock.ctl``, the same way for a process or a container. The file is JSON::

    {"offset": <seconds, float>, "rate": <float > 0>}

Both keys are optional (defaults 0 and 1); a missing file means an unskewed clock. The file is
re-read at most every 50 ms. Node time is continuous under rate changes (the new rate applies
from the moment it is seen); the wall reading jumps by exactly the change when the offset
changes::

    now  = base_node + (true - base_true) * rate
    wall = now + offset
"""

import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import trio

RELOAD_INTERVAL = 0.05


class ClockControlError(ValueError):
    """A clock.ctl that cannot be used; the clock keeps its previous setting."""


def parse_control(text: str) -> tuple[float, float]:
    """(offset, rate) from a clock.ctl's text."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ClockControlError(f"clock.ctl is not JSON: {exc}") from None
    if not isinstance(raw, dict) or set(raw) - {"offset", "rate"}:
        raise ClockControlError('clock.ctl must be {"offset": seconds, "rate": factor}')
    offset, rate = raw.get("offset", 0.0), raw.get("rate", 1.0)
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (offset, rate)):
        raise ClockControlError("clock.ctl offset and rate must be finite numbers")
    if rate <= 0:
        raise ClockControlError(f"clock.ctl rate must be > 0, not {rate}")
    return float(offset), float(rate)


def control_text(offset: float = 0.0, rate: float = 1.0) -> str:
    """A clock.ctl's text for ``offset`` and ``rate`` (ClockControlError if they are unusable)."""
    text = json.dumps({"offset": offset, "rate": rate})
    parse_control(text)
    return text


def write_control(path: Path, offset: float = 0.0, rate: float = 1.0) -> None:
    """Atomically write a clock.ctl."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(control_text(offset, rate))
    os.replace(tmp, path)


class NodeClock:
    """Node time in seconds; thread-safe. ``control`` is the clock.ctl path (None: no skew)."""

    def __init__(
        self, control: Path | None = None, true_clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._control = control
        self._true = true_clock
        self._lock = threading.Lock()
        t = true_clock()
        self._base = (t, t, 1.0)  # (true, node, rate): replaced whole, so read without the lock
        self._offset = 0.0
        self._checked = -math.inf
        self._stamp: tuple[int, int] | None = None
        self.error: str | None = None

    def _reload(self, control: Path, true_now: float) -> None:
        self._checked = true_now
        try:
            st = os.stat(control)
        except FileNotFoundError:
            stamp, text = None, ""
        except OSError as exc:
            self.error = f"cannot read {control}: {exc.strerror}"
            return
        else:
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            try:
                text = control.read_text()
            except FileNotFoundError:
                stamp, text = None, ""
            except OSError as exc:
                self.error = f"cannot read {control}: {exc.strerror}"
                return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            offset, rate = parse_control(text)
        except ClockControlError as exc:
            self.error = str(exc)
            return
        self.error = None
        base_true, base_node, old_rate = self._base
        self._base = (true_now, base_node + (true_now - base_true) * old_rate, rate)
        self._offset = offset

    def now(self) -> float:
        """Node time in seconds: monotonic, bent by the rate, never moved by the offset."""
        t = self._true()
        if self._control is not None and t - self._checked >= RELOAD_INTERVAL:
            with self._lock:
                if t - self._checked >= RELOAD_INTERVAL:
                    self._reload(self._control, t)
        base_true, base_node, rate = self._base
        return base_node + (t - base_true) * rate

    def wall(self) -> float:
        """The node's wall-clock reading: node time plus the offset."""
        now = self.now()
        return now + self._offset

    @property
    def rate(self) -> float:
        """The rate in force (node seconds per true second)."""
        return self._base[2]

    @property
    def offset(self) -> float:
        """The offset in force, in seconds."""
        return self._offset


class TrioClock(trio.abc.Clock):
    """trio's clock on node time: timers and deadlines are in node seconds.

    Sleeps are capped at RELOAD_INTERVAL so that a changed offset or rate takes effect promptly.
    """

    def __init__(self, clock: NodeClock) -> None:
        self._clock = clock

    def start_clock(self) -> None:
        """Nothing to start: the node clock runs from construction."""

    def current_time(self) -> float:
        """Node time."""
        return self._clock.now()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """True seconds to sleep until node time reaches ``deadline`` (at most 50 ms)."""
        remaining = (deadline - self._clock.now()) / self._clock.rate
        return max(0.0, min(remaining, RELOAD_INTERVAL))
