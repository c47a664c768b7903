"""The SSH backend against real SSH hosts (openssh-server containers of our base, logged into
with a key made for the test), used as a user's machines would be: NATS on three hosts under
partitions, kills and pauses, and every host as it was before once the run is over."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from tests.integration.conftest import DOCKER
from tests.integration.test_systems import needs_walrus_rs
from tests.ssh_hosts import SshHost, login_args, ssh_hosts


def _state(host: SshHost) -> str:
    """What of ours a host could hold: processes besides sshd, iptables rules, our files."""
    script = (
        "ps -eo args | grep -v -e '^sshd' -e '^ps ' -e '^sh -c' -e '^grep' -e '^COMMAND' "
        "-e '^/usr/sbin/sshd'; iptables -S; iptables -t mangle -S; ls -A /var/tmp; "
        "mount | grep -c fuse || true"
    )
    return host.container.exec_run(["sh", "-c", script]).output.decode()  # type: ignore[attr-defined]


def _args(hosts: list[SshHost], tmp_path: Path, nemesis: str, system: str = "nats") -> list[str]:
    return [
        "test",
        "--system",
        system,
        "--backend",
        "ssh",
        *login_args(hosts),
        "--nemesis",
        nemesis,
        "--time-limit",
        "15",
        "--nemesis-interval",
        "4",
        "--rate",
        "100",
        "--seed",
        "1",
        "--store",
        str(tmp_path / "runs"),
    ]


@pytest.mark.parametrize("backend", [DOCKER])
@pytest.mark.parametrize(
    ("system", "faults", "seed"),
    [
        ("nats", "partition,kill,pause", "1"),
        # the packet faults too (every fault planned in 18 s with seed 153)
        ("redis", "partition,kill,clock,loss,delay,duplicate", "153"),
        ("rabbitmq", "partition,kill,clock", "3"),
    ],
)
def test_a_packaged_server_on_three_ssh_hosts_reaches_a_verdict_and_leaves_nothing(
    tmp_path: Path, backend, system: str, faults: str, seed: str
):
    """The host's own server (checked, never installed), every fault it takes on hosts."""
    with ssh_hosts(tmp_path, count=3) as hosts:
        before = [_state(h) for h in hosts]
        argv = [*_args(hosts, tmp_path, faults, system), "--seed", seed]
        if len(faults.split(",")) > 3:
            argv += ["--time-limit", "18", "--nemesis-interval", "3"]
        status = main(argv)
        assert status in (0, 1)
        run = next((tmp_path / "runs" / system).glob("2*"))
        results = json.loads((run / "results.json").read_text())
        assert results["valid"] in (True, False), results
        history = (run / "history.jsonl").read_text()
        for fault in faults.split(","):
            assert f'"start-{fault}"' in history, f"no {fault} ran"
        assert all((run / "nodes" / str(n) / "node.log").stat().st_size > 0 for n in (1, 2, 3))
        test = json.loads((run / "test.json").read_text())
        assert test["backend"] == "ssh" and len(test["ssh"]["hosts"]) == 3
        assert [_state(h) for h in hosts] == before


