"""summary.md: the verdict, what each checker found, and the run's numbers, for people."""

import json
from pathlib import Path

from harness.checker.result import anomalies_of, checker_results, details_of, found
from harness.checker.verdict import WORDS
from harness.history import Event
from harness.history.host_clocks import HostClocks

AIMED_WITHIN_MS = 100.0
"""An aimed fault "landed on" its event when it fired within this many milliseconds of it."""


def aimed_line(nemesis: list[Event], t0_ns: int | None) -> str | None:
    """How close the aimed faults came to their events (None if none fired): fired is when the
    harness acted, landed when the fault was done and recorded."""
    aimed = [
        e
        for e in nemesis
        if e.f.startswith("start-") and isinstance(e.value, dict) and "trigger" in e.value
    ]
    if not aimed:
        return None
    fired = sorted(e.value["trigger"]["lag_ms"] for e in aimed)
    line = f"Aimed faults: {len(aimed)} fired; event to firing: median {_median(fired):.1f} ms"
    if t0_ns is not None:
        landed = sorted((t0_ns + e.time - e.value["trigger"]["event_true_ns"]) / 1e6 for e in aimed)
        close = sum(lag <= AIMED_WITHIN_MS for lag in landed)
        line += (
            f", event to landing (the fault done): median {_median(landed):.1f} ms, max "
            f"{landed[-1]:.1f} ms; {close} of {len(aimed)} ({close / len(aimed):.0%}) landed "
            f"within {AIMED_WITHIN_MS:g} ms of their event"
        )
    return line + " (the planned 0-50 ms delay included)."


def tcp_line(run: Path) -> str | None:
    """What the nodes' own TCP stacks counted (Docker runs: packet faults land there)."""
    try:
        tcp = json.loads((run / "links.json").read_text()).get("tcp")
    except (OSError, ValueError):
        return None
    if not tcp:
        return None
    total = {k: sum(c.get(k, 0) for c in tcp.values()) for k in TCP_WORDS}
    said = ", ".join(f"{total[k]:,} {words}" for k, words in TCP_WORDS.items())
    return f"TCP in the node containers (each since its last start; links.json): {said}."


def clocks_line(run: Path) -> str | None:
    """How well the hosts' clocks were measured (SSH runs keep clocks.json)."""
    try:
        clocks = HostClocks.read(run / "clocks.json")
    except (OSError, ValueError):
        return None
    samples = sum(len(s) for s in clocks.samples.values())
    return (
        f"Hosts' clocks: {samples} samples over {len(clocks.samples)} hosts, each offset within "
        f"±{clocks.widest() / 1e6:.3f} ms (clocks.json, clock-skew.png); the node events are set "
        "on the history's time line by them."
    )


TCP_WORDS = {
    "segments_in": "segments in",
    "duplicates_in": "arrived twice",
    "out_of_order_in": "out of order",
    "retransmitted": "retransmitted",
}


def _median(values: list[float]) -> float:
    return values[len(values) // 2]


def lost_part(segments: int) -> str:
    """The ", N lost with a disk" note when the metadata marks segments lost, else nothing."""
    return f", {segments} lost with a disk" if segments else ""


def disks_part(disks: int) -> str:
    """The ", N stores lost" note when nodes came back with their store gone, else nothing."""
    return f", {disks} stores lost" if disks else ""


def write(
    run: Path, results: dict, test: dict, plots: list[str], nemesis: list[Event] = ()
) -> None:
    """Write summary.md into the run directory."""
    lines = [f"# {test.get('name', 'test')}: {WORDS[results['valid']]}", ""]
    system = test.get("system", {})
    workload = test.get("workload", {})
    lines += [
        f"- {system.get('description', system.get('name'))}: {test.get('nodes')} nodes "
        f"({test.get('backend')}), {test.get('time_limit')} s, nemesis `{test.get('nemesis')}` "
        f"every ~{test.get('nemesis_interval')} s, seed {test.get('seed')}",
        f"- workload: {workload.get('concurrency')} workers over {workload.get('topics')} topics, "
        f"~{workload.get('rate')} ops/s; {results.get('operations')} operations, "
        f"{results.get('faults')} faults",
        "",
        "| checker | verdict | found |",
        "|---|---|---|",
    ]
    for name, r in checker_results(results).items():
        lines.append(f"| {name} | {WORDS[r['valid']]} | {found(r) or '-'} |")
    facts = results.get("cluster", {})
    if facts:
        per_topic = "; ".join(
            f"{t}: {f['segments']} segments ({f.get('sealed_entries', 0)} entries in the sealed "
            f"ones{lost_part(f.get('lost_segments', 0))}), leaders {f['leaders']}, "
            f"{f['leader_changes']} changes"
            for t, f in facts.get("topics", {}).items()
        )
        events = (
            f"{facts['takeovers']} segments taken over from silent nodes, "
            f"{facts['lease_losses']} lease losses, {facts['node_starts']} node "
            f"starts (restarts included){disks_part(facts.get('disks_lost', 0))}; "
            if "takeovers" in facts
            else ""
        )
        raft = (
            f"; {facts['applied_truncation_lines']} node log lines 'truncating already-applied'"
            if "applied_truncation_lines" in facts
            else ""
        )
        lines += ["", "## What the faults did", "", events + per_topic + raft]
    aimed = aimed_line(list(nemesis), results.get("t0_ns"))
    if aimed:
        lines += ["", aimed]
    t = details_of(results, "totals")
    lines += [
        "",
        "## Totals",
        "",
        f"attempted {t.get('attempted')}, acknowledged {t.get('acknowledged')}, read "
        f"{t.get('read')}, lost {t.get('lost', 0)}, unread {t.get('unread', 0)}, unexpected "
        f"{t.get('unexpected')}, duplicated {t.get('duplicated')}, recovered "
        f"{t.get('recovered')}, info gets {t.get('info_gets')}",
    ]
    perf = details_of(results, "perf").get("all", {})
    lines += [
        "",
        "## Performance",
        "",
        "| op | ok/s | availability | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for f in ("put", "get"):
        s = perf.get(f)
        if not s:
            continue
        lat = s.get("latency_ms") or {}
        avail = "-" if s["availability"] is None else f"{s['availability']:.1%}"
        lines.append(
            f"| {f} | {s['ok_per_s']:.1f} | {avail} | {lat.get('p50', 0):.1f} | "
            f"{lat.get('p99', 0):.1f} | {lat.get('max', 0):.1f} |"
        )
    for line in (tcp_line(run), clocks_line(run)):
        if line:
            lines += ["", line]
    anomalies = _anomalies(results)
    if anomalies:
        lines += ["", "## Anomalies (first of each kind)", ""]
        lines += [f"- **{kind}**: {text}" for kind, text in anomalies]
    if results.get("notes"):
        lines += ["", f"Note: {results['notes']}"]
    lines += [
        "",
        "## Files",
        "",
        *(f"- [{p}]({p})" for p in plots),
        "- [timeline.html](timeline.html)",
        "- [results.json](results.json), [history.jsonl](history.jsonl), nodes/<id>/",
        "- [links.json](links.json)"
        + ("" if "links.png" in plots else ": not applicable (no proxy sees these links)"),
    ]
    (run / "summary.md").write_text("\n".join(lines) + "\n")


def _anomalies(results: dict) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for _, a in anomalies_of(results):
        seen.setdefault(a["kind"], a["text"])
    return list(seen.items())
