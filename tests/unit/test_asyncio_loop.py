"""asyncio clients from trio (``harness.clients.loop``): results and exceptions come back, a trio
cancellation reaches the asyncio task, and many calls share the one loop."""

import asyncio

import pytest
import trio

from harness.clients.loop import AsyncioLoop


def test_a_coroutine_on_the_loop_returns_to_the_trio_task():
    async def main(loop: AsyncioLoop) -> list[int]:
        async def square(n: int) -> int:
            await asyncio.sleep(0.01)
            return n * n

        results: list[int] = []
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(lambda n=n: _append(results, loop.run(lambda: square(n))))
        return sorted(results)

    with AsyncioLoop() as loop:
        assert trio.run(main, loop) == sorted(n * n for n in range(20))


async def _append(results: list[int], call) -> None:
    results.append(await call)


def test_an_exception_on_the_loop_is_raised_in_trio():
    async def fails() -> None:
        raise ConnectionResetError("gone")

    async def main(loop: AsyncioLoop) -> None:
        await loop.run(fails)

    with AsyncioLoop() as loop, pytest.raises(ConnectionResetError, match="gone"):
        trio.run(main, loop)


def test_a_trio_timeout_cancels_the_asyncio_task():
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main(loop: AsyncioLoop) -> bool:
        with trio.move_on_after(0.1):
            await loop.run(slow)
        await trio.sleep(0.2)
        return cancelled.is_set()

    with AsyncioLoop() as loop:
        assert trio.run(main, loop) is True


def test_a_stopped_loop_refuses_calls():
    loop = AsyncioLoop()

    async def main() -> None:
        await loop.run(lambda: asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="not running"):
        trio.run(main)
