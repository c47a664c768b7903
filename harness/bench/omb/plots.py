"""The figures of a comparison, drawn from its results.json and series.csv rows.

Four figures, as OMB's own charts and HdrHistogram's plots draw them:

- ``throughput.png``: messages published per second over time, one line per system and variant,
  for the phase each workload reports (the sustained rate found, the fixed rate);
- ``latency.png``: publish and end-to-end latency by percentile, on a log axis out to p99.99
  (the x axis is 1/(1 - percentile), so the tail gets the room);
- ``latency_vs_throughput.png``: p99 publish latency against the rate actually published, one
  curve per system from the rate-step workload (our node's also through the original's rates);
- ``summary.png``: the highest sustainable rate per system and variant, and p99 at the fixed
  rate; Kafka's published figures as grey reference lines, labelled as not measured here.

Driver-bound results are drawn hollow: they measure the driver, not the system.
"""

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from harness.bench.storage_plot import PUBLISHED

KAFKA_PUBLISHED = PUBLISHED["Kafka"]
"""Kafka's writes/s as Walrus's README publishes them (no fsync, fsync each): another machine,
a storage benchmark, not a broker measured here."""


def _key(entry: dict) -> str:
    return f"{entry['system']} {entry['variant']}"


def _colors(keys: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {k: cycle[i % len(cycle)] for i, k in enumerate(keys)}


def _ok(results: list[dict]) -> list[dict]:
    return [r for r in results if "error" not in r]


def _stepped(entry: dict) -> bool:
    """A point of a latency-throughput curve: a rate step, or a rate another system's step set."""
    return "step" in entry or "at_rate_of" in entry


def _throughput(results: list[dict], series: list[dict], colors: dict, path: Path) -> bool:
    shown = [r for r in _ok(results) if not _stepped(r)]
    workloads = sorted({r["workload"] for r in shown})
    if not workloads:
        return False
    fig, axes = plt.subplots(len(workloads), 1, figsize=(9, 3 * len(workloads)), squeeze=False)
    rows = defaultdict(list)
    for row in series:
        rows[(row["system"], row["variant"], row["workload"], row["phase"])].append(row)
    for ax, workload in zip(axes[:, 0], workloads, strict=True):
        for r in shown:
            if r["workload"] != workload:
                continue
            points = rows.get((r["system"], r["variant"], workload, r["phase"]), [])
            ax.plot(
                [int(p["second"]) for p in points],
                [int(p["published"]) for p in points],
                label=_key(r),
                color=colors[_key(r)],
                linestyle="--" if r["driver_bound"] else "-",
            )
            if len(r.get("fault_s") or ()) == 2:  # the nemesis's window, shaded
                ax.axvspan(*r["fault_s"], color=colors[_key(r)], alpha=0.08)
        ax.set_title(workload, fontsize=9)
        ax.set_ylabel("published / s")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("seconds into the phase (warm-up included)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _latency(results: list[dict], colors: dict, path: Path) -> bool:
    chosen = [r for r in _ok(results) if not _stepped(r) and r.get("publish_latency_quantiles")]
    workloads = sorted({r["workload"] for r in chosen})
    if not workloads:
        return False
    fig, axes = plt.subplots(len(workloads), 2, figsize=(11, 3.2 * len(workloads)), squeeze=False)
    for row, workload in zip(axes, workloads, strict=True):
        for ax, field, title in (
            (row[0], "publish_latency_quantiles", "publish latency"),
            (row[1], "e2e_latency_quantiles", "end-to-end latency"),
        ):
            for r in chosen:
                curve = [(p, ms) for p, ms in r.get(field) or [] if p < 100]
                if r["workload"] != workload or not curve:
                    continue
                ax.plot(
                    [1 / (1 - p / 100) for p, _ in curve],
                    [ms for _, ms in curve],
                    marker=".",
                    label=_key(r),
                    color=colors[_key(r)],
                    linestyle="--" if r["driver_bound"] else "-",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = [1, 2, 10, 100, 1000, 10000]
            ax.set_xticks(ticks, ["p0", "p50", "p90", "p99", "p99.9", "p99.99"])
            ax.set_title(f"{workload}: {title}", fontsize=9)
            ax.set_ylabel("ms")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _curve(results: list[dict], colors: dict, path: Path) -> bool:
    steps = [r for r in _ok(results) if _stepped(r)]
    if not steps:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    by_key = defaultdict(list)
    for r in steps:
        by_key[_key(r)].append(r)
    for key, entries in by_key.items():
        entries.sort(key=lambda r: r["target_rate"])
        ax.plot(
            [r["publish_rate"] for r in entries],
            [r["publish_latency_ms"]["p99"] for r in entries],
            marker="o",
            label=key,
            color=colors[key],
        )
    ax.set_xlabel("published / s")
    ax.set_ylabel("p99 publish latency (ms)")
    ax.set_yscale("log")
    ax.set_title(
        "latency against throughput (rate steps, 10 % to 100 % of each one's max;\n"
        "walrus-py also at walrus-rs's step rates)",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _summary(document: dict, colors: dict, path: Path) -> bool:
    results = _ok(document["results"])
    maxes = [r for r in results if "sustained" in r]
    fixed = [r for r in results if r.get("phase", "").startswith("fixed")]
    if not maxes and not fixed:
        return False
    fig, axes = plt.subplots(1, 2 if fixed else 1, figsize=(13 if fixed else 7, 5), squeeze=False)
    left, right = axes[0, 0], axes[0, -1]
    labels = []
    for i, r in enumerate(maxes):
        bar = left.bar(
            i,
            r["publish_rate"],
            color="none" if r["driver_bound"] else colors[_key(r)],
            edgecolor=colors[_key(r)],
        )
        left.bar_label(bar, [f"{r['publish_rate']:,.0f}"], fontsize=7, rotation=90, padding=2)
        labels.append(f"{_key(r)}\n{r['workload']}")
    modes = ("no fsync", "fsync each")
    for mode, value, style in zip(modes, KAFKA_PUBLISHED, (":", "--"), strict=True):
        left.axhline(value, color="grey", linestyle=style, linewidth=1)
        left.annotate(
            f"Kafka, {mode}: {value:,} (published, storage benchmark, another machine)",
            (0, value),
            xycoords=("axes fraction", "data"),
            xytext=(3, 2),
            textcoords="offset points",
            fontsize=6,
            color="grey",
        )
    left.set_yscale("log")
    left.set_xticks(range(len(labels)), labels, rotation=70, fontsize=6, ha="right")
    left.set_ylabel("highest sustainable publish rate (msg/s)")
    left.set_title("max sustainable rate (hollow: driver-bound)", fontsize=9)
    left.grid(axis="y", alpha=0.3, which="both")
    names = [f"{_key(r)}\n{r['workload']}" for r in fixed]
    for i, r in enumerate(fixed):
        for k, (q, shade) in enumerate((("p50", 0.45), ("p99", 0.75), ("p9999", 1.0))):
            value = (r["publish_latency_ms"] or {}).get(q)
            if value is not None:
                right.bar(
                    i + (k - 1) * 0.27,
                    value,
                    width=0.27,
                    color=colors[_key(r)],
                    alpha=shade,
                    label=q if i == 0 else None,
                )
    if fixed:
        right.set_yscale("log")
        right.set_xticks(range(len(names)), names, rotation=70, fontsize=6, ha="right")
        right.set_ylabel("publish latency (ms)")
        right.set_title("latency at the fixed rate: p50, p99, p99.99", fontsize=9)
        right.grid(axis="y", alpha=0.3, which="both")
        right.legend(fontsize=7)
    ceiling = document.get("driver_ceiling")
    fig.suptitle(f"bench compare: driver ceiling {ceiling:,.0f} msg/s", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_all(document: dict, series: list[dict], out: Path) -> list[str]:
    """Every figure the results allow, into ``out``; the file names written."""
    keys = list(dict.fromkeys(_key(r) for r in document["results"]))
    colors = _colors(keys)
    written = []
    for name, draw in (
        ("throughput.png", lambda p: _throughput(document["results"], series, colors, p)),
        ("latency.png", lambda p: _latency(document["results"], colors, p)),
        ("latency_vs_throughput.png", lambda p: _curve(document["results"], colors, p)),
        ("summary.png", lambda p: _summary(document, colors, p)),
    ):
        if draw(out / name):
            written.append(name)
    return written
