"""``walrus-harness bench compare``: systems side by side on the same workloads, in one run.

For each system and variant: start it (``servers``), run every workload against it (``driver``),
stop it. The driver's own ceiling — its publish rate against a null server — is measured first
and printed with every result; a result within 1.5 times of it is marked ``driver_bound`` and
left out of every ratio, since it measures the driver, not the system.

A workload with ``producerRate: 0`` searches for the highest *sustainable* rate (OMB's notion):
one unthrottled phase shows what the system can take at all, then fixed-rate phases from 90 % of
that, each 25 % lower than the last, until one keeps up — publish rate within 5 % of the target,
no publish errors, and a backlog that does not grow by more than half a second's worth — and,
if one failed before it, once more halfway back up to the rate that failed. That rate
is remembered per (topics, message size) and is what ``rateOfMax`` and ``rateSteps`` refer to.
A workload with a backlog first publishes it with the consumers stopped, then consumes while
producing at its rate, and reports how long the backlog took to drain.

Rate steps at fractions of each system's own maximum put a faster system at higher rates, so
they cannot say which is faster *at a given rate*. When both are asked, the original Walrus is
measured before our node, and our node's rate-step workload also runs at the rates of the
original's steps (entries with ``at_rate_of``): the latency target compares the two there.

Every phase uses topics of its own, so nothing left from one phase is read in the next.
"""

import csv
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.bench.omb import driver, plots
from harness.bench.omb.driver import Fault, Phase, Slot, curve_ms, quantiles_ms, run_phase
from harness.bench.omb.servers import (
    LaunchedServer,
    NatsServer,
    NullServer,
    RabbitServer,
    RedisServer,
    Server,
)
from harness.bench.omb.workload import Workload
from harness.progress import Runs
from harness.remote.ssh import SshHosts
from harness.systems.base import Launched

DRIVER_BOUND = 1.5
SUSTAINED = 0.95
SYSTEMS = ("walrus-py", "walrus-rs", "redis", "nats", "rabbitmq")
MATCHED = ("walrus-py", "walrus-rs")
"""(system, reference): the first is also measured at the rates of the second's rate steps."""


@dataclass(frozen=True)
class Variant:
    """One configuration of one system, and how to start it in a directory."""

    system: str
    variant: str
    start: Callable[[Path], Server]
    note: str = ""
    hosted: tuple[Launched, dict[str, Any]] | None = None
    """The same system and endpoint options, to place on hosts over SSH (None: this machine
    only)."""


def variants(
    systems: list[str], walrus_src: str | None, hosts: SshHosts | None = None
) -> list[Variant]:
    """The variants of each system asked for, in order; on ``hosts`` (one node each) if given."""
    if hosts is not None:
        return hosted_variants(systems, hosts)
    from harness.systems import NodeSpec, WalrusPy
    from harness.systems.nats import Nats
    from harness.systems.rabbitmq import Rabbit
    from harness.systems.walrus_rs import WalrusRs

    out = []
    for system in systems:
        if system == "walrus-py":
            for fsync in ("each", "none"):
                # one copy per segment, as walrus-rs keeps (bench cluster --replicas 1,3
                # measures what the default three copies cost)
                spec = NodeSpec(fsync=fsync, replicas=1)
                out.append(
                    Variant(
                        system,
                        f"fsync={fsync}",
                        lambda root, s=spec: LaunchedServer(root, WalrusPy(s)),
                        ("acknowledged after fdatasync" if fsync == "each" else "no sync")
                        + ", one copy per segment (--replicas 1)",
                        (WalrusPy(spec), {}),
                    )
                )
        elif system == "walrus-rs":
            rs = WalrusRs(walrus_src)
            out.append(
                Variant(
                    system,
                    "sync=each",
                    lambda root, rs=rs: LaunchedServer(root, rs),
                    "its PUT path syncs the mapped file before answering",
                )
            )
        elif system == "redis":
            for mode in ("always", "everysec"):
                out.append(
                    Variant(
                        system,
                        f"appendfsync={mode}",
                        lambda root, m=mode: RedisServer(root, m),
                        "AOF fsync per write" if mode == "always" else "AOF fsync every second",
                    )
                )
        elif system == "nats":
            for replicas in (3, 1):
                out.append(
                    Variant(
                        system,
                        f"replicas={replicas} sync=none",
                        lambda root, r=replicas: NatsServer(root, r),
                        "acknowledged before fsync (nats-server 2.9)",
                        (Nats(), {"replicas": replicas}),
                    )
                )
        elif system == "rabbitmq":
            out.append(
                Variant(
                    system,
                    "quorum",
                    RabbitServer,
                    "quorum queues: confirmed once a majority fsynced it",
                    (Rabbit("quorum"), {}),
                )
            )
        else:
            raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
    return out


