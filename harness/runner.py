"""One test run, start to finish (``docs/design.md`` §6).

Set up the cluster, run the workload and the nemesis together for the time limit, heal every
fault, wait until the cluster serves again (every node takes writes, no segment awaits its count),
drain every topic, audit the stores, collect the nodes' logs, check, and write the run directory::

    <store>/<name>/<YYYYmmddTHHMMSS>/
      test.json  history.jsonl  audit.json  results.json  summary.md
      latency-raw.png  latency-quantiles.png  rate.png  clock-skew.png  timeline.html
      nodes/<id>/node.log  nodes/<id>/events.jsonl
    <store>/latest -> the newest run
"""

import json
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import trio

from harness.checker.result import RESULTS_VERSION
from harness.checker.suite import Evidence, check_run
from harness.cluster import make_cluster, preflight
from harness.history import Header, Recorder, columns
from harness.history.host_clocks import HostClocks
from harness.history.node_events import read_nodes
from harness.raised import leaves, raised_at
from harness.remote.ssh import SshHosts
from harness.report import write_reports
from harness.systems import System, WalrusPy, system_from_json
from harness.workload import WorkloadConfig, drain, run_workers
from nemesis.catalogue import POWER_LOSS
from nemesis.schedule import Schedule, Step, base_faults, fault_names, plan

TEST_VERSION = 1
"""The shape of test.json this code writes (one with no ``version`` field has the same)."""


