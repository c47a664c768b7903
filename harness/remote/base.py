"""What the backends need of a machine a node runs on: the remote-execution interface.

Jepsen drives its database nodes through one protocol (``jepsen.control``'s ``Remote``) with an
SSH form, a ``docker exec`` form and a ``kubectl exec`` form; ducktape does the same over SSH.
Here a ``Remote`` is one machine: run a command and get its status and output, write a file
there and read one back, start a long-lived process in a session of its own and know its PID,
signal that process's group, ask whether it still runs. Three forms: this host
(``harness.remote.local``), a container (``harness.remote.container``) and a host over SSH
(``harness.remote.ssh``). Paths are the machine's own; everything is async (trio).

A long-lived process is started the same way on every form, through the machine's ``sh``:
``setsid`` makes it the leader of a new session and process group (so a signal to the group
reaches whatever it starts, and nothing of it is tied to the connection that started it), its
output is appended to a log file on the machine, and ``$!`` is its PID, which is also its
group's id.
"""

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    """What a command run on a machine ended with: its exit status and its output."""

    code: int
    out: str
    err: str


class RemoteError(RuntimeError):
    """A machine could not be reached or did not do what was asked; the message names it."""


@dataclass(frozen=True)
class Started:
    """A long-lived process started on a machine: its PID (its process group's id too) and where
    its output goes."""

    pid: int
    log: str


class Remote(ABC):
    """One machine the harness runs commands on."""

    name: str
    """How messages name the machine (``local``, a container's name, ``user@host``)."""

    @abstractmethod
    async def execute(
        self, argv: list[str], timeout: float = 30.0, stdin: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """Run ``argv`` there, ``stdin`` on its standard input; its status, stdout and stderr
        as bytes. RemoteError if it does not end within ``timeout`` or the machine cannot be
        reached."""

    async def run(self, argv: list[str], timeout: float = 30.0, stdin: bytes = b"") -> Ran:
        """``execute``, its output as text."""
        code, out, err = await self.execute(argv, timeout, stdin)
        return Ran(code, out.decode(errors="replace"), err.decode(errors="replace"))

    async def check(self, argv: list[str], timeout: float = 30.0, stdin: bytes = b"") -> str:
        """``run``, and RemoteError with what it said unless it exited 0; its output."""
        ran = await self.run(argv, timeout, stdin)
        if ran.code != 0:
            said = (ran.err or ran.out).strip().splitlines()
            raise RemoteError(
                f"{self.name}: {shlex.join(argv)[:200]} exited {ran.code}"
                + (f": {said[-1]}" if said else "")
            )
        return ran.out

    async def write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` there (created or replaced whole, synced)."""
        tmp = f"{path}.partial"
        script = (
            f"cat > {shlex.quote(tmp)} && chmod {mode:o} {shlex.quote(tmp)} && "
            f"sync {shlex.quote(tmp)} && mv -f {shlex.quote(tmp)} {shlex.quote(path)}"
        )
        await self.check(["sh", "-c", script], timeout=120.0, stdin=data)

    async def read(self, path: str) -> bytes:
        """The bytes of ``path`` there; RemoteError if it cannot be read."""
        code, out, err = await self.execute(["cat", path], timeout=120.0)
        if code != 0:
            said = err.decode(errors="replace").strip()
            raise RemoteError(f"{self.name}: cannot read {path}: {said}")
        return out

    async def start(
        self, argv: list[str], log: str, env: dict[str, str] | None = None, cwd: str = "/"
    ) -> Started:
        """Start ``argv`` there in a session of its own, stdin from /dev/null, its output
        appended to ``log``; the PID (and process group id) it runs as."""
        assignments = [f"{k}={v}" for k, v in (env or {}).items()]
        command = shlex.join(["env", *assignments, *argv]) if assignments else shlex.join(argv)
        script = (
            f"cd {shlex.quote(cwd)} && "
            f"setsid {command} >> {shlex.quote(log)} 2>&1 < /dev/null & echo $!"
        )
        out = await self.check(["sh", "-c", script], timeout=30.0)
        try:
            return Started(int(out.strip().splitlines()[-1]), log)
        except (ValueError, IndexError):
            raise RemoteError(f"{self.name}: starting {argv[0]} printed no PID: {out!r}") from None

    async def signal(self, pid: int, signal: str) -> bool:
        """Send ``signal`` (a name: ``KILL``, ``STOP``...) to the process group ``pid`` leads;
        False if no process of it is left (one that died and is not yet reaped still counts:
        ``alive`` tells)."""
        ran = await self.run(["kill", f"-{signal}", "--", f"-{pid}"], timeout=30.0)
        return ran.code == 0

    async def alive(self, pid: int) -> bool:
        """True while process ``pid`` runs (stopped counts) and is not a zombie."""
        ran = await self.run(["ps", "-o", "stat=", "-p", str(pid)], timeout=30.0)
        return ran.code == 0 and bool(ran.out.strip()) and not ran.out.strip().startswith("Z")

    async def aclose(self) -> None:
        """Let go of the connection to the machine, if it keeps one; no-op here."""
        return None
