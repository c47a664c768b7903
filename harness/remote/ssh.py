"""A host over SSH as a ``Remote``: the system's OpenSSH client, one multiplexed connection.

Why OpenSSH through ``trio.run_process`` rather than asyncssh or paramiko: every command is a
child process that trio awaits and kills on cancellation like any other (asyncssh is asyncio and
paramiko blocking, each needing a bridge), the user's own SSH setup — agent, ``~/.ssh/config``,
known hosts, jump hosts — applies unchanged, and ``ControlMaster`` makes each command after the
first a new channel on one authenticated connection (a few milliseconds), so a run's hundreds of
commands cost one login. ``BatchMode`` keeps it from ever asking a question: a missing key or an
unknown host fails at once with OpenSSH's own words. Faults need root (iptables, signals to the
nodes, mounts): a login as another user runs every command through ``sudo -n``, which must then
need no password.

Host keys (``known_hosts``): ``strict`` (the default) accepts only hosts already in the user's
known hosts file; ``accept-new`` records a host seen for the first time and refuses one whose
key changed (OpenSSH's own policy of that name); ``off`` checks nothing and must be asked for by
name (test containers made a moment ago).
"""

import argparse
import getpass
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio

from harness.remote.base import Remote, RemoteError
from harness.tools import require

KNOWN_HOSTS = ("strict", "accept-new", "off")
"""Host-key policies: OpenSSH's ``StrictHostKeyChecking`` yes, accept-new, and no (with the
known hosts file /dev/null)."""

_TARGET = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?P<host>[^:@\s]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class Target:
    """Where to log in: ``user@host:port`` (user and port optional)."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Target":
        """``[user@]host[:port]``; ValueError naming what is wrong."""
        match = _TARGET.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not [user@]host[:port]")
        port = match["port"]
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"{text!r}: port {port} is out of range")
        return cls(match["host"].strip("[]"), match["user"], int(port) if port else None)

    def __str__(self) -> str:
        at = f"{self.user}@{self.host}" if self.user else self.host
        return f"{at}:{self.port}" if self.port else at


class SshRemote(Remote):
    """A host reached with ``ssh``."""

    def __init__(
        self,
        target: Target,
        key: Path | None = None,
        known_hosts: str = "strict",
        connect_timeout: float = 10.0,
    ) -> None:
        if known_hosts not in KNOWN_HOSTS:
            raise ValueError(f"known hosts policy must be one of {', '.join(KNOWN_HOSTS)}")
        self.target = target
        self.name = str(target)
        self.sudo = (target.user or getpass.getuser()) != "root"
        """Whether commands run through ``sudo -n`` (the login is not root's)."""
        self._control = Path(tempfile.mkdtemp(prefix="walrus-ssh-"))
        options = {
            "BatchMode": "yes",
            "ConnectTimeout": str(int(connect_timeout)),
            "ControlMaster": "auto",
            "ControlPath": str(self._control / "%C"),
            "ControlPersist": "120",
            "ServerAliveInterval": "5",
            "ServerAliveCountMax": "3",
            "LogLevel": "ERROR",
        }
        if known_hosts == "strict":
            options["StrictHostKeyChecking"] = "yes"
        elif known_hosts == "accept-new":
            options["StrictHostKeyChecking"] = "accept-new"
        else:
            options |= {"StrictHostKeyChecking": "no", "UserKnownHostsFile": "/dev/null"}
        self._base = [require("ssh")]
        for key_, value in options.items():
            self._base += ["-o", f"{key_}={value}"]
        if key is not None:
            self._base += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        if target.port is not None:
            self._base += ["-p", str(target.port)]
        if target.user is not None:
            self._base += ["-l", target.user]

    def command(self, argv: list[str]) -> list[str]:
        """The local command line that runs ``argv`` on the host (as root: through ``sudo -n``
        when the login is another user's)."""
        remote = ["sudo", "-n", "--", *argv] if self.sudo else argv
        return [*self._base, self.target.host, "--", shlex.join(remote)]

    async def execute(
        self, argv: list[str], timeout: float = 30.0, stdin: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """``ssh host -- 'argv'`` (quoted for the remote shell). OpenSSH's own failures (exit
        255: refused, unreachable, key rejected) are RemoteError with its words."""
        command = self.command(argv)
        with trio.move_on_after(timeout) as scope:
            done = await trio.run_process(
                command, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
            )
        if scope.cancelled_caught:
            raise RemoteError(f"{self.name}: {argv[0]} did not end within {timeout:g} s")
        if done.returncode == 255:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise RemoteError(f"{self.name}: ssh failed: {said[-1] if said else 'exit 255'}")
        return done.returncode, done.stdout, done.stderr

    async def aclose(self) -> None:
        """End the shared connection (``ssh -O exit``) and remove its socket's directory."""
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await trio.run_process(
                [*self._base, "-O", "exit", self.target.host],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        for leftover in self._control.glob("*"):
            leftover.unlink(missing_ok=True)
        self._control.rmdir()


@dataclass(frozen=True)
class SshHosts:
    """The hosts of a run over SSH and how to log into them (as test.json keeps them)."""

    hosts: tuple[str, ...]
    """``[user@]host[:port]``, one per node."""
    key: str | None = None
    """The private key (None: the agent's)."""
    known_hosts: str = "strict"
    """One of ``KNOWN_HOSTS``."""

    def targets(self) -> list[Target]:
        """Each host parsed; ValueError naming a malformed one."""
        if not self.hosts:
            raise ValueError("--hosts names no host")
        return [Target.parse(h) for h in self.hosts]

    def remotes(self) -> list[SshRemote]:
        """A remote per host."""
        key = Path(self.key) if self.key else None
        if key is not None and not key.is_file():
            raise ValueError(f"--ssh-key {key}: no such file")
        return [SshRemote(t, key, self.known_hosts) for t in self.targets()]


def ssh_options(p: argparse.ArgumentParser, required: bool = True, what: str = "") -> None:
    """``--hosts``, ``--ssh-key`` and ``--known-hosts`` (``what``: a prefix for their help,
    saying when they apply)."""
    p.add_argument(
        "--hosts", required=required, help=f"{what}comma-separated [user@]host[:port], one per node"
    )
    p.add_argument("--ssh-key", help=f"{what}the private key to log in with (default: the agent's)")
    p.add_argument(
        "--known-hosts",
        choices=KNOWN_HOSTS,
        default="strict",
        help=f"{what}host keys: strict (only hosts already known; default), accept-new (record "
        "a new host, refuse a changed key), off (check nothing: throwaway test machines only)",
    )


def hosts_of(args: argparse.Namespace) -> SshHosts:
    """The hosts ``--hosts``, ``--ssh-key`` and ``--known-hosts`` name."""
    hosts = tuple(h.strip() for h in args.hosts.split(",") if h.strip())
    return SshHosts(hosts, args.ssh_key, args.known_hosts)
