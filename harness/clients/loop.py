"""asyncio client libraries driven from trio: one asyncio event loop in a thread of its own.

The harness is trio; the established clients of other queues (nats-py, aio-pika, redis's
asyncio client) are asyncio. Rather than a thread per call (``trio.to_thread``) or a second event
loop bridged into trio's, every asyncio client of a run lives on one asyncio loop in one daemon
thread, and a trio task awaits a coroutine there as if it were its own: ``await loop.run(fn)``
submits ``fn()`` to the loop and sleeps on a trio event that the coroutine's completion sets
from the loop's thread (through trio's token, the one thread-safe way into trio). Cancelling the
trio task cancels the asyncio task, so a timeout in the workload reaches the client library.
"""

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import trio

T = TypeVar("T")


class AsyncioLoop:
    """An asyncio loop in a daemon thread; use as a (sync or async) context manager."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop's thread (idempotent)."""
        if self._loop is not None:
            return
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="asyncio-clients", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        """Cancel what still runs on the loop, stop it and join its thread."""
        loop, self._loop = self._loop, None
        if loop is None or self._thread is None:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> "AsyncioLoop":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()`` on the asyncio loop, from trio; its result or its exception. Cancelling
        the calling trio task cancels it there."""
        if self._loop is None:
            raise RuntimeError("the asyncio loop is not running")

        async def call() -> T:
            return await fn()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(call(), self._loop)
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        future.add_done_callback(lambda _: token.run_sync_soon(done.set))
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()


_SHARED = AsyncioLoop()


def shared_loop() -> AsyncioLoop:
    """The process's one asyncio loop for clients (started on first use, a daemon thread that
    ends with the process)."""
    _SHARED.start()
    return _SHARED
