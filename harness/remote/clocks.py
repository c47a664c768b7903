"""A host's clock measured against this one's, NTP-style, through a reader left running there.

The reader is a Python loop on the host that answers each line it is sent with its
CLOCK_MONOTONIC in ns; it runs for the whole run behind one SSH channel, so a round trip costs a
message each way on a connection already open (no process start inside it). A sample is the
shortest of several round trips: the host's reading minus the middle of the round trip is the
offset, true within half of it (``harness.history.host_clocks``).
"""

import subprocess
import time

import trio

from harness.history.host_clocks import Sample
from harness.remote.base import RemoteError

READER = (
    "import sys, time\n"
    "for _ in sys.stdin:\n"
    "    sys.stdout.write(f'{time.monotonic_ns()}\\n')\n"
    "    sys.stdout.flush()\n"
)
"""The reader's program (``python3 -c``)."""

ROUNDS = 8
"""Round trips per sample; the shortest is kept."""


class ClockProbe:
    """A clock reader running through ``command`` (a local command line that runs
    ``python3 -c READER``'s argv on the machine: ``SshRemote.command``)."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self._command = command
        self._process: trio.Process | None = None
        self._buffer = b""

    @staticmethod
    def argv() -> list[str]:
        """What the probe's command must run on the machine."""
        return ["python3", "-u", "-c", READER]

    async def open(self) -> None:
        """Start the reader; RemoteError if it cannot be."""
        try:
            self._process = await trio.lowlevel.open_process(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise RemoteError(f"{self.name}: cannot start the clock reader: {exc}") from None

    async def _reading(self) -> int:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        await process.stdin.send_all(b"\n")
        while b"\n" not in self._buffer:
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                raise RemoteError(f"{self.name}: the clock reader stopped")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return int(line)

    async def sample(self, rounds: int = ROUNDS, timeout: float = 10.0) -> Sample:
        """The shortest of ``rounds`` round trips; RemoteError if the host does not answer
        within ``timeout``."""
        best: Sample | None = None
        with trio.move_on_after(timeout) as scope:
            for _ in range(rounds):
                before = time.monotonic_ns()
                reading = await self._reading()
                after = time.monotonic_ns()
                middle = (before + after) // 2
                error = (after - before + 1) // 2
                if best is None or error < best.error_ns:
                    best = Sample(middle, reading - middle, error)
        if scope.cancelled_caught or best is None:
            raise RemoteError(f"{self.name}: the clock reader did not answer within {timeout:g} s")
        return best

    async def aclose(self) -> None:
        """Stop the reader (its input closed: the loop ends; killed if it does not)."""
        process, self._process = self._process, None
        if process is None:
            return
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
