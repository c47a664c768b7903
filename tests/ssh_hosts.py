"""Machines for the remote-execution tests: containers of our Debian base with openssh-server,
each with a key made for the test, reached as a user's hosts would be (``ssh root@IP``)."""

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

AUTHORIZED = "/root/.ssh/authorized_keys"
"""Where a host container's sshd finds the key that logs in as root."""

HOST_PACKAGES = (
    "openssh-server",
    "sudo",
    "fuse3",
    "nats-server",
    "redis-server",
    "rabbitmq-server",
    "libfaketime",
    "libnetfilter-queue1",
)
"""What an SSH host container has besides our base (python3, iptables, iproute2, procps)."""


@dataclass
class SshHost:
    """A running SSH host container: its address, the key that logs in, the container."""

    address: str
    key: Path
    container: object


def login_args(hosts: list[SshHost]) -> list[str]:
    """The options that log the harness into ``hosts`` as root with the test's key (their keys
    unchecked: made a moment ago)."""
    return [
        "--hosts",
        ",".join(f"root@{h.address}" for h in hosts),
        "--ssh-key",
        str(hosts[0].key),
        "--known-hosts",
        "off",
    ]


def new_key(directory: Path) -> Path:
    """An ed25519 key pair without a passphrase in ``directory``; the private key's path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@contextlib.contextmanager
def ssh_hosts(directory: Path, count: int = 1) -> Iterator[list[SshHost]]:
    """``count`` SSH host containers accepting a new key as root; removed on the way out."""
    from harness.images import LABEL, base_image, engine

    client = engine()
    image = base_image(client, lambda _: None, HOST_PACKAGES).tag  # quiet: tests read stdout
    key = new_key(directory)
    containers = []
    try:
        for _ in range(count):
            container = client.containers.run(
                image,
                ["sh", "-c", "mkdir -p /run/sshd && ssh-keygen -A && exec /usr/sbin/sshd -D -e"],
                detach=True,
                labels={LABEL: "test"},
                volumes={
                    str(key.with_suffix(".pub")): {
                        "bind": "/root/.ssh/authorized_keys",
                        "mode": "ro",
                    }
                },
                cap_add=["NET_ADMIN", "SYS_ADMIN"],
                devices=["/dev/fuse"],
            )
            containers.append(container)
        hosts = []
        for container in containers:
            container.reload()
            address = container.attrs["NetworkSettings"]["IPAddress"]
            _wait_for_sshd(address)
            hosts.append(SshHost(address, key, container))
        yield hosts
    finally:
        for container in containers:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def _wait_for_sshd(address: str, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, 22), timeout=1) as s:
            if s.recv(4).startswith(b"SSH-"):
                return
        time.sleep(0.2)
    raise RuntimeError(f"sshd at {address} did not answer within {timeout:g} s")