@pytest.mark.parametrize("backend", [DOCKER])
def test_our_node_on_three_ssh_hosts_is_valid_under_every_fault_and_compat_is_not(
    tmp_path: Path, backend
):
    """A venv made on each host from this host's wheels, the sources beside it; every fault the
    backend runs, clock skew and power loss included; the hosts' clocks measured and the lease
    checker saying within what bound. Then the same hosts run the original design's
    (``--compat walrus``) and the checkers catch it."""
    with ssh_hosts(tmp_path, count=3) as hosts:
        before = [_state(h) for h in hosts]
        faults = "partition,kill,pause,clock,lose-unsynced"
        argv = [*_args(hosts, tmp_path, faults, "walrus-py"), "--seed", "3", "--time-limit", "25"]
        assert main(argv) == 0
        run = next((tmp_path / "runs" / "queue").glob("2*"))
        results = json.loads((run / "results.json").read_text())
        lease = results["checkers"]["lease"]
        assert lease["valid"] is True and lease["details"]["events_checked"] > 0
        assert 0 < lease["details"]["clock_bound_ns"] < 50_000_000
        assert "each host's CLOCK_MONOTONIC" in lease["details"]["clock"]
        assert results["checkers"]["storage"]["valid"] is True  # the audit SCANned every node
        clocks = json.loads((run / "clocks.json").read_text())["nodes"]
        assert sorted(clocks) == ["1", "2", "3"] and all(len(s) >= 5 for s in clocks.values())
        assert "Hosts' clocks:" in (run / "summary.md").read_text()
        history = (run / "history.jsonl").read_text()
        for fault in faults.split(","):  # seed 3 plans every one in 25 s
            assert f'"start-{fault}"' in history, f"no {fault} ran"
        assert '"names_undone"' in history  # losefs on the host undid something
        assert [_state(h) for h in hosts] == before
        compat = [
            *_args(hosts, tmp_path, "partition", "walrus-py"),
            *("--compat", "walrus", "--max-segment-entries", "10", "--rate", "150"),
            *("--nemesis-interval", "2"),
        ]
        statuses = []
        for seed in ("1", "2", "3"):  # each caught the bug alone in 2 of 3 tries (docs/hosts.md)
            statuses.append(main([*compat, "--seed", seed]))
            if statuses[-1] == 1:
                break
        assert statuses[-1] == 1, statuses
        last = max((tmp_path / "runs" / "compat-queue").glob("2*"))
        assert json.loads((last / "results.json").read_text())["valid"] is False
        assert [_state(h) for h in hosts] == before


