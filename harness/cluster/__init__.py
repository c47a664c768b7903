"""Cluster backends behind one interface: local processes (default) and Docker containers."""

from pathlib import Path

import trio

from harness.cluster.base import Cluster, Grudge
from harness.cluster.docker import DockerCluster
from harness.cluster.external import ExternalCluster
from harness.cluster.local import LocalCluster
from harness.cluster.power import preflight as power_preflight
from harness.systems.base import Launched, Log, System, Unsupported
from harness.systems.external import External
from harness.tools import require
from nemesis.catalogue import POWER_LOSS
from nemesis.schedule import base_faults

BACKENDS = ("local", "docker")


def preflight(backend: str, base_image: str | None = None, faults: tuple[str, ...] = ()) -> None:
    """Raise, with the fix in one line, if ``backend`` cannot run here (with these faults);
    makes nothing."""
    bases = base_faults(faults)
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


def make_cluster(
    backend: str,
    root: Path,
    nodes: int,
    system: System,
    nursery: trio.Nursery,
    base_image: str | None = None,
    log: Log = print,
    power_loss: bool = False,
) -> Cluster:
    """A cluster of ``nodes`` nodes of ``system`` on ``backend``, its data under ``root`` (not
    started); ``power_loss``: each node's data seen through losefs."""
    if isinstance(system, External):
        return ExternalCluster(root, system)
    assert isinstance(system, Launched)  # every system but External is launched
    if backend == "local":
        return LocalCluster(root, nodes, system, nursery, power_loss)
    if backend == "docker":
        return DockerCluster(root, nodes, system, base_image, log, power_loss)
    raise ValueError(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "Cluster",
    "DockerCluster",
    "Grudge",
    "LocalCluster",
    "make_cluster",
    "preflight",
]
