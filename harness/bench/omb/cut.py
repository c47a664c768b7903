"""Cutting one node of a benchmarked system off from its peers, with nothing in the data path.

The test harness partitions local nodes through link proxies; a benchmark cannot afford them (a
proxy on every peer link would be measured with the system). Here every node process is put in
a cgroup (v2) of its own, and a partition is a handful of iptables rules in the OUTPUT chain —
where loopback traffic is matched to the process that sends it (``-m cgroup --path``):

- the isolated node sends nothing to its peers' peer ports, and nothing from its own;
- its peers send nothing to its peer ports.

Each direction of every peer link is then silent, while clients still reach every node (as in
Jepsen's partitions, which cut the cluster, not the clients). Healing deletes the rules. Needs
root, a cgroup v2 hierarchy and iptables with the cgroup match; ``unavailable()`` says which is
missing.
"""

import functools
import os
import shutil
import subprocess
from pathlib import Path

_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


def _cgroup2_root() -> Path | None:
    return next((r for r in _ROOTS if (r / "cgroup.controllers").exists()), None)


@functools.cache
def unavailable() -> str | None:
    """Why a partition cannot be made on this machine, or None if it can (asked once)."""
    if os.geteuid() != 0:
        return "a partition needs root (iptables rules and cgroups)"
    if _cgroup2_root() is None:
        return "a partition needs a cgroup v2 hierarchy (none is mounted)"
    if shutil.which("iptables") is None:
        return "a partition needs iptables (apt install iptables)"
    probe = subprocess.run(
        ["iptables", "-m", "cgroup", "--help"], capture_output=True, text=True, check=False
    )
    if "--path" not in probe.stdout:
        return "a partition needs iptables' cgroup match, which this kernel or iptables lacks"
    return None


class Cut:
    """The cgroups of one started system's nodes, and the rules of the partition in effect."""

    def __init__(self, tag: str) -> None:
        root = _cgroup2_root()
        if root is None:
            raise RuntimeError("no cgroup v2 hierarchy is mounted")
        self._root = root
        self._tag = tag
        self._rules: list[list[str]] = []

    def _path(self, node: str) -> str:
        return f"{self._tag}-{node}"

    def place(self, node: str, pid: int) -> None:
        """Put process ``pid`` (a node just started) in ``node``'s cgroup."""
        group = self._root / self._path(node)
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(str(pid))

    def isolate(self, node: str, peer_ports: dict[str, list[int]]) -> None:
        """Cut ``node`` off from every other node: ``peer_ports`` maps each node to the ports
        its peers reach it on."""
        own = peer_ports[node]
        drops = [(node, "--dport", p) for n, ps in peer_ports.items() if n != node for p in ps]
        drops += [(node, "--sport", p) for p in own]
        drops += [(n, "--dport", p) for n in peer_ports if n != node for p in own]
        for sender, direction, port in drops:
            rule = ["OUTPUT", "-p", "tcp", "-m", "cgroup", "--path", self._path(sender)]
            rule += [direction, str(port), "-j", "DROP"]
            subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
            self._rules.append(rule)

    def heal(self) -> None:
        """Delete every rule this cut made."""
        while self._rules:
            rule = self._rules.pop()
            subprocess.run(["iptables", "-D", *rule], check=False, capture_output=True)

    def remove(self) -> None:
        """Heal, and remove the cgroups (call once every node process has exited)."""
        self.heal()
        for group in self._root.glob(f"{self._tag}-*"):
            try:
                group.rmdir()
            except OSError:  # a process of the node is still in it: the group stays behind
                continue
