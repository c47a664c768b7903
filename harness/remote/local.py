"""This host as a ``Remote``: commands are child processes (``trio.run_process``)."""

import trio

from harness.remote.base import Remote, RemoteError


class LocalRemote(Remote):
    """The machine the harness runs on."""

    def __init__(self) -> None:
        self.name = "local"

    async def execute(
        self, argv: list[str], timeout: float = 30.0, stdin: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """A child process; killed if it outlives ``timeout``."""
        with trio.move_on_after(timeout) as scope:
            try:
                done = await trio.run_process(
                    argv, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
                )
            except OSError as exc:
                raise RemoteError(f"local: cannot run {argv[0]}: {exc.strerror}") from None
        if scope.cancelled_caught:
            raise RemoteError(f"local: {argv[0]} did not end within {timeout:g} s")
        return done.returncode, done.stdout, done.stderr
