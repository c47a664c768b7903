"""Performance plots with the nemesis windows shaded and labelled, as Jepsen draws them."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from harness.history import Event
from harness.history.columns import F_NAMES, OK, TYPES, Columns
from harness.history.host_clocks import HostClocks

Window = tuple[str, float, float, object]
"""A fault window as results.json keeps it (``checker.result.fault_windows``): fault, start ns,
stop ns (infinity while open), value."""

FAULT_COLORS = ["#f4a261", "#8ecae6", "#b5e48c", "#e5989b", "#cdb4db", "#ffd166"]
F_CODES = {name: code for code, name in enumerate(F_NAMES)}
SERIES = {
    ("put", "ok"): "#1d4ed8",
    ("get", "ok"): "#059669",
    ("put", "fail"): "#f59e0b",
    ("get", "fail"): "#d97706",
    ("put", "info"): "#dc2626",
    ("get", "info"): "#9f1239",
}


def shade(ax, windows: list[Window], end_s: float) -> None:
    """Shade each fault window (one colour per fault kind) and label it."""
    kinds: dict[str, str] = {}
    top = ax.get_ylim()[1]
    for name, start, stop, _ in windows:
        color = kinds.setdefault(name, FAULT_COLORS[len(kinds) % len(FAULT_COLORS)])
        stop_s = min(end_s, stop / 1e9)
        ax.axvspan(
            start / 1e9,
            stop_s,
            color=color,
            alpha=0.25,
            lw=0,
            label=name if name not in ax.get_legend_handles_labels()[1] else None,
        )
        ax.text(start / 1e9, top, name, fontsize=7, va="top", ha="left", color="#333333")


def _finish(fig, ax, path: Path, title: str) -> None:
    ax.set_xlabel("time (s)")
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


MAX_POINTS = 200_000
"""Acknowledged operations drawn one by one in latency-raw.png; past it, an even sample (every
operation that failed or whose outcome is unknown is always drawn)."""


def latency_raw(
    c: Columns, within: np.ndarray, windows: list[Window], end_s: float, path: Path
) -> None:
    """Every operation's latency against when it was invoked; info ops at the top edge
    (``within``: the rows to draw, the workload's)."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    finished = within & np.isfinite(c.ret)
    top = ((c.ret[finished] - c.inv[finished]).max() / 1e6 if finished.any() else 1.0) * 2
    ok = int(np.count_nonzero(within & (c.type == OK)))
    step = max(1, -(-ok // MAX_POINTS))
    for (f, kind), color in SERIES.items():
        mine = np.flatnonzero(within & (c.f == F_CODES[f]) & (c.type == TYPES[kind]))
        if kind == "ok":
            mine = mine[::step]
        if not len(mine):
            continue
        lat = (c.ret[mine] - c.inv[mine]) / 1e6
        y = np.where(np.isfinite(lat), np.maximum(lat, 1e-3), top)
        marker = {"ok": ".", "fail": "x", "info": "v"}[kind]
        ax.scatter(
            c.inv[mine] / 1e9,
            y,
            s=6 if kind == "ok" else 14,
            c=color,
            marker=marker,
            label=f"{f} {kind}",
            alpha=0.7,
            linewidths=0.6,
            rasterized=True,
        )
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log); unknown outcomes at the top")
    ax.set_xlim(0, end_s)
    shade(ax, windows, end_s)
    sampled = f" (acknowledged ones: every {step}th of {ok:,})" if step > 1 else ""
    _finish(fig, ax, path, f"latency of every operation{sampled}")


def _buckets(end_s: float) -> np.ndarray:
    width = max(0.25, end_s / 120)
    return np.arange(0, end_s + width, width)


def latency_quantiles(
    c: Columns, within: np.ndarray, windows: list[Window], end_s: float, path: Path
) -> None:
    """p50/p95/p99 of acknowledged operations' latency per time bucket (of the rows
    ``within``)."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    edges = _buckets(end_s)
    styles = {0.5: "-", 0.95: "--", 0.99: ":"}
    for f, color in (("put", SERIES[("put", "ok")]), ("get", SERIES[("get", "ok")])):
        mine = np.flatnonzero(within & (c.f == F_CODES[f]) & (c.type == OK))
        if not len(mine):
            continue
        t = c.inv[mine] / 1e9
        lat = (c.ret[mine] - c.inv[mine]) / 1e6
        which = np.digitize(t, edges)
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(1, len(edges) + 1))
        per_bucket = [
            (edges[b - 1], lat[order[bounds[b - 1] : bounds[b]]]) for b in range(1, len(edges))
        ]
        per_bucket = [(x, sel) for x, sel in per_bucket if len(sel)]
        for q, style in styles.items():
            xs = [x for x, _ in per_bucket]
            ys = [np.quantile(sel, q) for _, sel in per_bucket]
            ax.plot(xs, ys, style, color=color, label=f"{f} p{int(q * 100)}", lw=1.2)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_xlim(0, end_s)
    shade(ax, windows, end_s)
    _finish(fig, ax, path, "latency quantiles")


def rate(c: Columns, within: np.ndarray, windows: list[Window], end_s: float, path: Path) -> None:
    """Completions per second, by operation and outcome (of the rows ``within``)."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    edges = _buckets(end_s)
    width = edges[1] - edges[0]
    for (f, kind), color in SERIES.items():
        mine = np.flatnonzero(within & (c.f == F_CODES[f]) & (c.type == TYPES[kind]))
        if not len(mine):
            continue
        times = np.where(np.isfinite(c.ret[mine]), c.ret[mine], c.inv[mine]) / 1e9
        counts, _ = np.histogram(times, bins=edges)
        ax.plot(
            edges[:-1],
            counts / width,
            color=color,
            label=f"{f} {kind}",
            lw=1.4 if kind == "ok" else 1.0,
        )
    ax.set_ylabel("operations / s")
    ax.set_xlim(0, end_s)
    shade(ax, windows, end_s)
    _finish(fig, ax, path, "throughput")


def clock_changes(nemesis: list[Event]) -> dict[int, list[tuple[float, float, float, float]]]:
    """Per node, (time s, offset, rate, strobe amplitude) from the clock faults' events."""
    changes: dict[int, list[tuple[float, float, float, float]]] = {}
    for e in nemesis:
        if not (e.f.endswith("-clock") or e.f.endswith("-drift-unsafe")):
            continue
        t, value = e.time / 1e9, e.value or {}
        nodes = value.get("nodes", {})
        if e.f.startswith("stop-"):
            for node in nodes:
                changes.setdefault(int(node), []).append((t, 0.0, 1.0, 0.0))
        elif "strobe" in value:
            for node in nodes:
                changes.setdefault(int(node), []).append((t, 0.0, 1.0, value["strobe"]["delta"]))
        else:
            for node, setting in nodes.items():
                changes.setdefault(int(node), []).append(
                    (t, setting["offset"], setting["rate"], 0.0)
                )
    return changes


def clock_skew(
    nemesis: list[Event], end_s: float, path: Path, hosts: HostClocks | None = None
) -> None:
    """Each node's clock offset and rate over the run, as the clock faults set them; with
    ``hosts``, a third panel: each host's clock as measured against the control node's."""
    fig, axes = plt.subplots(3 if hosts else 2, 1, figsize=(11, 8 if hosts else 5.5), sharex=True)
    ax_off, ax_rate = axes[0], axes[1]
    if hosts is not None:
        _host_clocks(axes[2], hosts)
    changes = clock_changes(nemesis)
    for i, (node, steps) in enumerate(sorted(changes.items())):
        color = f"C{i}"
        times = [0.0] + [s[0] for s in steps] + [end_s]
        offsets = [0.0] + [s[1] for s in steps]
        rates = [1.0] + [s[2] for s in steps]
        ax_off.step(times[:-1], offsets, where="post", color=color, label=f"node {node}")
        ax_off.hlines(offsets[-1], times[-2], times[-1], color=color)
        ax_rate.step(times[:-1], rates, where="post", color=color, label=f"node {node}")
        ax_rate.hlines(rates[-1], times[-2], times[-1], color=color)
        for (t0, _, _, amp), t1 in zip(steps, times[2:], strict=False):
            if amp:
                ax_off.fill_between(
                    [t0, t1],
                    0,
                    amp,
                    color=color,
                    alpha=0.25,
                    step="post",
                    label=f"node {node} strobe",
                )
    ax_off.set_ylabel("offset (s)")
    ax_rate.set_ylabel("rate")
    ax_rate.set_xlim(0, end_s)
    axes[-1].set_xlabel("time (s)")
    title = "clock skew set by the nemesis" if changes else "clock skew: no clock faults"
    ax_off.set_title(title, fontsize=10)
    if changes:
        ax_off.legend(fontsize=7, loc="upper right")
        ax_rate.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _host_clocks(ax: plt.Axes, hosts: HostClocks) -> None:
    """Each host's measured offset, less its first sample, with its error as a bar (ms)."""
    for i, (node, samples) in enumerate(sorted(hosts.samples.items())):
        if not samples:
            continue
        first = samples[0].offset_ns
        ax.errorbar(
            [(s.at_ns - hosts.t0_ns) / 1e9 for s in samples],
            [(s.offset_ns - first) / 1e6 for s in samples],
            yerr=[s.error_ns / 1e6 for s in samples],
            color=f"C{i}",
            marker=".",
            capsize=2,
            label=f"node {node}'s host",
        )
    ax.set_ylabel("host offset - first (ms)")
    ax.set_title(
        f"hosts' clocks measured from the control node (bars: ± half the round trip; "
        f"largest {hosts.widest() / 1e6:.3f} ms)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper right")


def links(doc: dict, windows: list[Window], end_s: float, path: Path) -> bool:
    """The message diagram: one row per link and direction, each second shaded by the bytes it
    carried (log scale), red where a partition dropped bytes; False (nothing drawn) when no
    proxy saw the links."""
    merged: dict[tuple, dict] = {}
    for t in doc.get("links") or []:  # both proxies of a pair carry each direction: add them up
        row = merged.setdefault(
            (t["service"], t["from"], t["to"]),
            {
                "service": t["service"],
                "from": t["from"],
                "to": t["to"],
                "carried": {},
                "dropped": {},
            },
        )
        for k in ("carried", "dropped"):
            for second, n in t[k].items():
                row[k][second] = row[k].get(second, 0) + n
    rows = [merged[k] for k in sorted(merged)]
    if not rows:
        return False
    offset = doc.get("offset_s", 0.0)
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(rows) + 1.6))
    most = max((n for t in rows for n in t["carried"].values()), default=1)
    for y, t in enumerate(rows):
        for second, n in t["carried"].items():
            shade_of = 0.15 + 0.85 * np.log1p(n) / np.log1p(most)
            ax.barh(y, 1, left=int(second) - offset, color=plt.cm.Blues(shade_of), height=0.8)
        for second, _ in t["dropped"].items():
            ax.barh(y, 1, left=int(second) - offset, color="#dc2626", height=0.4)
    ax.set_yticks(range(len(rows)), [f"{t['service']} {t['from']}→{t['to']}" for t in rows])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(0, end_s)
    shade(ax, windows, end_s)
    _finish(
        fig,
        ax,
        path,
        "node-to-node links: bytes carried per second (darker: more), red: dropped by a partition",
    )
    return True


def write_all(
    c: Columns, nemesis: list[Event], windows: list[Window], end_ns: float, run: Path
) -> list[str]:
    """The plots into the run directory (``nemesis``: the history's fault events, for the
    clock skew; ``windows``: the fault windows to shade); their file names."""
    workload = c.inv <= end_ns
    end_s = max(end_ns / 1e9, 1e-3)
    latency_raw(c, workload, windows, end_s, run / "latency-raw.png")
    latency_quantiles(c, workload, windows, end_s, run / "latency-quantiles.png")
    rate(c, workload, windows, end_s, run / "rate.png")
    measured = run / "clocks.json"
    hosts = HostClocks.read(measured) if measured.exists() else None
    clock_skew(nemesis, end_s, run / "clock-skew.png", hosts)
    names = ["latency-raw.png", "latency-quantiles.png", "rate.png", "clock-skew.png"]
    traffic = run / "links.json"
    if traffic.exists() and links(
        json.loads(traffic.read_text()), windows, end_s, run / "links.png"
    ):
        names.append("links.png")
    return names
