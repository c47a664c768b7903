"""``walrus-harness``: the verifier's command line."""

import argparse
import json
import sys
import tempfile
from pathlib import Path


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
    result = cluster.run(modes, args.clients, args.window, args.duration)
    print(
        f"{'op':<5}{'fsync':<8}{'clients':>8}{'ops/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}"
    )
    for r in result["runs"]:
        print(
            f"{r['op']:<5}{r['fsync']:<8}{r['clients']:>8}{r['ops_per_s']:>12,.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.1f}{r['errors']:>8}"
        )
    for n in result["nodes"]:
        startup = ", ".join(f"{v:.2f}" for v in n["startup_s"].values())
        rss = ", ".join(f"{v:.0f}" for v in n["rss_mb"].values())
        print(f"fsync {n['fsync']}: node start-up {startup} s; RSS {rss} MB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _plot_storage(args: argparse.Namespace) -> int:
    from harness.bench.storage_plot import plot

    result = json.loads(Path(args.json).read_text())
    plot(result, Path(args.plot))
    print(f"wrote {args.plot}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``walrus-harness``."""
    p = argparse.ArgumentParser(prog="walrus-harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
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
    cl.add_argument("--json", help="write the results as JSON here")
    cl.set_defaults(run=_bench_cluster)
    replot = bench.add_parser("plot-storage", help="redraw the figure from a --json result")
    replot.add_argument("json")
    replot.add_argument("plot")
    replot.set_defaults(run=_plot_storage)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"walrus-harness: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("walrus-harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