def hosted_variants(systems: list[str], hosts: SshHosts) -> list[Variant]:
    """``variants``' variants with their nodes on ``hosts``, one each
    (``harness.bench.omb.hosts``); ValueError for a system that has none there."""
    from harness.bench.omb.hosts import HostServer

    local = variants(systems, None)
    refused = sorted({v.system for v in local if v.hosted is None})
    if refused:
        every = variants(list(SYSTEMS), None)
        placed = ", ".join(dict.fromkeys(v.system for v in every if v.hosted is not None))
        raise ValueError(f"bench compare --hosts runs {placed}, not {', '.join(refused)}")
    return [
        replace(
            v,
            start=lambda root, h=v.hosted: HostServer(root, h[0], hosts, h[1]),
            note=f"{v.note}, a node per host",
        )
        for v in local
        if v.hosted is not None
    ]


class _Run:
    """One variant's workloads: topic naming, slots, the max rates found."""

    def __init__(
        self,
        variant: Variant,
        server: Server,
        ceiling: float,
        log,
        matched: list[dict] | None = None,
    ) -> None:
        self.variant, self.server, self.ceiling, self.log = variant, server, ceiling, log
        self.matched = matched or []
        self.maxes: dict[tuple[int, int], float] = {}
        self.phases = 0
        self.series: list[dict] = []

    def slots(self, w: Workload) -> tuple[list[Slot], list[Slot]]:
        self.phases += 1
        endpoint = self.server.endpoint
        producers, consumers = [], []
        for k in range(w.topics):
            topic = f"p{self.phases}t{k}"
            leader = None
            if isinstance(self.server, LaunchedServer):
                leader = self.server.leader_of(topic)
            address = endpoint.address_for(k, leader)
            producers += [
                Slot(endpoint.kind, topic, address, endpoint.options, len(producers) + j)
                for j in range(w.producers_per_topic)
            ]
            consumers += [
                Slot(endpoint.kind, topic, address, endpoint.options, len(consumers) + j)
                for j in range(w.consumers_per_topic)
            ]
        return producers, consumers

    def phase(self, w: Workload, label: str, rate: float, **kw) -> Phase:
        producers, consumers = kw.pop("slots", None) or self.slots(w)
        if kw.pop("no_consumers", False):
            consumers = []
        ph = run_phase(
            producers,
            consumers,
            rate,
            kw.pop("warmup_s", w.warmup_s),
            kw.pop("duration_s", w.duration_s),
            w.message_size,
            **kw,
        )
        ph.label = label
        for second, (p, e, c, b) in enumerate(
            zip(ph.published, ph.errors, ph.consumed, ph.backlog(), strict=True)
        ):
            self.series.append(
                {
                    "system": self.variant.system,
                    "variant": self.variant.variant,
                    "workload": w.name,
                    "phase": label,
                    "second": second,
                    "published": p,
                    "publish_errors": e,
                    "consumed": c,
                    "backlog": b,
                }
            )
        self.log(
            f"  {w.name} {label}: target {_rate(rate)}, published {ph.publish_rate:,.0f}/s, "
            f"consumed {ph.consume_rate:,.0f}/s, errors {ph.publish_errors}"
            + (f" (first: {ph.first_error})" if ph.first_error else "")
        )
        return ph

    def find_max(self, w: Workload) -> tuple[float, Phase, bool]:
        """The highest sustainable rate for the workload's shape, its phase, and whether any
        tried rate was sustained."""
        probe = self.phase(w, "unthrottled", math.inf, warmup_s=1.0, duration_s=3.0)
        rate = max(1.0, probe.publish_rate * 0.9)
        ph = probe
        failed = None
        for _ in range(5):
            ph = self.phase(w, f"search {rate:,.0f}/s", rate)
            if sustained(ph, rate):
                if failed is not None:  # once halfway back up towards the rate that failed
                    higher = (rate + failed) / 2
                    again = self.phase(w, f"search {higher:,.0f}/s", higher)
                    if sustained(again, higher):
                        rate, ph = higher, again
                self.maxes[w.shape] = rate
                return rate, ph, True
            failed = rate
            rate *= 0.75
        self.maxes[w.shape] = rate / 0.75
        return rate / 0.75, ph, False

    def max_for(self, w: Workload) -> float:
        if w.shape not in self.maxes:
            self.find_max(w)
        return self.maxes[w.shape]

    def entry(self, w: Workload, ph: Phase, **extra) -> dict:
        backlog = ph.backlog()
        return {
            "system": self.variant.system,
            "variant": self.variant.variant,
            "note": self.variant.note,
            "workload": w.name,
            "target_rate": None if math.isinf(ph.target_rate) else ph.target_rate,
            "publish_rate": ph.publish_rate,
            "publish_errors": ph.publish_errors,
            "first_error": ph.first_error or None,
            "consume_rate": ph.consume_rate,
            "backlog_max": max(backlog, default=0),
            "driver_bound": ph.publish_rate * DRIVER_BOUND >= self.ceiling,
            "publish_latency_ms": quantiles_ms(ph.latency),
            "publish_delay_ms": quantiles_ms(ph.delay),
            "e2e_latency_ms": quantiles_ms(ph.e2e),
            "publish_latency_quantiles": curve_ms(ph.latency),
            "e2e_latency_quantiles": curve_ms(ph.e2e),
            "phase": ph.label,
            **extra,
        }

    def workload(self, w: Workload) -> list[dict]:
        if w.backlog_messages:
            return [self._backlog(w)]
        if w.rate_steps:
            top = self.max_for(w)
            own = [
                self.entry(w, self.phase(w, f"step {f:.0%}", f * top), step=f) for f in w.rate_steps
            ]
            return own + [
                self.entry(
                    w,
                    self.phase(w, f"at {r['system']} step {r['step']:.0%}", r["target_rate"]),
                    at_rate_of={k: r[k] for k in ("system", "variant", "step")},
                )
                for r in self.matched
                if r["workload"] == w.name
            ]
        if w.finds_max:
            rate, ph, ok = self.find_max(w)
            return [self.entry(w, ph, sustained=ok)]
        if w.nemesis:
            return [self._nemesis(w)]
        rate = self._fixed_rate(w)
        return [self.entry(w, self.phase(w, f"fixed {rate:,.0f}/s", rate))]

    def _fixed_rate(self, w: Workload) -> float:
        return w.producer_rate or (w.rate_of_max or 1.0) * self.max_for(w)

    def _nemesis(self, w: Workload) -> dict:
        server = self.server
        kill = w.nemesis == "kill-leader"
        why = None if kill else server.uncuttable()
        if why is not None:  # before any phase: a rate search would be for nothing
            raise RuntimeError(why)
        rate = self._fixed_rate(w)
        slots = self.slots(w)
        topic = slots[0][0].topic
        struck: list[str] = []

        def begin() -> None:  # on the leader at that moment
            victim = server.leader(topic)
            if victim is not None:
                (server.kill if kill else server.isolate)(victim)
                struck.append(victim)

        def end() -> None:
            if not kill:
                server.heal()
            for victim in struck if kill else ():
                server.restart(victim)

        fault = Fault(w.nemesis_at_s, w.nemesis_down_s, begin, end)
        what = "kill the leader" if kill else "cut the leader off"
        ph = self.phase(w, f"fixed {rate:,.0f}/s, {what}", rate, slots=slots, fault=fault)
        if not struck:
            raise RuntimeError(f"no leader known for {topic} when the nemesis struck")
        attempts = sum(ph.published) + ph.publish_errors
        return self.entry(
            w,
            ph,
            nemesis=w.nemesis,
            **{"killed" if kill else "isolated": struck[0]},
            fault_s=list(ph.fault_s),
            error_rate=ph.publish_errors / attempts if attempts else None,
            recovery_s=recovery_s(ph, rate),
        )

    def _backlog(self, w: Workload) -> dict:
        slots = self.slots(w)
        per = math.ceil(w.backlog_messages / max(1, len(slots[0])))
        began = time.monotonic()
        self.phase(
            w,
            "build backlog",
            math.inf,
            slots=slots,
            no_consumers=True,
            warmup_s=0.0,
            duration_s=600.0,
            limit_per_producer=per,
        )
        build_s = time.monotonic() - began
        rate = (w.rate_of_max or 0.5) * self.max_for(w)
        ph = self.phase(w, f"drain at {rate:,.0f}/s", rate, slots=slots, warmup_s=0.0)
        level = per * len(slots[0])
        drained_at = None
        for second, (p, c) in enumerate(zip(ph.published, ph.consumed, strict=True)):
            level += p - c
            if level <= max(10, rate * 0.1):
                drained_at = second + 1
                break
        return self.entry(
            w, ph, backlog_built=per * len(slots[0]), build_s=build_s, drain_s=drained_at
        )


