"""``walrus-harness``: the verifier's command line."""

import argparse
import sys
import tempfile
from pathlib import Path

from harness.bench import cli as bench_cli
from harness.checker import cli as checker_cli
from harness.hosts import cli as hosts_cli
from harness.mutants import MUTANTS
from harness.raised import leaves
from harness.remote.ssh import hosts_of, ssh_options
from harness.serve import cli as serve_cli
from harness.systems import SYSTEMS


def _test(args: argparse.Namespace) -> int:
    from harness.checker.verdict import EXIT_CODES, WORDS
    from harness.runner import relative, run_test

    config = _test_config(args, args.nemesis, args.seed)
    result = run_test(config, log=lambda m: print(f"walrus-harness: {m}", flush=True))
    if result.results.get("started") is False:
        raise RuntimeError(f"{result.results['error']} (its logs: {relative(result.path)})")
    print(f"{WORDS[result.valid]}  {relative(result.path)}")
    if result.valid is False:
        print(
            f"  seed {config.seed}; to run it again: walrus-harness replay {relative(result.path)}"
        )
    if "error" in result.results:
        print(f"  {result.results['error']}")
    else:
        print(f"  see {relative(result.path / 'summary.md')}, plots and timeline.html there")
    return EXIT_CODES[result.valid]


def _replay(args: argparse.Namespace) -> int:
    from harness.replay import replay
    from harness.runner import relative

    run = Path(args.run_dir)
    doc = replay(run, args.times)
    kinds = ", ".join(f"{k} {n}" for k, n in doc["kinds_reproduced"].items())
    print(
        f"reproduced {doc['reproduced']} of {doc['times']} "
        f"(the same plan again; timing is not replayed){'; by kind: ' + kinds if kinds else ''}; "
        f"{relative(run / 'replay' / 'replay.json')}"
    )
    return 0


def _shrink(args: argparse.Namespace) -> int:
    from harness.runner import relative
    from harness.shrink import NotReproduced, shrink

    run = Path(args.run_dir)
    try:
        doc = shrink(run, args.budget_runs, args.reruns)
    except NotReproduced as exc:
        print(f"walrus-harness: {exc}", file=sys.stderr)
        return 2
    a, b = doc["original"], doc["minimal"]
    print(
        f"{doc['anomaly']}: {a['fault_steps']} fault steps, {a['operations']} operations, "
        f"{a['time_limit']:g} s -> {b['fault_steps']} steps, {b['operations']} operations, "
        f"{b['time_limit']:g} s in {doc['reruns']} runs"
    )
    print(f"  {doc['command']}\n  {relative(run / 'shrink' / 'shrink.json')}")
    return 0


def _docker_build(args: argparse.Namespace) -> int:
    from harness.images import engine, node_image

    client = engine()
    node, base = node_image(client, args.base_image, log=lambda m: print(m, flush=True))
    for built in (base, node):
        if built is None:
            continue
        how = "already built" if built.seconds is None else f"built in {built.seconds:.1f} s"
        print(f"{built.tag}: {built.size_mb:.0f} MB, {how}")
    return 0


def _docker_clean(args: argparse.Namespace) -> int:
    from harness.images import clean, engine

    clean(engine())
    return 0


def _gate(args: argparse.Namespace) -> int:
    from harness.gate import run_gate

    if args.budget_s < 60:
        raise ValueError("--budget-s must be at least 60")
    junit = Path(args.junit) if args.junit else None
    return run_gate(Path(args.store), args.budget_s, args.backend, junit=junit)