@pytest.mark.parametrize("backend", [DOCKER])
def test_a_host_without_the_server_is_one_line_and_nothing_starts(tmp_path: Path, capsys, backend):
    with ssh_hosts(tmp_path, count=3) as hosts:
        gone = hosts[2].container.exec_run(["sh", "-c", "rm $(command -v nats-server)"])  # type: ignore[attr-defined]
        assert gone.exit_code == 0
        before = [_state(h) for h in hosts]
        assert main(_args(hosts, tmp_path, "partition")) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"walrus-harness: root@{hosts[2].address}: no nats-server (--system nats)"
        assert not (tmp_path / "runs").exists()
        assert [_state(h) for h in hosts] == before


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--backend", "ssh"], "--backend ssh needs --hosts"),
        (["--hosts", "root@h1"], "--hosts is for --backend ssh"),
        (["--backend", "ssh", "--hosts", "me@"], "is not [user@]host[:port]"),
        (
            ["--backend", "ssh", "--hosts", "h1", "--nemesis", "throttle"],
            "so far, not throttle",
        ),
        (
            ["--system", "external", "--addr", "h1:9091", "--backend", "ssh", "--hosts", "h1"],
            "--backend does not apply to --system external",
        ),
    ],
)
def test_bad_ssh_options_are_refused_in_one_line(extra: list[str], says: str, tmp_path, capsys):
    argv = ["test", "--system", "nats", "--store", str(tmp_path), *extra]
    if "--system" in extra:
        argv[1:3] = []
    assert main(argv) == 1
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("backend", [DOCKER])
def test_a_run_killed_mid_fault_leaves_hosts_that_hosts_clean_restores(tmp_path: Path, backend):
    """SIGKILL the harness while a partition holds: its nodes, rules and files stay on the hosts
    (nothing of the harness is left to remove them); ``hosts clean`` removes them all."""
    with ssh_hosts(tmp_path, count=3) as hosts:
        before = [_state(h) for h in hosts]
        args = _args(hosts, tmp_path, "partition")
        args[args.index("--time-limit") + 1] = "120"
        args[args.index("--nemesis-interval") + 1] = "2"
        program = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
        harness = subprocess.Popen(
            [sys.executable, "-c", program, *args],
            cwd=Path(__file__).parents[2],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not any(
                "-A WALRUS-HARNESS" in _state(h) for h in hosts
            ):
                assert harness.poll() is None, "the run ended before a partition held"
                time.sleep(0.2)
        finally:
            harness.kill()
            harness.wait()
        left = [_state(h) for h in hosts]
        assert any("-A WALRUS-HARNESS" in s for s in left)
        assert all("nats-server" in s and "walrus-harness" in s for s in left)
        assert main(["hosts", "clean", *login_args(hosts)]) == 0
        assert [_state(h) for h in hosts] == before
        assert main(["hosts", "clean", *login_args(hosts)]) == 0  # nothing left to do: still fine


@pytest.mark.parametrize("backend", [DOCKER])
def test_bench_compare_places_the_servers_on_the_hosts_and_cuts_the_leader_there(
    tmp_path: Path, backend
):
    """NATS on three SSH hosts, the driver here: a fixed rate, then the stream's leader cut off
    by iptables on the hosts; the hosts as they were after."""
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(
        "name: fixed-200\nproducersPerTopic: 2\nconsumerPerSubscription: 2\n"
        "producerRate: 200\nwarmupDurationSeconds: 1\ntestDurationSeconds: 2\n"
    )
    cut = tmp_path / "cut.yaml"
    cut.write_text(
        "name: cut-200\nproducersPerTopic: 2\nconsumerPerSubscription: 2\nproducerRate: 200\n"
        "nemesis: partition-leader\nnemesisAtSeconds: 2\nnemesisDownSeconds: 3\n"
        "warmupDurationSeconds: 1\ntestDurationSeconds: 8\n"
    )
    with ssh_hosts(tmp_path, count=3) as hosts:
        before = [_state(h) for h in hosts]
        out = tmp_path / "out"
        argv = ["bench", "compare", "--systems", "nats", "--workloads", f"{fixed},{cut}"]
        assert main([*argv, "--out", str(out), *login_args(hosts)]) == 0
        document = json.loads((out / "results.json").read_text())
        assert document["setup"]["hosts"] == [f"root@{h.address}" for h in hosts]
        rows = {(r["variant"], r["workload"]): r for r in document["results"]}
        assert set(rows) == {
            (v, w)
            for v in ("replicas=3 sync=none", "replicas=1 sync=none")
            for w in ("fixed-200", "cut-200")
        }, document["results"]
        for r in rows.values():
            assert "error" not in r, r
            assert r["publish_rate"] > 0 and r["e2e_latency_ms"]["p50"] is not None
        assert rows[("replicas=3 sync=none", "cut-200")]["isolated"] in {"1", "2", "3"}
        assert [_state(h) for h in hosts] == before


def test_bench_compare_on_hosts_refuses_a_system_it_does_not_place_there(capsys, tmp_path):
    argv = ["bench", "compare", "--systems", "redis", "--out", str(tmp_path / "out")]
    assert main([*argv, "--hosts", "root@h1,root@h2,root@h3"]) == 1
    assert "runs walrus-py, nats, rabbitmq, not redis" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@needs_walrus_rs
@pytest.mark.parametrize("backend", [DOCKER])
def test_the_original_walrus_built_here_runs_on_ssh_hosts(tmp_path: Path, backend):
    """Its binary copied to each host; partitions (UDP links: iptables drops them too) and
    kills there."""
    with ssh_hosts(tmp_path, count=3) as hosts:
        before = [_state(h) for h in hosts]
        args = [*_args(hosts, tmp_path, "partition,kill", "walrus-rs"), "--seed", "2"]
        assert main([*args, "--max-segment-entries", "10"]) in (0, 1)
        run = next((tmp_path / "runs" / "walrus-rs").glob("2*"))
        results = json.loads((run / "results.json").read_text())
        assert results["valid"] in (True, False), results
        history = (run / "history.jsonl").read_text()
        assert '"start-partition"' in history and '"start-kill"' in history
        assert [_state(h) for h in hosts] == before
