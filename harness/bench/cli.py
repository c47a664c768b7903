"""``walrus-harness bench``: the benchmarks' commands, each with its options and its table.

Each command is a pair: a function adding its options to its parser, and one running it. The
options every benchmark shares are defined once (``_json_option``, ``_duration_option``); what a
command prints and writes is its own.
"""

import argparse
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.remote.ssh import hosts_of, ssh_options

DEFAULT_COMPARE = "walrus-py,redis,nats"
"""The systems ``bench compare`` runs when none are named."""


def _write_json(path: str | None, result: dict) -> None:
    """Write a benchmark's result as JSON to ``path``, if one was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")


def _json_option(p: argparse.ArgumentParser, what: str = "the results") -> None:
    p.add_argument("--json", help=f"write {what} as JSON here")


def _duration_option(p: argparse.ArgumentParser, default: float, per: str) -> None:
    p.add_argument(
        "--duration",
        type=float,
        default=default,
        help=f"seconds per {per} (default {default:g})",
    )


# --- the commands ------------------------------------------------------------------------


def _storage(args: argparse.Namespace) -> int:
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
    _write_json(args.json, result)
    if args.plot:
        from harness.bench.storage_plot import plot

        plot(result, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _cluster(args: argparse.Namespace) -> int:
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
    _write_json(args.json, result)
    return 0


def _metadata(args: argparse.Namespace) -> int:
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
    _write_json(args.json, result)
    return 0


def _compare(args: argparse.Namespace) -> int:
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
    hosts = hosts_of(args) if args.hosts else None
    if hosts is not None:
        compare.hosted_variants(systems, hosts)  # refuses what does not run on hosts
    order = ", ".join(compare.measure_order(systems))
    where = f" on {', '.join(hosts.hosts)}" if hosts else ""
    print(f"bench compare: {order}{where}; workloads {', '.join(w.name for w in loads)}")
    result = compare.run(systems, loads, Path(args.out), src, hosts=hosts)
    print(f"wrote {Path(args.out) / 'results.json'}, series.csv, {', '.join(result['plots'])}")
    return 0


def _serve(args: argparse.Namespace) -> int:
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
    _write_json(args.json, r)
    return 0


def _checker(args: argparse.Namespace) -> int:
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
    _write_json(args.json, r)
    return 0


def _plot_storage(args: argparse.Namespace) -> int:
    from harness.bench.storage_plot import plot

    result = json.loads(Path(args.json).read_text())
    plot(result, Path(args.plot))
    print(f"wrote {args.plot}")
    return 0


# --- their options -----------------------------------------------------------------------


def _storage_options(p: argparse.ArgumentParser) -> None:
    _duration_option(p, 5.0, "case")
    _json_option(p)
    p.add_argument("--plot", help="write the bar chart (PNG) here")
    p.add_argument("--systems", help="comma-separated subset of the systems")
    p.add_argument("--modes", help="comma-separated subset of none,each,1000ms")
    p.add_argument("--dir", help="where the data files go (default: the temp directory)")
    p.add_argument("--seed", type=int, default=1, help="payload generator seed")
    p.add_argument("--no-crc", action="store_true", help="skip the CRC32C throughput table")


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, default=3, help="cluster size (3)")
    p.add_argument("--clients", type=int, default=64, help="client connections (default 64)")
    p.add_argument("--window", type=int, default=4, help="requests in flight per client (4)")
    _duration_option(p, 10.0, "phase")
    p.add_argument("--fsync", default="each,none", help="policies to run (default each,none)")
    p.add_argument(
        "--security",
        default="secure",
        help="secure (with the cluster secret; default), insecure, or secure,insecure",
    )
    p.add_argument(
        "--replicas",
        default="3",
        help="copies of each segment to run, e.g. 1,3 (default 3: the node's on 3 nodes)",
    )
    _json_option(p)


def _metadata_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    _duration_option(p, 10.0, "load")
    p.add_argument("--fsync", default="each", help="the nodes' fsync policy (default each)")
    _json_option(p)


def _compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--systems",
        default=DEFAULT_COMPARE,
        help="comma-separated: walrus-py, walrus-rs, redis, nats, rabbitmq (default "
        "walrus-py,redis,nats, plus walrus-rs when a Walrus tree is given)",
    )
    p.add_argument(
        "--workloads",
        help="comma-separated workload files, or 'all' (default: max rate, fixed rate and rate "
        "steps from harness/bench/workloads)",
    )
    p.add_argument("--walrus-src", help="a Walrus source tree (default $WALRUS_RS_SRC)")
    p.add_argument("--quick", action="store_true", help="every workload short (a check)")
    p.add_argument("--out", required=True, help="where results.json, series.csv, plots go")
    ssh_options(p, required=False, what="the systems' nodes on these hosts over SSH, one each: ")


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ops", type=int, default=100_000, help="operations (default 100,000)")
    p.add_argument("--store", default="/tmp/walrus-bench-serve", help="where the run is made")
    p.add_argument("--loads", type=int, default=5, help="loads of each page")
    _json_option(p, "the measurements")


def _checker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ops", type=int, default=1_000_000, help="operations (default 1,000,000)")
    p.add_argument("--history", help="use (or create) this history file")
    _json_option(p, "the measurements")


def _plot_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("json", help="a result written by bench storage --json")
    p.add_argument("plot", help="the PNG to write")


Options = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


class ExtraMissing(RuntimeError):
    """A benchmark needs a package of the ``bench`` extra that is not installed."""


@dataclass(frozen=True)
class Benchmark:
    """One ``bench`` subcommand: its name, help line, options, what runs it, and the modules of
    the ``bench`` extra it needs (checked before it starts)."""

    name: str
    help: str
    options: Options
    run: Run
    needs: tuple[str, ...] = ()

    def __call__(self, args: argparse.Namespace) -> int:
        """Run it, or raise ExtraMissing naming what to install."""
        missing = [m for m in self.needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ExtraMissing(
                f"bench {self.name} needs the bench extra ({', '.join(missing)} missing): "
                "pip install 'walrus-verifier[bench]' (make install does)"
            )
        return self.run(args)


COMMANDS: tuple[Benchmark, ...] = (
    Benchmark(
        "storage",
        "Walrus's write benchmark: this engine against RocksDB, SQLite and a raw write",
        _storage_options,
        _storage,
        needs=("rocksdict",),
    ),
    Benchmark(
        "cluster", "a 3-node local cluster under pipelining clients", _cluster_options, _cluster
    ),
    Benchmark(
        "metadata",
        "metadata commits/s and forwarded PUT/s, with the cluster secret and without",
        _metadata_options,
        _metadata,
    ),
    Benchmark(
        "compare",
        "systems side by side on OMB-style workloads: throughput, p99, end-to-end latency",
        _compare_options,
        _compare,
        needs=("yaml", "hdrh", "redis"),
    ),
    Benchmark(
        "serve", "time a large run's page in a real browser (chromium)", _serve_options, _serve
    ),
    Benchmark("checker", "time the check of a large synthetic history", _checker_options, _checker),
    Benchmark(
        "plot-storage",
        "redraw the figure from a --json result",
        _plot_storage_options,
        _plot_storage,
    ),
)
"""Every ``bench`` subcommand."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and its subcommands to the CLI's subparsers ``sub``."""
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    for command in COMMANDS:
        p = bench.add_parser(command.name, help=command.help)
        command.options(p)
        p.set_defaults(run=command)