@dataclass(frozen=True)
class TestConfig:
    """Everything that defines a test run."""

    __test__ = False  # not a pytest test class

    name: str = "queue"
    backend: str = "local"
    nodes: int = 3
    time_limit: float = 30.0
    nemesis: str = "partition,kill"
    nemesis_interval: float = 10.0
    seed: int = 0
    store: Path = Path("results/runs")
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    system: System = field(default_factory=WalrusPy)
    recovery_timeout: float = 60.0
    drain_timeout: float = 120.0
    keep_data: bool = False
    base_image: str | None = None
    ssh: SshHosts | None = None
    """The ssh backend's hosts, one per node."""
    schedule: tuple[Step, ...] | None = None
    """The nemesis's steps: planned from the seed when the run starts, unless given (replay,
    shrink)."""

    @classmethod
    def from_json(cls, raw: dict) -> "TestConfig":
        """The configuration a run's test.json holds, to run it again."""
        try:
            return cls(
                name=raw["name"],
                backend=raw["backend"],
                nodes=raw["nodes"],
                time_limit=raw["time_limit"],
                nemesis=raw["nemesis"],
                nemesis_interval=raw["nemesis_interval"],
                seed=raw["seed"],
                store=Path(raw["store"]),
                workload=WorkloadConfig(**raw["workload"]),
                system=system_from_json(raw["system"]),
                recovery_timeout=raw.get("recovery_timeout", 60.0),
                drain_timeout=raw.get("drain_timeout", 120.0),
                keep_data=raw.get("keep_data", False),
                base_image=raw.get("base_image"),
                ssh=None
                if raw.get("ssh") is None
                else SshHosts(**{**raw["ssh"], "hosts": tuple(raw["ssh"]["hosts"])}),
                schedule=None
                if raw.get("schedule") is None
                else tuple(Step.from_json(s) for s in raw["schedule"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"test.json is not a test's configuration: {exc}") from None

    def to_json(self) -> dict:
        """As written to test.json."""
        out = {"version": TEST_VERSION, **asdict(self)}
        out["store"] = str(self.store)
        out["system"] = {
            "name": self.system.name,
            "description": self.system.describe(),
            "black_box": self.system.black_box,
            **json.loads(json.dumps(out["system"], default=str)),
        }
        return out


@dataclass
class RunResult:
    """Where the run went and what the checkers said."""

    path: Path
    results: dict

    @property
    def valid(self) -> bool | str:
        """The combined verdict."""
        return self.results["valid"]


class DidNotStart(RuntimeError):
    """The system's nodes did not start, or its topics could not be set up: nothing was
    tested (a user's error to fix, not a verdict)."""


def _run_dir(config: TestConfig) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = config.store / config.name / stamp
    n = 1
    while path.exists():
        n += 1
        path = config.store / config.name / f"{stamp}-{n}"
    path.mkdir(parents=True)
    latest = config.store / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(path.resolve())
    return path


async def _execute(config: TestConfig, run: Path, log) -> dict:
    topics = config.workload.topic_names()
    data = run / "data"
    notes: dict = {}
    async with trio.open_nursery() as nursery:
        system = config.system
        cluster = make_cluster(
            config.backend,
            data,
            config.nodes,
            system,
            nursery,
            config.base_image,
            log,
            power_loss=bool(POWER_LOSS & base_faults(fault_names(config.nemesis))),
            ssh=config.ssh,
            keep_data=config.keep_data,
        )
        try:
            log(f"starting {config.nodes} nodes of {system.describe()}")
            try:
                await cluster.start()
                await system.client.setup(cluster.client_address(cluster.nodes[0]), topics, 30.0)
            except Exception as exc:
                raise DidNotStart(f"{system.describe()} did not start: {leaves(exc)[0]}") from exc
            with open(run / "history.jsonl", "w") as out:
                t0 = notes["t0_ns"] = time.monotonic_ns()
                recorder = Recorder(
                    out,
                    lambda: time.monotonic_ns() - t0,
                    Header(system.name, system.black_box, system.client.delivery),
                )
                schedule = Schedule(list(config.schedule or ()), config.seed)
                log(f"running the workload for {config.time_limit:g} s (nemesis: {config.nemesis})")
                async with trio.open_nursery() as run_nursery:
                    run_nursery.start_soon(
                        schedule.run,
                        cluster,
                        recorder,
                        config.time_limit,
                        topics,
                        system.drift_bound,
                    )
                    next_process = await run_workers(
                        cluster, recorder, config.workload, config.time_limit, system.client
                    )
                    notes["workload_end_ns"] = recorder.now()
                await cluster.heal()
                await cluster.reset_clocks()
                for node in cluster.nodes:
                    await cluster.resume(node)
                    await cluster.restart(node)
                log("healed; waiting for the cluster to recover")
                notes["recovered"] = await system.recovered(
                    cluster, topics, config.recovery_timeout, log
                )
                log("draining every topic through every node")
                notes["drained"] = await drain(
                    cluster,
                    recorder,
                    topics,
                    next_process,
                    config.drain_timeout,
                    config.workload.timeout,
                    system.client,
                )
                recorder.flush()
            log("auditing the final state")
            audit_result = await system.audit(cluster, topics)
            (run / "audit.json").write_text(json.dumps(_audit_summary(audit_result), indent=1))
        finally:
            with trio.CancelScope(shield=True):
                tcp = await cluster.tcp_counters()
                await cluster.stop()
                clocks = cluster.host_clocks(notes.get("t0_ns", 0))
                if clocks is not None:
                    (run / "clocks.json").write_text(json.dumps(clocks.to_json()))
                await cluster.collect_logs(run / "nodes")
                _write_links(run, cluster.link_traffic(), notes.get("t0_ns"), tcp)
        nursery.cancel_scope.cancel()
    if not config.keep_data:
        shutil.rmtree(data, ignore_errors=True)
    notes["audit"] = audit_result
    return notes


def _write_links(
    run: Path,
    traffic: list[dict] | None,
    t0_ns: int | None,
    tcp: dict[int, dict[str, int]] | None = None,
) -> None:
    """links.json: per link and second, bytes carried and dropped (seconds from the history's
    start), or why no proxy saw the links; with ``tcp``, each node's TCP counters at the end."""
    if traffic is None or t0_ns is None:
        why = (
            "the workload never started"
            if t0_ns is None
            else "no link proxy of the harness sees this cluster's node-to-node links"
        )
        doc: dict = {"links": None, "why": why}
    else:
        start = t0_ns // 1_000_000_000
        doc = {
            "offset_s": t0_ns / 1e9 - start,
            "links": [
                {
                    **t,
                    **{
                        k: {str(int(s) - start): n for s, n in t[k].items()}
                        for k in ("carried", "dropped")
                    },
                }
                for t in traffic
            ],
        }
    if tcp is not None:
        doc["tcp"] = {str(node): counters for node, counters in sorted(tcp.items())}
    (run / "links.json").write_text(json.dumps(doc))


def _audit_summary(audit_result: dict) -> dict:
    """audit.json: states, per-segment counts and errors (the values stay out: they can be big)."""
    out = dict(audit_result)
    if "segments" in out:
        out["segments"] = {
            t: {s: {k: v for k, v in seg.items() if k != "values"} for s, seg in segs.items()}
            for t, segs in audit_result["segments"].items()
        }
    return out


SSH_CLOCKS = (
    "the nodes ran on hosts over SSH: their event times are each host's own CLOCK_MONOTONIC, "
    "and the run holds no measurement of the hosts' clocks (clocks.json), so their events "
    "cannot be set on one time line"
)
"""Why the lease checker cannot judge an SSH run without measured clocks
(``Evidence.clocks_apart``)."""


def run_test(config: TestConfig, log=print) -> RunResult:
    """Run one test and write its run directory; returns its path and results."""
    faults = fault_names(config.nemesis)
    config = replace(config, system=config.system.for_faults(faults))
    preflight(config.backend, config.base_image, tuple(faults), config.system, config.ssh)
    config.system.preflight(config.backend, faults, config.nodes)
    config.system.build(log)
    run = _run_dir(config)
    if config.backend == "external":
        config = replace(config, workload=replace(config.workload, topic_prefix=f"r{run.name}-t"))
    if config.schedule is None:
        steps = plan(
            faults,
            config.nemesis_interval,
            config.time_limit,
            config.seed,
            node_ids(config),
            config.workload.topic_names(),
        )
        config = replace(config, schedule=tuple(steps))
    (run / "test.json").write_text(json.dumps(config.to_json(), indent=1))
    log(f"run directory: {run}")
    try:
        notes = trio.run(_execute, config, run, log)
    except KeyboardInterrupt:
        interrupted = {"version": RESULTS_VERSION, "valid": "unknown", "error": "interrupted"}
        (run / "results.json").write_text(json.dumps(interrupted))
        raise
    except Exception as exc:  # the run broke off: its directory says why, the verdict is unknown
        first = leaves(exc)[0]
        error = (
            str(first)
            if isinstance(first, DidNotStart)
            else f"the run did not finish: {type(first).__name__}: {first}"
        )
        if not isinstance(first, DidNotStart):  # that one is the caller's to say
            log(error)
        results = {
            "version": RESULTS_VERSION,
            "valid": "unknown",
            "started": not isinstance(first, DidNotStart),
            "error": error,
            "raised_at": raised_at(first),
            "traceback": "".join(traceback.format_exception(first)),
        }
        (run / "results.json").write_text(json.dumps(results, indent=1))
        return RunResult(run, results)
    log("checking")
    loaded = None
    try:
        loaded = columns.load(run / "history.jsonl")
        evidence = Evidence(
            loaded,
            read_nodes(run / "nodes"),
            notes["audit"],
            config.system.lease_s,
            notes["workload_end_ns"],
            config.system.black_box,
            SSH_CLOCKS if config.backend == "ssh" and not (run / "clocks.json").exists() else None,
            HostClocks.read(run / "clocks.json") if (run / "clocks.json").exists() else None,
        )
        results = check_run(evidence)
    except Exception as exc:  # the history or the node logs could not be read at all
        error = f"checking failed: {type(exc).__name__}: {exc}"
        log(error)
        results = {
            "version": RESULTS_VERSION,
            "valid": "unknown",
            "error": error,
            "traceback": traceback.format_exc(),
        }
    if isinstance(config.system, WalrusPy):  # pysyncobj's alarm, in our node's logs only
        results.setdefault("cluster", {})["applied_truncation_lines"] = count_lines(
            run / "nodes", APPLIED_TRUNCATION
        )
    # the host's CLOCK_MONOTONIC at history time 0: node events' true times minus it are run
    # times (shrink places an anomaly's node events among the fault windows with it)
    results["t0_ns"] = notes["t0_ns"]
    results["recovered"] = notes["recovered"]
    results["drained"] = notes["drained"]
    if not notes["recovered"] or not all(notes["drained"].values()):
        results["notes"] = (
            "the cluster did not fully recover or drain after healing: values not "
            "read back are counted as unread, not lost"
        )
    (run / "results.json").write_text(json.dumps(results, indent=1, default=str))
    try:
        write_reports(run, results, notes["workload_end_ns"], loaded)
    except Exception as exc:  # results.json is written; the figures are a view of it
        log(f"the reports could not be drawn: {type(exc).__name__}: {exc}")
    return RunResult(run, results)


APPLIED_TRUNCATION = "truncating already-applied"
"""pysyncobj's CRITICAL line for a follower deleting entries it applied (``walrus/raft.py``)."""


def count_lines(nodes: Path, text: str) -> int:
    """How many lines of the collected ``nodes/*/node.log`` contain ``text``."""
    found = 0
    for path in nodes.glob("*/node.log"):
        with open(path, errors="replace") as f:
            found += sum(text in line for line in f)
    return found


def node_ids(config: TestConfig) -> list[int]:
    """The ids of the cluster's nodes: 1..N, or the external system's members."""
    members = getattr(config.system, "members", None)
    if config.backend == "external" and members is not None:
        return sorted(members())
    return list(range(1, config.nodes + 1))


def relative(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
