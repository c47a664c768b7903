"""The storage benchmark's figure: writes/s per system and fsync mode, plus CRC32C speed.

Walrus's and Kafka's published numbers (``docs/design.md`` §7, taken on their machine) are drawn as
hatched, labelled references beside our measurements, never mixed in with them.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Walrus README, writes/s: (no fsync, fsync each write).
PUBLISHED = {
    "Walrus (Rust)": (1_205_762, 4_980),
    "Kafka": (1_112_120, 4_921),
    "RocksDB": (432_821, 5_222),
}
_COLORS = {
    "walrus-py": "#1f77b4",
    "walrus-py-batch": "#17becf",
    "walrus-rust": "#ff7f0e",
    "rocksdb": "#d62728",
    "sqlite": "#9467bd",
    "raw-write": "#7f7f7f",
}


def _label(ax, bars, values) -> None:
    for bar, v in zip(bars, values, strict=True):
        text = f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
            rotation=90,
            xytext=(0, 2),
            textcoords="offset points",
        )


def _panel(ax, runs: list[dict], fsync: str, published_index: int | None, title: str) -> None:
    rows = [r for r in runs if r["fsync"] == fsync]
    writer_counts = sorted({r["writers"] for r in rows})
    systems = [s for s in _COLORS if any(r["system"] == s for r in rows)]
    width = 0.8 / max(1, len(writer_counts))
    for k, writers in enumerate(writer_counts):
        xs, values, colors = [], [], []
        for i, s in enumerate(systems):
            match = [r for r in rows if r["system"] == s and r["writers"] == writers]
            if match:
                xs.append(i + (k - (len(writer_counts) - 1) / 2) * width)
                values.append(match[0]["writes_per_s"])
                colors.append(_COLORS[s])
        bars = ax.bar(
            xs,
            values,
            width * 0.95,
            color=colors,
            alpha=1.0 if k else 0.75,
            edgecolor="black",
            linewidth=0.4,
            label=f"{writers} writer{'s' if writers > 1 else ''}",
        )
        _label(ax, bars, values)
    labels = list(systems)
    if published_index is not None:
        for j, (name, values) in enumerate(PUBLISHED.items()):
            x = len(systems) + j
            bar = ax.bar(
                [x],
                [values[published_index]],
                0.6,
                color="white",
                hatch="///",
                edgecolor="#444444",
                linewidth=0.6,
            )
            _label(ax, bar, [values[published_index]])
            labels.append(f"{name}\n(published)")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top * 4)  # room for the value labels
    ax.set_ylabel("writes/s (log)")
    ax.set_title(title, fontsize=10)
    if len(writer_counts) > 1:
        ax.legend(fontsize=7, loc="upper right")


def plot(result: dict, path: Path) -> None:
    """Write the benchmark figure for a result as ``bench storage --json`` produces it."""
    runs = result["runs"]
    fig, axes = plt.subplots(1, 4, figsize=(19, 5.2), gridspec_kw={"width_ratios": [3, 3, 2, 2]})
    _panel(axes[0], runs, "none", 0, "no fsync (10 writers, 1 topic each)")
    _panel(axes[1], runs, "each", 1, "fsync every write (1 and 64 writers, one log)")
    _panel(axes[2], runs, "1000ms", None, "fsync every 1000 ms (10 writers)")
    crc = result.get("crc32c", [])
    impls = sorted({c["impl"] for c in crc})
    sizes = sorted({c["size"] for c in crc})
    ax = axes[3]
    width = 0.8 / max(1, len(impls))
    for k, impl in enumerate(impls):
        values = [
            next(c["gb_per_s"] for c in crc if c["impl"] == impl and c["size"] == s) for s in sizes
        ]
        ax.bar(
            [i + (k - (len(impls) - 1) / 2) * width for i in range(len(sizes))],
            values,
            width * 0.95,
            label=impl,
            edgecolor="black",
            linewidth=0.4,
        )
    ax.set_xticks(
        range(len(sizes)), [f"{s // 1024} KiB" if s < 1 << 20 else f"{s >> 20} MiB" for s in sizes]
    )
    ax.set_ylabel("GB/s")
    ax.set_title("CRC32C throughput", fontsize=10)
    ax.legend(fontsize=7)
    m = result.get("machine", {})
    fig.suptitle(
        f"Storage write benchmark: payloads 500-1024 B; measured on {m.get('cpu', '?')}, "
        f"{m.get('cores', '?')} cores, {m.get('filesystem', '?')}. "
        "Hatched bars: published numbers from another machine, not measured here; "
        "walrus-rust: the original engine (crate 0.2.0) measured here.",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
