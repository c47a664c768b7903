"""``external``: a Walrus-protocol cluster that is already running, tested from outside.

The harness starts nothing: ``--addr HOST:PORT,...`` names each node's client address (node i is
the i-th), and the cluster is driven as a black box (plain PUT/GET; only ``ERR unknown topic`` is
taken as a definite failure, since the implementation is unknown). No faults by default; the user
may give a command per action, with ``{node}`` for the node's number — ``--kill-cmd`` with
``--start-cmd`` allow the ``kill`` nemesis, ``--pause-cmd`` with ``--resume-cmd`` the ``pause``
nemesis — for instance ``walrus cluster kill --data-dir D --node {node}`` for a ``walrus cluster
up``. The commands are split like a shell would, but not run by one. Whatever the harness broke is
mended when the test ends (killed nodes started, paused ones resumed).
"""

import shlex
from dataclasses import dataclass
from typing import ClassVar

from harness.clients.walrus import ANY_WALRUS, Plain
from harness.systems.base import (
    Log,
    Member,
    Nodes,
    System,
    Unsupported,
    all_ready,
    metrics_of,
)
from walrus.client import Client, WalrusError
from walrus.config import Address, ConfigError


def parse_addrs(text: str) -> tuple[str, ...]:
    """``HOST:PORT,HOST:PORT,...``, each checked."""
    addrs = tuple(a.strip() for a in text.split(",") if a.strip())
    if not addrs:
        raise ConfigError("--addr needs at least one HOST:PORT")
    for a in addrs:
        Address.parse(a, "--addr")
    return addrs


@dataclass(frozen=True)
class External(System):
    """A running cluster at ``addrs``, with optional per-node fault commands."""

    addrs: tuple[str, ...] = ()
    kill_cmd: str | None = None
    start_cmd: str | None = None
    pause_cmd: str | None = None
    resume_cmd: str | None = None

    name: ClassVar[str] = "external"
    faults: ClassVar[frozenset[str]] = frozenset({"kill", "pause"})

    @property
    def client(self) -> Plain:
        """Plain PUT/GET; only ``ERR unknown topic`` is definite."""
        return Plain(ANY_WALRUS)

    def describe(self) -> str:
        """external and its addresses."""
        return f"external ({', '.join(self.addrs)})"

    def members(self) -> dict[int, Member]:
        """Node i at the i-th address."""
        return {i: Member(i, Address.parse(a, "--addr")) for i, a in enumerate(self.addrs, 1)}

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """Faults need their commands; every address must answer METRICS."""
        super().preflight(backend, faults, nodes)
        needs = {"kill": ("kill_cmd", "start_cmd"), "pause": ("pause_cmd", "resume_cmd")}
        for fault in faults:
            missing = [f"--{n.replace('_', '-')}" for n in needs[fault] if not getattr(self, n)]
            if missing:
                raise Unsupported(f"the {fault} nemesis on an external cluster needs {missing}")
        for member in self.members().values():
            try:
                with Client(member.client.host, member.client.port, timeout=5) as c:
                    c.request(b"METRICS")
            except (WalrusError, OSError) as exc:
                raise Unsupported(
                    f"node {member.id} at {member.client} does not answer: {exc}"
                ) from None

    def command(self, action: str, node: int) -> list[str]:
        """The user's command for ``action`` on ``node``, split into arguments."""
        template = getattr(self, f"{action}_cmd")
        if not template:
            raise Unsupported(f"no --{action}-cmd given for the external cluster")
        return shlex.split(template.replace("{node}", str(node)))

    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """No clock control (true time is what it has already)."""
        if (offset, rate) != (0.0, 1.0):
            raise Unsupported("an external cluster's clocks cannot be skewed")
        return None

    def ready(self, member: Member) -> bool:
        """METRICS answers with a Raft leader known."""
        metrics = metrics_of(member)
        return metrics is not None and metrics.get("current_leader") is not None

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """Every node ready again (the drain then waits for the data)."""
        return await all_ready(cluster, timeout, log)

    def node_files(self) -> tuple[str, ...]:
        """None: its logs are the user's."""
        return ()