def _system(args: argparse.Namespace):
    """The system under test from ``--system`` and its options."""
    from harness.systems import NodeSpec, WalrusPy

    if args.system == "walrus-py":
        return WalrusPy(
            NodeSpec(
                compat=args.compat == "walrus",
                max_segment_entries=args.max_segment_entries,
                fsync=args.fsync,
                lease_ms=args.lease_ms,
                drift=args.drift,
                replicas=args.replicas,
                mutant=args.mutant,
            ),
            plain=args.black_box,
        )
    if args.compat or args.black_box or args.mutant:
        raise ValueError(
            f"--compat, --black-box and --mutant are walrus-py options; {args.system} is not"
        )
    if args.system == "walrus-rs":
        from harness.systems.walrus_rs import WalrusRs

        return WalrusRs(args.walrus_src, args.max_segment_entries, _walrus_env(args.walrus_env))
    if args.system == "nats":
        from harness.systems.nats import Nats

        return Nats(replicas=3 if args.replicas is None else args.replicas)
    if args.system == "rabbitmq":
        from harness.systems.rabbitmq import Rabbit

        return Rabbit(args.queue_type, args.partition_handling)
    if args.system == "redis":
        from harness.systems.redis import Redis

        return Redis(args.redis_wait, args.appendfsync)
    if args.system == "external":
        from harness.systems.external import External, parse_addrs

        if not args.addr:
            raise ValueError("--system external needs --addr HOST:PORT,... (one per node)")
        return External(
            parse_addrs(args.addr), args.kill_cmd, args.start_cmd, args.pause_cmd, args.resume_cmd
        )
    raise ValueError(f"unknown system {args.system!r}")


def _walrus_env(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``KEY=VALUE`` pairs for walrus-rs nodes (its WALRUS_* knobs and RUST_LOG only)."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not (key.startswith("WALRUS_") or key == "RUST_LOG"):
            raise ValueError(f"--walrus-env takes WALRUS_*=VALUE or RUST_LOG=VALUE, not {item!r}")
        out.append((key, value))
    return tuple(out)


def _test_config(args: argparse.Namespace, nemesis: str, seed: int):
    """A TestConfig from the options ``test`` and ``campaign`` share."""
    from harness.runner import TestConfig
    from harness.workload import WorkloadConfig
    from nemesis.schedule import fault_names

    fault_names(nemesis)  # fail fast on an unknown fault name
    if args.nodes < 1 or args.time_limit <= 0 or args.concurrency < 1 or args.topics < 1:
        raise ValueError("--nodes, --time-limit, --concurrency and --topics must be positive")
    if args.rate <= 0 or not 0 <= args.put_ratio <= 1:
        raise ValueError("--rate must be positive and --put-ratio within [0, 1]")
    system = _system(args)
    backend, nodes = args.backend, args.nodes
    if args.system == "external":
        if backend != "local":
            raise ValueError("--backend does not apply to --system external: its nodes run already")
        backend, nodes = "external", len(system.addrs)
    ssh = None
    if backend == "ssh":
        if not args.hosts:
            raise ValueError("--backend ssh needs --hosts [user@]host[:port],... (one per node)")
        ssh = hosts_of(args)
        nodes = len(ssh.targets())
    elif args.hosts:
        raise ValueError("--hosts is for --backend ssh")
    return TestConfig(
        name=args.name
        or ("compat-" if args.compat else "")
        + (f"{args.mutant}-" if args.mutant else "")
        + ("queue" if system.name == "walrus-py" else system.name),
        backend=backend,
        nodes=nodes,
        time_limit=args.time_limit,
        nemesis=nemesis,
        nemesis_interval=args.nemesis_interval,
        seed=seed,
        store=Path(args.store),
        workload=WorkloadConfig(
            args.concurrency, args.topics, args.rate, args.put_ratio, args.op_timeout, seed
        ),
        system=system,
        keep_data=args.keep_data,
        base_image=args.base_image,
        ssh=ssh,
    )


def _campaign(args: argparse.Namespace) -> int:
    from harness.campaign import run_campaign
    from harness.runner import relative

    matrix = [m.strip() for m in args.nemesis_matrix.split(";") if m.strip()]
    if not matrix or args.seeds < 1:
        raise ValueError("--nemesis-matrix needs at least one entry and --seeds at least 1")
    for nemesis in matrix:
        _test_config(args, nemesis, 1)
    base = _test_config(args, matrix[0], 1)
    directory = run_campaign(
        base,
        matrix,
        list(range(1, args.seeds + 1)),
        junit=Path(args.junit) if args.junit else None,
    )
    print(f"campaign summary: {relative(directory / 'summary.md')}")
    return 0


def _junit_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--junit",
        metavar="FILE",
        help="also write JUnit XML here: a test case per run, with its replay command",
    )