def _pick(results: list[dict], system: str, variant: str, workload: str) -> list[dict]:
    return [
        r
        for r in results
        if (r["system"], r.get("variant"), r.get("workload")) == (system, variant, workload)
        and "error" not in r
    ]


def ratios(results: list[dict]) -> list[dict]:
    """The issue's targets, each as a ratio between two systems measured in this run: the
    value, the target, whether it was met, and why not when it cannot be judged (a system
    missing, or a result within reach of the driver's ceiling)."""
    top = "max-rate-1-topic-100b"
    steps = "rate-steps-1-topic-100b"
    ours = _pick(results, "walrus-py", "fsync=each", steps)
    theirs = {r["step"]: r for r in _pick(results, "walrus-rs", "sync=each", steps)}
    return [
        _rate_ratio(
            "walrus-py fsync=each / walrus-rs sync=each, max sustainable rate",
            _pick(results, "walrus-py", "fsync=each", top),
            _pick(results, "walrus-rs", "sync=each", top),
            5.0,
        ),
        _rate_ratio(
            "walrus-py fsync=none / nats replicas=1, max sustainable rate",
            _pick(results, "walrus-py", "fsync=none", top),
            _pick(results, "nats", "replicas=1 sync=none", top),
            1.0,
        ),
        _lower_p99(
            "walrus-rs sync=each rate steps both sustain where walrus-py fsync=each, at the same "
            "rate, has the lower p99",
            {r["at_rate_of"]["step"]: r for r in ours if "at_rate_of" in r},
            theirs,
            "every one",
        ),
        _lower_p99(
            "rate steps (each at its fraction of its own max) where walrus-py fsync=each has the "
            "lower p99",
            {r["step"]: r for r in ours if "step" in r},
            theirs,
            None,
        ),
    ]


