"""``walrus-harness``: the verifier's command line."""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness.mutants import MUTANTS


def _bench_storage(args: argparse.Namespace) -> int:
    from harness.bench import storage

    systems = tuple(args.systems.split(",")) if args.systems else storage.SYSTEMS
    modes = tuple(args.modes.split(",")) if args.modes else storage.MODES
    unknown = [s for s in systems if s not in storage.SYSTEMS] + [
        m for m in modes if m not in storage.MODES
    ]
    if unknown:
        raise ValueError(
            f"unknown system or mode {', '.join(unknown)}; systems: {', '.join(storage.SYSTEMS)}; "
            f"modes: {', '.join(storage.MODES)}"
        )
    if args.duration <= 0:
        raise ValueError("--duration must be positive")
    if "walrus-rust" in systems:
        from harness.systems.rust_build import BuildError
        from harness.tools import ToolMissing

        try:
            storage.walrus_rust_binary()
        except (BuildError, ToolMissing) as exc:
            if args.systems:
                raise
            print(f"walrus-rust: left out ({exc})")
            systems = tuple(s for s in systems if s != "walrus-rust")
    root = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    cases = storage.plan(systems, modes)
    print(f"storage benchmark: {len(cases)} cases x {args.duration:g} s, data under {root}")
    print(f"{'system':<16}{'fsync':<8}{'writers':>8}{'writes/s':>14}{'MB/s':>10}{'p99 us':>10}")
    runs = []
    for case in cases:
        row = storage.run_case(case, args.duration, root, seed=args.seed)
        runs.append(row)
        p99 = "-" if row["p99_us"] is None else f"{row['p99_us']:.0f}"
        print(
            f"{row['system']:<16}{row['fsync']:<8}{row['writers']:>8}"
            f"{row['writes_per_s']:>14,.0f}{row['mb_per_s']:>10.1f}{p99:>10}",
            flush=True,
        )
    crc = [] if args.no_crc else list(storage.crc_throughput())
    for c in crc:
        print(f"crc32c {c['impl']:<11}{c['size']:>10} B {c['gb_per_s']:>8.2f} GB/s")
    result = {"runs": runs, "crc32c": crc, "machine": storage.machine(root)}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        from harness.bench.storage_plot import plot

        plot(result, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _bench_cluster(args: argparse.Namespace) -> int:
    from harness.bench import cluster

    if args.nodes != 3:
        raise ValueError("the cluster benchmark runs 3 nodes (--nodes 3)")
    if args.clients < 1 or args.window < 1 or args.duration <= 0:
        raise ValueError("--clients, --window and --duration must be positive")
    modes = args.fsync.split(",")
    print(
        f"cluster benchmark: 3 nodes, {args.clients} clients x {args.window} in flight, "
        f"{args.duration:g} s per phase, fsync {', '.join(modes)}"
    )
    security = tuple(args.security.split(","))
    if not set(security) <= {"secure", "insecure"}:
        raise ValueError("--security takes secure, insecure or both (comma-separated)")
    replicas = tuple(int(r) for r in args.replicas.split(",") if r.isdigit())
    if not replicas or len(replicas) != len(args.replicas.split(",")):
        raise ValueError("--replicas takes copies per segment, comma-separated (e.g. 1,3)")
    result = cluster.run(
        modes, args.clients, args.window, args.duration, security=security, replicas=replicas
    )
    print(
        f"{'op':<5}{'fsync':<8}{'security':<10}{'replicas':>9}{'clients':>8}{'ops/s':>12}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    )
    for r in result["runs"]:
        print(
            f"{r['op']:<5}{r['fsync']:<8}{r['security']:<10}{r['replicas']:>9}{r['clients']:>8}"
            f"{r['ops_per_s']:>12,.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.1f}"
            f"{r['errors']:>8}"
        )
    for n in result["nodes"]:
        startup = ", ".join(f"{v:.2f}" for v in n["startup_s"].values())
        rss = ", ".join(f"{v:.0f}" for v in n["rss_mb"].values())
        print(
            f"fsync {n['fsync']}, {n['replicas']} replicas: node start-up {startup} s; RSS {rss} MB"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _test(args: argparse.Namespace) -> int:
    from harness.checker.verdict import EXIT_CODES, WORDS
    from harness.runner import relative, run_test

    config = _test_config(args, args.nemesis, args.seed)
    result = run_test(config, log=lambda m: print(f"walrus-harness: {m}", flush=True))
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
    doc = replay(run, args.times, lambda m: print(m, flush=True))
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
        doc = shrink(run, args.budget_runs, args.reruns, lambda m: print(m, flush=True))
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


def _serve(args: argparse.Namespace) -> int:
    from harness.serve.app import make_server

    store = Path(args.store)
    if not store.is_dir():
        raise ValueError(f"{store}: no such run store (run a test first, or pass --store DIR)")
    try:
        server = make_server(store, args.host, args.port, lambda m: None)
    except OSError as exc:
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    print(f"walrus-harness: serving {store} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("walrus-harness: stopped")
    finally:
        server.server_close()
    return 0


def _check(args: argparse.Namespace) -> int:
    from harness.checker.result import checker_results, found
    from harness.checker.suite import Evidence, check_run
    from harness.checker.verdict import EXIT_CODES, WORDS
    from harness.history import HistoryError
    from harness.node_events import read_nodes

    history_path = Path(args.history)
    if not history_path.is_file():
        raise ValueError(f"{history_path}: no such history file")
    events = read_nodes(Path(args.events)) if args.events else None
    audit = None
    audit_path = Path(args.audit) if args.audit else history_path.parent / "audit.json"
    if audit_path.exists():
        audit = {"states": json.loads(audit_path.read_text()).get("states", {})}
    try:
        evidence = Evidence.read(
            history_path,
            events=events,
            audit=audit,
            lease_s=args.lease_ms / 1000,
            black_box=True if args.black_box else None,
        )
        results = check_run(evidence)
    except HistoryError as exc:
        raise ValueError(f"{history_path}: {exc}") from None
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(WORDS[results["valid"]] + ("  (black box)" if results["black_box"] else ""))
    for name, r in checker_results(results).items():
        print(f"  {name:<8} {WORDS[r['valid']]:<8} {found(r)}")
    return EXIT_CODES[results["valid"]]


def _bench_metadata(args: argparse.Namespace) -> int:
    from harness.bench import metadata

    if args.clients < 1 or args.duration <= 0:
        raise ValueError("--clients and --duration must be positive")
    print(
        f"metadata benchmark: 3 nodes, {args.clients} clients, {args.duration:g} s per load, "
        "with the cluster secret and --insecure"
    )
    result = metadata.run(args.clients, args.duration, args.fsync)
    print(f"{'load':<18}{'security':<10}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in result["runs"]:
        print(
            f"{r['load']:<18}{r['security']:<10}{r['ops_per_s']:>10,.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>8}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _bench_compare(args: argparse.Namespace) -> int:
    import os

    from harness.bench.omb import compare, workload

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    src = args.walrus_src or os.environ.get("WALRUS_RS_SRC")
    if args.systems == DEFAULT_COMPARE and src:
        systems.insert(1, "walrus-rs")
    unknown = [s for s in systems if s not in compare.SYSTEMS]
    if unknown or not systems:
        raise ValueError(
            f"unknown system {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(compare.SYSTEMS)}"
        )
    if args.workloads in (None, "all"):
        paths = workload.standard(every=args.workloads == "all")
    else:
        paths = [Path(p) for p in args.workloads.split(",") if p.strip()]
    loads = [workload.load(p) for p in paths]
    if args.quick:
        loads = [w.quick() for w in loads]
    order = ", ".join(compare.measure_order(systems))
    print(f"bench compare: {order}; workloads {', '.join(w.name for w in loads)}")
    result = compare.run(systems, loads, Path(args.out), src, log=lambda m: print(m, flush=True))
    print(f"wrote {Path(args.out) / 'results.json'}, series.csv, {', '.join(result['plots'])}")
    return 0


DEFAULT_COMPARE = "walrus-py,redis,nats"


def _bench_serve(args: argparse.Namespace) -> int:
    from harness.bench import serve

    r = serve.run(args.ops, Path(args.store), args.loads)
    print(
        f"{r['operations']:,} operations ({r['anomalies_shown']} anomalies shown); made in "
        f"{r['generate_s']:.1f} s, checked in {r['check_s']:.1f} s, reports {r['reports_s']:.1f} s"
    )
    for page in ("index", "run", "timeline"):
        t = r[f"{page}_load_s"]
        print(
            f"{page} page: load event after {t['median']:.3f} s "
            f"(median of {args.loads}), max {t['max']:.3f} s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0


def _bench_checker(args: argparse.Namespace) -> int:
    from harness.bench import checker
    from harness.checker.verdict import WORDS

    if args.ops < 1:
        raise ValueError("--ops must be positive")
    r = checker.run(args.ops, Path(args.history) if args.history else None)
    gen = "" if r["generate_s"] is None else f" (generated in {r['generate_s']:.1f} s)"
    print(f"{r['operations']:,} operations, {r['file_mb']:.0f} MB{gen}")
    print(
        f"load {r['load_s']:.2f} s, queue {r['queue_s']:.2f} s, totals {r['totals_s']:.2f} s: "
        f"checked in {r['total_s']:.2f} s; queue {r['queue_valid']}, totals {r['totals_valid']}"
    )
    print(f"every checker, as `check` runs them: {r['check_s']:.2f} s ({WORDS[r['check_valid']]})")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
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
    return run_gate(Path(args.store), args.budget_s, args.backend)


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
        base, matrix, list(range(1, args.seeds + 1)), log=lambda m: print(m, flush=True)
    )
    print(f"campaign summary: {relative(directory / 'summary.md')}")
    return 0


def _plot_storage(args: argparse.Namespace) -> int:
    from harness.bench.storage_plot import plot

    result = json.loads(Path(args.json).read_text())
    plot(result, Path(args.plot))
    print(f"wrote {args.plot}")
    return 0


def add_backend_option(p: argparse.ArgumentParser) -> None:
    """``--backend local|docker``."""
    p.add_argument(
        "--backend",
        default="local",
        choices=["local", "docker"],
        help="where nodes run: local processes (default) or Docker containers",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of a test run, shared by ``test`` and ``campaign``."""
    add_backend_option(p)
    p.add_argument(
        "--base-image",
        help="docker backend: build the node image on this image "
        "(Python >= 3.11, iptables, iproute2) instead of a Debian root made here",
    )
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds of workload")
    p.add_argument("--concurrency", type=int, default=6, help="worker processes")
    p.add_argument("--topics", type=int, default=2)
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
        choices=["walrus-py", "walrus-rs", "external"],
        help="the implementation under test: walrus-py (this repository's node; default), "
        "walrus-rs (the original Walrus, built from --walrus-src) or external (a running "
        "cluster at --addr)",
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
        help="walrus-py: copies of each segment (the node's default: 3 on 3+ nodes, else 1)",
    )
    p.add_argument("--lease-ms", type=int, default=2000, help="nodes' lease duration")
    p.add_argument("--drift", type=float, default=0.1, help="nodes' drift bound")
    p.add_argument("--keep-data", action="store_true", help="keep the nodes' data directories")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``walrus-harness``."""
    from nemesis.aim import EVENTS
    from nemesis.faults import ALL, catalogue

    p = argparse.ArgumentParser(prog="walrus-harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    test = sub.add_parser("test", help="run one test: cluster, workload, faults, checks, reports")
    test.add_argument(
        "--nemesis",
        default="partition,kill",
        help=f"faults, comma-separated: {', '.join(catalogue())}; all "
        f"({', '.join(ALL)}); none. Aim one at an event as FAULT@EVENT "
        f"({', '.join(EVENTS)}), e.g. kill@seal",
    )
    test.add_argument("--seed", type=int, default=0)
    add_run_options(test)
    test.set_defaults(run=_test)

    campaign = sub.add_parser("campaign", help="a matrix of nemeses x seeds, summarised")
    campaign.add_argument(
        "--nemesis-matrix",
        default="partition;kill;pause;clock;partition,clock,kill",
        help="semicolon-separated nemesis specs, one row each",
    )
    campaign.add_argument("--seeds", type=int, default=5, help="seeds 1..N per row (default 5)")
    add_run_options(campaign)
    campaign.set_defaults(run=_campaign)

    check = sub.add_parser("check", help="check a history.jsonl from anywhere")
    check.add_argument("history", help="the history file")
    check.add_argument("--events", help="directory of <node>/events.jsonl (lease checks)")
    check.add_argument("--audit", help="audit.json with the final STATE of each topic")
    check.add_argument("--lease-ms", type=int, default=2000, help="the nodes' lease duration")
    check.add_argument(
        "--black-box",
        action="store_true",
        help="the history came from a black box (plain PUT/GET): checkers that need positions, "
        "node events or an audit do not apply (default: what the history's header says, else "
        "black-box when no acknowledged put has a position)",
    )
    check.add_argument("--out", help="write results.json here")
    check.set_defaults(run=_check)

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

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    st = bench.add_parser(
        "storage",
        help="Walrus's write benchmark: this engine against RocksDB, SQLite and a raw write",
    )
    st.add_argument("--duration", type=float, default=5.0, help="seconds per case (default 5)")
    st.add_argument("--json", help="write the results as JSON here")
    st.add_argument("--plot", help="write the bar chart (PNG) here")
    st.add_argument("--systems", help="comma-separated subset of the systems")
    st.add_argument("--modes", help="comma-separated subset of none,each,1000ms")
    st.add_argument("--dir", help="where the data files go (default: the temp directory)")
    st.add_argument("--seed", type=int, default=1, help="payload generator seed")
    st.add_argument("--no-crc", action="store_true", help="skip the CRC32C throughput table")
    st.set_defaults(run=_bench_storage)
    cl = bench.add_parser("cluster", help="a 3-node local cluster under pipelining clients")
    cl.add_argument("--nodes", type=int, default=3, help="cluster size (3)")
    cl.add_argument("--clients", type=int, default=64, help="client connections (default 64)")
    cl.add_argument("--window", type=int, default=4, help="requests in flight per client (4)")
    cl.add_argument("--duration", type=float, default=10.0, help="seconds per phase (default 10)")
    cl.add_argument("--fsync", default="each,none", help="policies to run (default each,none)")
    cl.add_argument(
        "--security",
        default="secure",
        help="secure (with the cluster secret; default), insecure, or secure,insecure",
    )
    cl.add_argument(
        "--replicas",
        default="3",
        help="copies of each segment to run, e.g. 1,3 (default 3: the node's on 3 nodes)",
    )
    cl.add_argument("--json", help="write the results as JSON here")
    cl.set_defaults(run=_bench_cluster)
    md = bench.add_parser(
        "metadata",
        help="metadata commits/s and forwarded PUT/s, with the cluster secret and without",
    )
    md.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    md.add_argument("--duration", type=float, default=10.0, help="seconds per load (default 10)")
    md.add_argument("--fsync", default="each", help="the nodes' fsync policy (default each)")
    md.add_argument("--json", help="write the results as JSON here")
    md.set_defaults(run=_bench_metadata)
    cmp_ = bench.add_parser(
        "compare",
        help="systems side by side on OMB-style workloads: throughput, p99, end-to-end latency",
    )
    cmp_.add_argument(
        "--systems",
        default=DEFAULT_COMPARE,
        help="comma-separated: walrus-py, walrus-rs, redis, nats (default walrus-py,redis,nats, "
        "plus walrus-rs when a Walrus tree is given)",
    )
    cmp_.add_argument(
        "--workloads",
        help="comma-separated workload files, or 'all' (default: max rate, fixed rate and rate "
        "steps from harness/bench/workloads)",
    )
    cmp_.add_argument("--walrus-src", help="a Walrus source tree (default $WALRUS_RS_SRC)")
    cmp_.add_argument("--quick", action="store_true", help="every workload short (a check)")
    cmp_.add_argument("--out", required=True, help="where results.json, series.csv, plots go")
    cmp_.set_defaults(run=_bench_compare)
    rp = sub.add_parser("replay", help="run a finished test again with its saved schedule")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="the run's directory")
    rp.add_argument("--times", type=int, default=1, help="how many times (default 1)")
    rp.set_defaults(run=_replay)
    sh = sub.add_parser("shrink", help="the smallest run that still fails as an invalid run did")
    sh.add_argument("run_dir", metavar="RUN_DIR", help="an invalid run's directory")
    sh.add_argument("--budget-runs", type=int, default=25, help="test runs to spend (25)")
    sh.add_argument("--reruns", type=int, default=3, help="runs per candidate; fails by majority")
    sh.set_defaults(run=_shrink)
    serve = sub.add_parser("serve", help="a results browser over the run store, in a web page")
    serve.add_argument("--store", default="results/runs", help="the run store (results/runs)")
    serve.add_argument("--port", type=int, default=8080, help="TCP port (8080; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.set_defaults(run=_serve)
    bs = bench.add_parser("serve", help="time a large run's page in a real browser (chromium)")
    bs.add_argument("--ops", type=int, default=100_000, help="operations (default 100,000)")
    bs.add_argument("--store", default="/tmp/walrus-bench-serve", help="where the run is made")
    bs.add_argument("--loads", type=int, default=5, help="loads of each page")
    bs.add_argument("--json", help="write the measurements as JSON here")
    bs.set_defaults(run=_bench_serve)
    ck = bench.add_parser("checker", help="time the check of a large synthetic history")
    ck.add_argument("--ops", type=int, default=1_000_000, help="operations (default 1,000,000)")
    ck.add_argument("--history", help="use (or create) this history file")
    ck.add_argument("--json", help="write the measurements as JSON here")
    ck.set_defaults(run=_bench_checker)
    replot = bench.add_parser("plot-storage", help="redraw the figure from a --json result")
    replot.add_argument("json")
    replot.add_argument("plot")
    replot.set_defaults(run=_plot_storage)
    return p


USER_ERRORS = (ValueError, OSError, RuntimeError)
"""What a user can cause and fix (bad options, a missing tool or engine, a failed build): one
line, exit status 1. Anything else is a bug: one line naming the file with its traceback."""


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as trio's nurseries raise them."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def report_error(exc: BaseException, prog: str = "walrus-harness") -> int:
    """Print one line for an exception that ended a command; its exit status."""
    leaves = _leaves(exc)
    if all(isinstance(e, KeyboardInterrupt) for e in leaves):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    user = [e for e in leaves if isinstance(e, USER_ERRORS)]
    if user and len(user) == len(leaves):
        print(f"{prog}: {user[0]}", file=sys.stderr)
        return 1
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix=f"{prog}-error-", suffix=".txt", delete=False
    ) as f:
        traceback.print_exception(exc, file=f)
    inner = next(e for e in leaves if not isinstance(e, USER_ERRORS))
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
