"""``walrus-harness hosts check`` against real SSH hosts (openssh-server containers): what a host
has, what it lacks, and a host that cannot be reached — each one line naming the host."""

from pathlib import Path

import pytest

from harness.cli import main
from harness.remote.needs import NEEDS
from tests.integration.conftest import DOCKER
from tests.ssh_hosts import login_args, new_key, ssh_hosts


@pytest.mark.parametrize("backend", [DOCKER])
def test_hosts_check_names_each_host_and_what_it_lacks(tmp_path: Path, capsys, backend):
    with ssh_hosts(tmp_path, count=2) as hosts:
        args = ["hosts", "check", *login_args(hosts)]
        assert main([*args, "--needs", "fuse,python3"]) == 0
        ready = capsys.readouterr().out.splitlines()
        assert ready == [f"root@{h.address}: ready" for h in hosts]
        gone = hosts[0].container.exec_run(["sh", "-c", "rm $(command -v redis-server)"])  # type: ignore[attr-defined]
        assert gone.exit_code == 0
        assert main([*args, "--needs", "redis-server"]) == 1
        lacking = capsys.readouterr().out.splitlines()
        assert lacking[0] == f"root@{hosts[0].address}: no redis-server (--system redis)"
        assert lacking[-1] == "not ready"
        hosts[1].container.exec_run(["rm", "/usr/sbin/iptables"])  # type: ignore[attr-defined]
        assert main(args) == 1
        assert f"root@{hosts[1].address}: no iptables" in capsys.readouterr().out


@pytest.mark.parametrize("backend", [DOCKER])
def test_a_user_sudo_refuses_and_a_key_sshd_refuses_are_one_line_each(
    tmp_path: Path, capsys, backend
):
    with ssh_hosts(tmp_path, count=1) as hosts:
        guest = (
            "useradd -m guest && usermod -p '*' guest && mkdir -p /home/guest/.ssh && "
            "cp /root/.ssh/authorized_keys /home/guest/.ssh/ && chown -R guest /home/guest/.ssh"
        )
        made = hosts[0].container.exec_run(["sh", "-c", guest])  # type: ignore[attr-defined]
        assert made.exit_code == 0, made.output
        at = hosts[0].address
        common = ["hosts", "check", "--known-hosts", "off"]
        assert main([*common, "--hosts", f"guest@{at}", "--ssh-key", str(hosts[0].key)]) == 1
        assert capsys.readouterr().out.splitlines() == [
            f"guest@{at}: no root ({NEEDS['root'].why})",
            "not ready",
        ]
        other = new_key(tmp_path / "other")
        assert main([*common, "--hosts", f"root@{at}", "--ssh-key", str(other)]) == 1
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(f"root@{at}: ssh failed:") and "Permission denied" in out[0]


def test_a_host_that_cannot_be_reached_is_one_line_and_exit_1(capsys):
    assert main(["hosts", "check", "--hosts", "root@127.0.0.1:1", "--known-hosts", "off"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("root@127.0.0.1:1: ssh failed:") and out[-1] == "not ready"


@pytest.mark.parametrize(
    ("hosts", "says"),
    [("me@", "is not [user@]host[:port]"), (",", "names no host")],
)
def test_bad_hosts_are_refused_in_one_line(hosts: str, says: str, capsys):
    assert main(["hosts", "check", "--hosts", hosts]) == 1
    assert says in capsys.readouterr().err