def add_backend_option(p: argparse.ArgumentParser) -> None:
    """``--backend local|docker``."""
    p.add_argument(
        "--backend",
        default="local",
        choices=["local", "docker", "ssh"],
        help="where nodes run: local processes (default), Docker containers, or hosts over SSH "
        "(--hosts)",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of a test run, shared by ``test`` and ``campaign``."""
    add_backend_option(p)
    p.add_argument(
        "--base-image",
        help="docker backend: build the node image on this image "
        "(Python >= 3.11, iptables, iproute2) instead of a Debian root made here",
    )
    p.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    ssh_options(p, required=False, what="ssh backend: ")
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds of workload")
    p.add_argument("--concurrency", type=int, default=6, help="worker processes")
    p.add_argument("--topics", type=int, default=2, help="topics the workers share (default 2)")
    p.add_argument("--rate", type=float, default=200.0, help="target operations/s, all workers")
    p.add_argument("--put-ratio", type=float, default=0.5, help="share of puts (rest gets)")
    p.add_argument(
        "--op-timeout",
        type=float,
        default=10.0,
        help="seconds before an op is info (default 10: above the nodes' 5 s forward timeout)",
    )
    p.add_argument(
        "--nemesis-interval",
        type=float,
        default=10.0,
        help="seconds between fault changes (default 10)",
    )
    p.add_argument("--store", default="results/runs", help="where run directories go")
    p.add_argument("--name", help="test name (default queue, or compat-queue)")
    p.add_argument(
        "--system",
        default="walrus-py",
        choices=list(SYSTEMS),
        help="the implementation under test: walrus-py (this repository's node; default), "
        "walrus-rs (the original Walrus, built from --walrus-src), external (a running "
        "cluster at --addr), nats (NATS JetStream, Debian's nats-server), rabbitmq "
        "(Debian's rabbitmq-server) or redis (Redis Streams with Sentinel, Debian's redis-server)",
    )
    p.add_argument("--addr", help="external: the nodes' client addresses, HOST:PORT,...")
    for action, what in (
        ("kill", "SIGKILL a node"),
        ("start", "start a killed node"),
        ("pause", "pause a node"),
        ("resume", "resume a paused node"),
    ):
        p.add_argument(
            f"--{action}-cmd",
            metavar="CMD",
            help=f"external: the command that does {what}, {{node}} standing for its number",
        )
    p.add_argument(
        "--walrus-src",
        help="walrus-rs: a Walrus source tree (checkout or export; default $WALRUS_RS_SRC)",
    )
    p.add_argument(
        "--walrus-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="walrus-rs: an environment knob for every node, e.g. WALRUS_MONITOR_CHECK_MS=1000 "
        "(repeat)",
    )
    p.add_argument(
        "--black-box",
        action="store_true",
        help="walrus-py: drive the node with plain PUT/GET only, as any foreign Walrus",
    )
    p.add_argument("--compat", choices=["walrus"], help="run the nodes in Walrus 0.3 mode")
    p.add_argument(
        "--mutant",
        choices=sorted(MUTANTS),
        help="walrus-py, local: run the nodes with this planted bug (harness/mutants.py), to "
        "see a fault or checker catch it",
    )
    p.add_argument("--max-segment-entries", type=int, help="nodes' rollover size")
    p.add_argument("--fsync", default="each", help="nodes' fsync policy")
    p.add_argument(
        "--replicas",
        type=int,
        help="walrus-py: copies of each segment (the node's default: 3 on 3+ nodes, else 1); "
        "nats: copies of each stream (default 3)",
    )
    p.add_argument(
        "--queue-type",
        choices=["quorum", "mirrored"],
        default="quorum",
        help="rabbitmq: quorum queues (Raft) or classic queues mirrored on every node (default "
        "quorum)",
    )
    p.add_argument(
        "--partition-handling",
        choices=["pause_minority", "autoheal", "ignore"],
        default="pause_minority",
        help="rabbitmq: cluster_partition_handling (default pause_minority)",
    )
    p.add_argument(
        "--redis-wait",
        type=int,
        default=0,
        metavar="N",
        help="redis: follow each XADD with WAIT N; acknowledged only if N replicas confirm "
        "(default 0: no WAIT)",
    )
    p.add_argument(
        "--appendfsync",
        choices=["always", "everysec", "no"],
        default="everysec",
        help="redis: the append-only file's fsync policy (default everysec, as Redis ships)",
    )
    p.add_argument("--lease-ms", type=int, default=2000, help="nodes' lease duration")
    p.add_argument("--drift", type=float, default=0.1, help="nodes' drift bound")
    p.add_argument("--keep-data", action="store_true", help="keep the nodes' data directories")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``walrus-harness``."""
    from nemesis.aim import EVENTS
    from nemesis.catalogue import ALL, FAULTS

    p = argparse.ArgumentParser(prog="walrus-harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    test = sub.add_parser("test", help="run one test: cluster, workload, faults, checks, reports")
    test.add_argument(
        "--nemesis",
        default="partition,kill",
        help=f"faults, comma-separated: {', '.join(FAULTS)}; all "
        f"({', '.join(ALL)}); none. Aim one at an event as FAULT@EVENT "
        f"({', '.join(EVENTS)}), e.g. kill@seal",
    )
    test.add_argument("--seed", type=int, default=0, help="seeds the faults and the workload (0)")
    add_run_options(test)
    test.set_defaults(run=_test)

    campaign = sub.add_parser("campaign", help="a matrix of nemeses x seeds, summarised")
    campaign.add_argument(
        "--nemesis-matrix",
        default="partition;kill;pause;clock;partition,clock,kill",
        help="semicolon-separated nemesis specs, one row each",
    )
    campaign.add_argument("--seeds", type=int, default=5, help="seeds 1..N per row (default 5)")
    _junit_option(campaign)
    add_run_options(campaign)
    campaign.set_defaults(run=_campaign)

    checker_cli.add_command(sub)

    gate = sub.add_parser(
        "gate",
        help="a short seeded check for CI: must be valid, and the compat control run invalid",
    )
    gate.add_argument("--store", default="results/runs", help="where run directories go")
    add_backend_option(gate)
    gate.add_argument(
        "--budget-s",
        type=float,
        default=300.0,
        help="seconds the whole gate may take (default 300)",
    )
    _junit_option(gate)
    gate.set_defaults(run=_gate)

    docker = sub.add_parser("docker", help="images and leftovers of the docker backend")
    dsub = docker.add_subparsers(dest="docker", required=True)
    build = dsub.add_parser("build", help="build (or find) the node image; print sizes and times")
    build.add_argument("--base-image", help="build on this image instead of a Debian root")
    build.set_defaults(run=_docker_build)
    dclean = dsub.add_parser(
        "clean", help="remove every container, network and image the harness made"
    )
    dclean.set_defaults(run=_docker_clean)

    bench_cli.add_commands(sub)
    hosts_cli.add_command(sub)
    rp = sub.add_parser("replay", help="run a finished test again with its saved schedule")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="the run's directory")
    rp.add_argument("--times", type=int, default=1, help="how many times (default 1)")
    rp.set_defaults(run=_replay)
    sh = sub.add_parser("shrink", help="the smallest run that still fails as an invalid run did")
    sh.add_argument("run_dir", metavar="RUN_DIR", help="an invalid run's directory")
    sh.add_argument("--budget-runs", type=int, default=25, help="test runs to spend (25)")
    sh.add_argument("--reruns", type=int, default=3, help="runs per candidate; fails by majority")
    sh.set_defaults(run=_shrink)
    serve_cli.add_command(sub)
    return p


USER_ERRORS = (ValueError, OSError, RuntimeError)
"""What a user can cause and fix (bad options, a missing tool or engine, a failed build): one
line, exit status 1. Anything else is a bug: one line naming the file with its traceback."""


def report_error(exc: BaseException, prog: str = "walrus-harness") -> int:
    """Print one line for an exception that ended a command; its exit status."""
    found = leaves(exc)
    if all(isinstance(e, KeyboardInterrupt) for e in found):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    user = [e for e in found if isinstance(e, USER_ERRORS)]
    if user and len(user) == len(found):
        print(f"{prog}: {user[0]}", file=sys.stderr)
        return 1
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix=f"{prog}-error-", suffix=".txt", delete=False
    ) as f:
        traceback.print_exception(exc, file=f)
    inner = next(e for e in found if not isinstance(e, USER_ERRORS))
    print(
        f"{prog}: internal error {type(inner).__name__}: {inner} (traceback in {f.name})",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BaseException as exc:  # every path ends in one line (report_error)
        if isinstance(exc, SystemExit):
            raise
        return report_error(exc)


if __name__ == "__main__":
    sys.exit(main())
