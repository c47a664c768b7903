"""Group commit: many appenders share one write and one fdatasync.

Appenders queue their records; whoever finds the queue idle becomes the committer and writes
every queued record in one batch. A thread appender commits its own batch in its own thread (no
hand-off when it is alone, which is what makes one-record-per-call appends cheap); if more work
queued up meanwhile, it passes the queue to a helper thread and returns. A trio appender never
blocks the event loop: it wakes the helper thread and awaits an event that the helper sets
through the run's ``TrioToken``. This is the leader/follower scheme RocksDB uses for its WAL.
"""

import contextlib
import threading
from collections.abc import Callable, Sequence

import trio

Guard = Callable[[int, int], None]
"""Called under the queue's lock once records have offsets: ``guard(first, count)``. Raising
refuses the append (the offsets are given back), so a guard decides atomically with sequencing."""


class Request:
    """A queued appender's records, the offset given to the first, and how to wake it."""

    __slots__ = ("_done", "_trio", "error", "first", "payloads")

    def __init__(self, payloads: Sequence[bytes], first: int) -> None:
        self.payloads = payloads
        self.first = first
        self.error: BaseException | None = None
        self._done: threading.Lock | None = None
        self._trio: tuple[trio.lowlevel.TrioToken, trio.Event] | None = None

    def _event(self) -> trio.Event:
        assert self._trio is not None, "a request begun from a thread has no event"
        return self._trio[1]

    def done(self) -> bool:
        """For a request begun from trio: True once committed (or failed)."""
        return self._event().is_set()

    async def wait(self) -> int:
        """For a request begun from trio: wait until committed; returns the first offset.

        If the task is cancelled while waiting, the records may still be written. Once
        committed it returns at once, with no checkpoint (the caller's I/O checkpoints).
        """
        event = self._event()
        if not event.is_set():
            await event.wait()
        if self.error is not None:
            raise self.error
        return self.first


def _set_events(events: list[trio.Event]) -> None:
    for event in events:
        event.set()


def _complete(batch: list[Request]) -> None:
    by_token: dict[trio.lowlevel.TrioToken, list[trio.Event]] = {}
    for req in batch:
        if req._trio is not None:
            token, event = req._trio
            by_token.setdefault(token, []).append(event)
        else:
            assert req._done is not None  # begun from a thread
            req._done.release()
    for token, events in by_token.items():
        with contextlib.suppress(trio.RunFinishedError):  # the run ended; nobody is waiting
            token.run_sync_soon(_set_events, events)


class GroupCommit:
    """A queue of append requests for one file and the leadership of its commits.

    ``lock`` guards the queue and is shared with the owner's state. ``admit(payloads, guard)``
    runs under it, in queue order: it refuses (by raising) or returns the offset of the first
    record.
    ``write(first, payloads)`` makes consecutive records durable per policy; it runs outside the
    lock, never twice at once.
    """

    def __init__(
        self,
        lock: threading.Lock,
        admit: Callable[[Sequence[bytes], Guard | None], int],
        write: Callable[[int, Sequence[bytes]], None],
        name: str,
    ) -> None:
        self._lock = lock
        self._admit = admit
        self._write = write
        self._name = name
        self._changed = threading.Condition(self._lock)
        self._queue: list[Request] = []
        self._leading = False
        self._helper: threading.Thread | None = None
        self._help_wanted = False
        self._closed = False
        self._drainers = 0

    def submit(self, payloads: Sequence[bytes], guard: Guard | None = None) -> int:
        """Append from a plain thread; returns the first record's offset once it is committed."""
        with self._lock:
            first = self._admit(payloads, guard)
            if self._leading:
                req = Request(payloads, first)
                req._done = threading.Lock()
                req._done.acquire()
                self._queue.append(req)
            else:
                self._leading = True
                req = None
        if req is None:
            try:
                self._write(first, payloads)
            finally:
                self._end_lead()
            return first
        assert req._done is not None  # set above, as it was queued
        req._done.acquire()
        if req.error is not None:
            raise req.error
        return first

    def begin(self, payloads: Sequence[bytes], guard: Guard | None = None) -> Request:
        """Sequence records from a trio task without blocking; ``await request.wait()`` for the
        commit. Offsets are given in the order begin() is called."""
        event = trio.Event()
        with self._lock:
            req = Request(payloads, self._admit(payloads, guard))
            req._trio = (trio.lowlevel.current_trio_token(), event)
            self._queue.append(req)
            if not self._leading:
                self._leading = True
                self._wake_helper_locked()
        return req

    def _drain_locked(self) -> None:
        self._drainers += 1
        try:
            while self._leading or self._queue:
                self._changed.wait()
        finally:
            self._drainers -= 1

    def drain(self) -> None:
        """Block until every queued request has been committed (the caller stops new ones)."""
        with self._lock:
            self._drain_locked()

    def close(self) -> None:
        """Drain, then stop the helper thread."""
        with self._lock:
            self._drain_locked()
            self._closed = True
            self._changed.notify_all()
            helper = self._helper
        if helper is not None:
            helper.join()

    def _end_lead(self) -> None:
        with self._lock:
            if self._queue:
                self._wake_helper_locked()
            else:
                self._leading = False
                if self._drainers:
                    self._changed.notify_all()

    def _round(self) -> None:
        with self._lock:
            batch = self._queue
            self._queue = []
        payloads = batch[0].payloads if len(batch) == 1 else [p for r in batch for p in r.payloads]
        try:
            self._write(batch[0].first, payloads)
        except BaseException as exc:  # every waiter must hear of the failure
            for req in batch:
                req.error = exc
        _complete(batch)

    def _wake_helper_locked(self) -> None:
        self._help_wanted = True
        if self._helper is None:
            self._helper = threading.Thread(
                target=self._helper_main, name=f"commit-{self._name}", daemon=True
            )
            self._helper.start()
        else:
            self._changed.notify_all()

    def _helper_main(self) -> None:
        with self._lock:
            while True:
                while not self._help_wanted and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                self._help_wanted = False
                while self._queue:
                    self._lock.release()
                    try:
                        self._round()
                    finally:
                        self._lock.acquire()
                self._leading = False
                self._changed.notify_all()