def _rate_ratio(name: str, ours: list[dict], theirs: list[dict], target: float) -> dict:
    """Our highest sustainable rate over theirs, against ``target``."""
    if not ours or not theirs:
        return {"ratio": name, "value": None, "target": target, "met": None,
                "why": "not measured in this run"}  # fmt: skip
    if ours[0]["driver_bound"] or theirs[0]["driver_bound"]:
        return {"ratio": name, "value": None, "target": target, "met": None,
                "why": "driver-bound: left out"}  # fmt: skip
    value = ours[0]["publish_rate"] / theirs[0]["publish_rate"]
    return {"ratio": name, "value": value, "target": target, "met": value >= target}


def _lower_p99(
    name: str, mine: dict[float, dict], theirs: dict[float, dict], target: str | None
) -> dict:
    """At how many of the steps both sustain ours has the lower p99 (keyed alike: by step)."""
    both = [
        f
        for f in sorted(set(mine) & set(theirs))
        if sustained_entry(mine[f]) and sustained_entry(theirs[f])
    ]
    lower = [
        f
        for f in both
        if mine[f]["publish_latency_ms"]["p99"] < theirs[f]["publish_latency_ms"]["p99"]
    ]
    if not target:
        met, why = None, "not a target: a faster system is measured at higher rates"
    elif not both:
        met, why = None, "no rate step measured for both"
    else:
        met, why = len(lower) == len(both), None
    return {
        "ratio": name,
        "value": f"{len(lower)} of {len(both)}",
        "target": target,
        "met": met,
        **({"why": why} if why else {}),
    }


