"""What a host must have for the harness to run nodes and faults there, and a check of it.

Each need is a shell test run on the host; a host that fails one is named with what it lacks and
what needs it, in one line, before anything is started anywhere. The checks only read: nothing
is installed or changed on a host (a package the system needs is the operator's to install).
"""

from dataclasses import dataclass

import trio

from harness.remote.base import Remote, RemoteError
from harness.tools import TOOLS


@dataclass(frozen=True)
class Need:
    """Something a host must have: a name, the shell test that proves it, and what needs it."""

    name: str
    test: str
    why: str


NEEDS = {
    n.name: n
    for n in (
        Need(
            "root",
            '[ "$(id -u)" = 0 ]',
            "faults act as root: log in as root, or as a user sudo lets run anything without a "
            "password",
        ),
        Need("sh", "command -v setsid >/dev/null", "nodes start in sessions of their own (setsid)"),
        Need("iptables", "command -v iptables >/dev/null", "partitions are iptables rules"),
        Need(
            "fuse",
            "[ -e /dev/fuse ] && command -v fusermount3 >/dev/null",
            "lose-unsynced mounts losefs",
        ),
        Need(
            "python3",
            "python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'",
            "the clock reader, losefs and our node run on Python >= 3.11",
        ),
        Need(
            "libfaketime",
            f"[ -e {TOOLS['libfaketime'].candidates[0]} ]",
            "clock skew of a server we do not build (Debian: libfaketime)",
        ),
        Need(
            "libnetfilter-queue",
            "ldconfig -p | grep -q libnetfilter_queue.so.1",
            "delay and reorder hand packets to our delayer (Debian: libnetfilter-queue1)",
        ),
        Need("nats-server", "command -v nats-server >/dev/null", "--system nats"),
        Need("redis-server", "command -v redis-server >/dev/null", "--system redis"),
        Need(
            "rabbitmq-server", "[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]", "--system rabbitmq"
        ),
    )
}
"""Every need a host can be checked for, by name."""

BASIC = ("root", "sh", "iptables", "python3")
"""What every run over SSH needs."""


@dataclass(frozen=True)
class HostReport:
    """One host: reachable or not (and why), and the needs it lacks."""

    host: str
    error: str | None
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        """Reachable and lacking nothing."""
        return self.error is None and not self.missing

    def line(self) -> str:
        """One line saying so."""
        if self.error is not None:
            return self.error
        if self.missing:
            lacks = "; ".join(f"no {n} ({NEEDS[n].why})" for n in self.missing)
            return f"{self.host}: {lacks}"
        return f"{self.host}: ready"


async def check_host(remote: Remote, needs: list[str]) -> HostReport:
    """Run each need's test on the host (one connection, one command per need)."""
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"unknown needs {', '.join(unknown)}; known: {', '.join(NEEDS)}")
    missing = []
    try:
        for name in needs:
            ran = await remote.run(["sh", "-c", NEEDS[name].test], timeout=30.0)
            if ran.code != 0:
                missing.append(name)
                if name == "root":
                    break  # every other test ran as someone else, or not at all (sudo refused)
    except RemoteError as exc:
        return HostReport(remote.name, str(exc), ())
    return HostReport(remote.name, None, tuple(missing))


async def check_hosts(remotes: list[Remote], needs: list[str]) -> list[HostReport]:
    """``check_host`` on every host at once."""
    reports: list[HostReport | None] = [None] * len(remotes)

    async def one(k: int) -> None:
        reports[k] = await check_host(remotes[k], needs)

    async with trio.open_nursery() as nursery:
        for k in range(len(remotes)):
            nursery.start_soon(one, k)
    return [r for r in reports if r is not None]
