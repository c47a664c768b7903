"""A container as a ``Remote``: ``docker exec`` through the engine's API (docker-py in a thread),
files in and out through the exec's standard streams."""

from typing import TYPE_CHECKING, Any

import trio

from harness.remote.base import Remote, RemoteError

if TYPE_CHECKING:
    from docker.models.containers import Container


class ContainerRemote(Remote):
    """A running container of the engine."""

    def __init__(self, container: "Container") -> None:
        self.container = container
        self.name = container.name or container.short_id

    async def execute(
        self, argv: list[str], timeout: float = 30.0, stdin: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """An exec in the container; its input through the exec's attached socket."""
        from docker.errors import APIError

        def call() -> tuple[int, bytes, bytes]:
            client = self.container.client
            if client is None:
                raise RemoteError(f"{self.name}: the container has no engine client")
            api = client.api
            exec_id = api.exec_create(
                self.container.id, argv, stdin=bool(stdin), stdout=True, stderr=True
            )["Id"]
            if not stdin:
                out, err = api.exec_start(exec_id, demux=True)
            else:
                out, err = _with_input(api, exec_id, stdin)
            code = api.exec_inspect(exec_id).get("ExitCode")
            return (-1 if code is None else code), out or b"", err or b""

        with trio.move_on_after(timeout):
            try:
                return await trio.to_thread.run_sync(call, abandon_on_cancel=True)
            except APIError as exc:
                raise RemoteError(f"{self.name}: {exc.explanation or exc}") from None
        raise RemoteError(f"{self.name}: {argv[0]} did not end within {timeout:g} s")


def _with_input(api: Any, exec_id: str, data: bytes) -> tuple[bytes, bytes]:
    """Start an exec with its stdin attached, send ``data`` and close it, and read its output
    (the engine's multiplexed stream: an 8-byte header per frame, stream 1 stdout, 2 stderr)."""
    import socket
    import struct

    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)
    raw.sendall(data)
    raw.shutdown(socket.SHUT_WR)
    buffer = b""
    while chunk := raw.recv(65536):
        buffer += chunk
    raw.close()
    streams = {1: b"", 2: b""}
    while len(buffer) >= 8:
        kind, size = struct.unpack(">BxxxL", buffer[:8])
        streams[kind] = streams.get(kind, b"") + buffer[8 : 8 + size]
        buffer = buffer[8 + size :]
    return streams[1], streams[2]