def sustained_entry(r: dict) -> bool:
    """A result kept up with its target rate (within 5 %) without publish errors."""
    target = r.get("target_rate")
    return (
        target is not None and r["publish_rate"] >= SUSTAINED * target and not r["publish_errors"]
    )


def recovery_s(ph: Phase, rate: float) -> float | None:
    """Seconds from the fault's start to the end of the first 1-second window after it in which the
    target rate was published again (90 %) without errors; None if it never was."""
    if not ph.fault_s:
        return None
    began = ph.fault_s[0]
    for second in range(math.ceil(began), len(ph.published)):
        if ph.published[second] >= 0.9 * ph.target_rate and ph.errors[second] == 0:
            return second + 1 - began
    return None


def sustained(ph: Phase, rate: float) -> bool:
    """Kept up: publish rate within 5 % of the target, no errors, backlog not growing."""
    backlog = ph.backlog()[ph.measured]
    growth = backlog[-1] - backlog[0] if len(backlog) > 1 else 0
    return (
        ph.publish_rate >= SUSTAINED * rate
        and ph.publish_errors == 0
        and growth <= max(100, rate * 0.5)
    )


def _rate(rate: float) -> str:
    return "unthrottled" if math.isinf(rate) else f"{rate:,.0f}/s"


def reference_steps(results: list[dict]) -> list[dict]:
    """The rate steps the reference of ``MATCHED`` sustained, whose rates our node also runs."""
    return [r for r in results if r["system"] == MATCHED[1] and "step" in r and sustained_entry(r)]


def measure_order(systems: list[str]) -> list[str]:
    """The systems in the order they are measured: as asked, except that the reference of
    ``MATCHED`` comes just before our node when both are asked (its step rates are needed)."""
    ours, reference = MATCHED
    if ours not in systems or reference not in systems:
        return list(systems)
    order = [s for s in systems if s != reference]
    order.insert(order.index(ours), reference)
    return order


def driver_ceiling(workload: Workload, log) -> float:
    """The publish rate the driver reaches against the null server, producers only."""
    with tempfile.TemporaryDirectory() as tmp:
        server = NullServer(Path(tmp))
        try:
            run = _Run(Variant("null", "ack at once", lambda r: server), server, math.inf, log)
            ph = run.phase(workload, "driver ceiling", math.inf, no_consumers=True)
            return ph.publish_rate
        finally:
            server.stop()


