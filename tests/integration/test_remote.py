"""The remote-execution interface, one contract for its three forms: this host, a container
(``docker exec``) and a host over SSH (a container with openssh-server, logged into with a key
made for the test)."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from harness.remote.base import Ran, Remote, RemoteError
from harness.remote.container import ContainerRemote
from harness.remote.local import LocalRemote
from harness.remote.ssh import SshRemote, Target
from tests.integration.conftest import DOCKER
from tests.ssh_hosts import new_key, ssh_hosts


@contextlib.contextmanager
def _remote(form: str, tmp_path: Path) -> Iterator[tuple[Remote, str]]:
    """A Remote of ``form`` and a scratch directory on that machine."""
    if form == "local":
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        yield LocalRemote(), str(scratch)
        return
    with ssh_hosts(tmp_path) as hosts:
        host = hosts[0]
        if form == "container":
            yield ContainerRemote(host.container), "/tmp"  # type: ignore[arg-type]
        else:
            yield SshRemote(Target(host.address, "root"), host.key, known_hosts="off"), "/tmp"


FORMS = [
    "local",
    pytest.param("container", marks=DOCKER.marks),
    pytest.param("ssh", marks=DOCKER.marks),
]


@pytest.mark.parametrize("form", FORMS)
def test_every_form_keeps_the_contract(form: str, tmp_path: Path):
    async def main(remote: Remote, scratch: str) -> None:
        try:
            ran = await remote.run(["echo", "hi there"])
            assert (ran.code, ran.out) == (0, "hi there\n")
            ran = await remote.run(["sh", "-c", "echo oops >&2; exit 3"])
            assert (ran.code, ran.err) == (3, "oops\n")
            with pytest.raises(RemoteError, match="exited 3"):
                await remote.check(["sh", "-c", "exit 3"])
            data = bytes(range(256)) * 300
            await remote.write(f"{scratch}/blob", data, mode=0o600)
            assert await remote.read(f"{scratch}/blob") == data
            assert (await remote.check(["stat", "-c", "%a", f"{scratch}/blob"])).strip() == "600"
            assert await remote.run(["cat", "-"], stdin=b"in\n") == Ran(0, "in\n", "")
            log = f"{scratch}/sleeper.log"
            started = await remote.start(["sh", "-c", "echo started; exec sleep 60"], log)
            assert await remote.alive(started.pid)
            assert await remote.signal(started.pid, "STOP") and await remote.alive(started.pid)
            assert await remote.signal(started.pid, "CONT")
            with trio.fail_after(10):
                while b"started" not in await remote.read(log):
                    await trio.sleep(0.1)
            assert await remote.signal(started.pid, "KILL")
            with trio.fail_after(10):
                while await remote.alive(started.pid):
                    await trio.sleep(0.1)
            with pytest.raises(RemoteError, match="did not end within"):
                await remote.run(["sleep", "5"], timeout=0.5)
        finally:
            await remote.aclose()

    with _remote(form, tmp_path) as (remote, scratch):
        trio.run(main, remote, scratch)


@pytest.mark.parametrize("backend", [DOCKER])
def test_ssh_failures_are_one_line_naming_the_host(tmp_path: Path, backend):
    async def fails(remote: Remote) -> str:
        try:
            with pytest.raises(RemoteError) as caught:
                await remote.run(["true"])
        finally:
            await remote.aclose()
        return str(caught.value)

    with ssh_hosts(tmp_path) as hosts:
        host = hosts[0]
        other_key = new_key(tmp_path / "other") if (tmp_path / "other").mkdir() is None else None
        refused = trio.run(
            fails, SshRemote(Target(host.address, "root"), other_key, known_hosts="off")
        )
        assert refused.startswith(f"root@{host.address}: ssh failed:") and "\n" not in refused
        assert "denied" in refused.lower(), refused
        unknown = trio.run(fails, SshRemote(Target(host.address, "root"), host.key))
        assert "host key" in unknown.lower(), unknown
    gone = trio.run(fails, SshRemote(Target("192.0.2.1", "root"), connect_timeout=2))
    assert gone.startswith("root@192.0.2.1: ssh failed:"), gone


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("host", Target("host")),
        ("me@host", Target("host", "me")),
        ("me@10.0.0.7:2222", Target("10.0.0.7", "me", 2222)),
        ("[::1]:22", Target("::1", None, 22)),
    ],
)
def test_a_host_is_user_at_host_colon_port(text: str, target: Target):
    assert Target.parse(text) == target


@pytest.mark.parametrize("text", ["", "me@", "host:port", "host:70000", "a b"])
def test_a_malformed_host_is_refused_saying_what_it_should_be(text: str):
    with pytest.raises(ValueError, match=r"\[user@\]host\[:port\]|out of range"):
        Target.parse(text)
