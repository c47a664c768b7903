"""Cluster backends behind one interface: local processes (default), Docker containers, and hosts
over SSH."""

from pathlib import Path

import trio

from harness.cluster.base import Cluster, Grudge
from harness.cluster.docker import DockerCluster
from harness.cluster.external import ExternalCluster
from harness.cluster.local import LocalCluster
from harness.cluster.power import preflight as power_preflight
from harness.cluster.ssh import SshCluster
from harness.remote.needs import BASIC, check_hosts
from harness.remote.ssh import SshHosts
from harness.systems.base import Launched, Log, System, Unsupported
from harness.systems.external import External
from harness.tools import require
from nemesis.catalogue import POWER_LOSS
from nemesis.schedule import base_faults

BACKENDS = ("local", "docker", "ssh")

SSH_FAULTS = frozenset(
    {"partition", "kill", "pause", "clock", "delay", "loss", "duplicate", "reorder"} | POWER_LOSS
)
"""The nemeses the SSH backend runs so far."""


def preflight(
    backend: str,
    base_image: str | None = None,
    faults: tuple[str, ...] = (),
    system: System | None = None,
    ssh: SshHosts | None = None,
) -> None:
    """Raise, with the fix in one line, if ``backend`` cannot run here (with these faults; on
    SSH hosts, every host reachable and holding what ``system`` needs there); makes nothing."""
    bases = base_faults(faults)
    if backend == "ssh":
        ssh_preflight(bases, system, ssh)
        return
    if bases & POWER_LOSS:
        power_preflight()
    if bases & {"delay", "reorder"} and backend == "docker":
        require("libnetfilter-queue")
    packets = sorted(bases & {"loss", "duplicate", "reorder"})
    if packets and backend != "docker":
        raise Unsupported(
            f"{', '.join(packets)} needs packets: it runs on the Docker backend (iptables, "
            "NFQUEUE); the local backend's TCP link proxies cannot lose, repeat or reorder them"
        )
    if backend == "docker":
        from harness.images import preflight as docker_preflight

        docker_preflight(base_image)
    elif backend not in ("local", "external"):
        raise ValueError(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")


def ssh_preflight(faults: set[str], system: System | None, ssh: SshHosts | None) -> None:
    """The SSH backend's checks: faults it runs, hosts given, each reachable and ready."""
    if ssh is None:
        raise ValueError("--backend ssh needs --hosts [user@]host[:port],... (one per node)")
    refused = sorted(faults - SSH_FAULTS)
    if refused:
        raise Unsupported(
            f"the ssh backend runs {', '.join(sorted(SSH_FAULTS))} so far, not {', '.join(refused)}"
        )
    if not isinstance(system, Launched):
        name = system.name if system is not None else "this system"
        raise Unsupported(f"{name} does not run on the ssh backend: its nodes run already")
    needs = [*BASIC, *system.host_needs, *(["fuse"] if faults & POWER_LOSS else [])]
    needs += ["libnetfilter-queue"] if faults & {"delay", "reorder"} else []
    needs = list(dict.fromkeys(needs))
    remotes = ssh.remotes()

    async def check() -> list[str]:
        try:
            reports = await check_hosts(list(remotes), needs)
        finally:
            for remote in remotes:
                await remote.aclose()
        return [r.line() for r in reports if not r.ready]

    problems = trio.run(check)
    if problems:
        raise Unsupported("; ".join(problems))


def make_cluster(
    backend: str,
    root: Path,
    nodes: int,
    system: System,
    nursery: trio.Nursery,
    base_image: str | None = None,
    log: Log = print,
    power_loss: bool = False,
    ssh: SshHosts | None = None,
    keep_data: bool = False,
) -> Cluster:
    """A cluster of ``nodes`` nodes of ``system`` on ``backend``, its data under ``root`` (not
    started); ``power_loss``: each node's data seen through losefs; ``ssh``: the hosts."""
    if isinstance(system, External):
        return ExternalCluster(root, system)
    assert isinstance(system, Launched)  # every system but External is launched
    if backend == "local":
        return LocalCluster(root, nodes, system, nursery, power_loss)
    if backend == "docker":
        return DockerCluster(root, nodes, system, base_image, log, power_loss)
    if backend == "ssh" and ssh is not None:
        hosts = [t.host for t in ssh.targets()]
        return SshCluster(root, system, ssh.remotes(), hosts, nursery, log, keep_data, power_loss)
    raise ValueError(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Cluster",
    "DockerCluster",
    "Grudge",
    "LocalCluster",
    "SshCluster",
    "make_cluster",
    "preflight",
]