def run(
    systems: list[str],
    workloads: list[Workload],
    out: Path,
    walrus_src: str | None = None,
    live: bool | None = None,
    hosts: SshHosts | None = None,
) -> dict:
    """Every workload on every variant; results.json, series.csv and the plots in ``out``; the
    document (its ``plots`` names the figures written). Progress goes to stdout, live on a
    terminal unless ``live`` says otherwise (``harness.progress``)."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = variants(measure_order(systems), walrus_src, hosts)
    with Runs("bench compare", len(chosen) * len(workloads), live=live) as runs:
        results, series, ceiling = _measure(chosen, workloads, runs)
    return _write(results, series, ceiling, workloads, out, runs.note, hosts)


def _measure(
    chosen: list[Variant], workloads: list[Workload], runs: Runs
) -> tuple[list[dict], list[dict], float]:
    """Every workload on every variant: the results, the series and the driver's ceiling."""
    log = runs.note
    ceiling = driver_ceiling(workloads[0], log)
    log(f"driver ceiling: {ceiling:,.0f} msg/s against the null server")
    results: list[dict] = []
    series: list[dict] = []
    for v in chosen:
        log(f"{v.system} {v.variant}:")
        with tempfile.TemporaryDirectory() as tmp:
            runs.begin(f"{v.system} {v.variant}")
            runs.phase("starting")
            try:
                server = v.start(Path(tmp))
            except Exception as exc:
                log(f"  did not start: {exc}")
                results.append(
                    {"system": v.system, "variant": v.variant, "error": f"did not start: {exc}"}
                )
                for _ in workloads:
                    runs.done(verdict="not started")
                continue
            try:
                matched = reference_steps(results) if v.system == MATCHED[0] else []
                r = _Run(v, server, ceiling, log, matched)
                for w in workloads:
                    runs.begin(f"{v.system} {v.variant} {w.name}")
                    try:
                        results += r.workload(w)
                        runs.done(verdict="measured")
                    except Exception as exc:
                        runs.done(verdict="failed")
                        log(f"  {w.name} failed: {exc}")
                        results.append(
                            {
                                "system": v.system,
                                "variant": v.variant,
                                "workload": w.name,
                                "error": str(exc),
                            }
                        )
                series += r.series
            finally:
                server.stop()
    return results, series, ceiling


def _write(
    results: list[dict],
    series: list[dict],
    ceiling: float,
    workloads: list[Workload],
    out: Path,
    log: Callable[[str], None],
    hosts: SshHosts | None = None,
) -> dict:
    """results.json, series.csv and the plots in ``out``; the document."""
    fastest = max((r["publish_rate"] for r in results if "publish_rate" in r), default=0.0)
    headroom = ceiling / fastest if fastest else None
    if headroom is not None and headroom < 3:
        log(
            f"the driver's ceiling is only {headroom:.1f} times the fastest rate measured: "
            "the fastest systems may be measured short"
        )
    document = {
        "driver_ceiling": ceiling,
        "driver_headroom": headroom,
        "ratios": ratios(results),
        "results": results,
        "setup": {
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "processes": {
                "producers": driver.PRODUCER_PROCESSES,
                "consumers": driver.CONSUMER_PROCESSES,
            },
            "window": driver.WINDOW,
            "workloads": [w.name for w in workloads],
            "cores_shared": "driver processes and every system's processes share the same cores"
            if hosts is None
            else "the driver on this machine, each system's nodes one per host; end-to-end "
            "latency read on this machine's clock alone (producer's send, consumer's receive)",
            "hosts": None if hosts is None else list(hosts.hosts),
        },
    }
    document["plots"] = plots.write_all(document, series, out)
    (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    if series:
        with open(out / "series.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(series[0]))
            writer.writeheader()
            writer.writerows(series)
    return document
