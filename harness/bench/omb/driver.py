"""The benchmark driver: producers and consumers in processes of their own, measured OMB's way.

A *phase* runs producers at a target rate (or unthrottled) and consumers for warm-up plus
duration. Each producer slot sends on a schedule — message k is *intended* at t0 + k/rate — with
up to ``WINDOW`` publishes in flight on its connection; when the system falls behind, sends go
out late and the lateness is recorded as *publish delay* (actual minus intended send time), so
coordinated omission shows instead of hiding in a closed loop. Latencies go to HdrHistograms
(publish latency: send to acknowledgement; end-to-end: send to consumption, from the time each
payload carries), recorded after the warm-up only; counts go to 1-second windows (published,
publish errors, consumed) from which the backlog follows.

Worker processes (``PRODUCER_PROCESSES`` and ``CONSUMER_PROCESSES``) report their windows and
encoded histograms back over a pipe, and the coordinator merges them.
"""

import asyncio
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from harness.bench.omb.adapters import Adapter, PublishError, payload, sent_at
from harness.raised import raised_at

WINDOW = 16
"""Publishes in flight per producer connection."""
PRODUCER_PROCESSES = 2
CONSUMER_PROCESSES = 1
QUIET_NS = 500_000_000
"""A draining consumer stops once nothing has arrived for this long."""
HIST_MAX_US = 120_000_000
PERCENTILES = {"p50": 50.0, "p99": 99.0, "p999": 99.9, "p9999": 99.99}


def new_histogram() -> HdrHistogram:
    """Microseconds from 1 µs to 120 s, 3 significant digits."""
    return HdrHistogram(1, HIST_MAX_US, 3)


def quantiles_ms(h: HdrHistogram) -> dict[str, float | None]:
    """p50, p99, p99.9, p99.99 and max in ms (None when nothing was recorded)."""
    if h.get_total_count() == 0:
        return {**{k: None for k in PERCENTILES}, "max": None}
    out = {k: h.get_value_at_percentile(p) / 1000 for k, p in PERCENTILES.items()}
    out["max"] = h.get_max_value() / 1000
    return out


CURVE = (0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999)
"""The percentiles of a latency curve (OMB's ``aggregated...LatencyQuantiles``)."""


def curve_ms(h: HdrHistogram) -> list[list[float]]:
    """[percentile, ms] at every ``CURVE`` percentile and 100 (max); empty if nothing recorded."""
    if h.get_total_count() == 0:
        return []
    out = [[p, h.get_value_at_percentile(p) / 1000] for p in CURVE]
    return [*out, [100.0, h.get_max_value() / 1000]]


@dataclass(frozen=True)
class Slot:
    """One producer or consumer: its topic and how to connect (picklable)."""

    kind: str
    topic: str
    address: object
    options: dict = field(default_factory=dict)
    index: int = 0


def make_adapter(slot: Slot) -> Adapter:
    """The adapter for a slot's system kind."""
    from harness.bench.omb import adapters

    if slot.kind == "walrus":
        return adapters.WalrusAdapter(slot.address, slot.topic)
    if slot.kind == "redis":
        host, port = slot.address
        return adapters.RedisAdapter(host, port, slot.topic, f"c{slot.index}")
    if slot.kind == "nats":
        return adapters.NatsAdapter(slot.address, slot.topic, slot.options.get("replicas", 1))
    if slot.kind == "amqp":
        return adapters.AmqpAdapter(slot.address, slot.topic)
    raise ValueError(f"unknown system kind {slot.kind!r}")


@dataclass(frozen=True)
class Fault:
    """A fault that begins ``at_s`` seconds into a phase and ends ``down_s`` later (a node
    killed and started again, or cut off and healed)."""

    at_s: float
    down_s: float
    begin: Callable[[], None]
    end: Callable[[], None]


def _nemesis(fault: Fault, t0_ns: int, done: threading.Event, log: list) -> None:
    for action, at in ((fault.begin, fault.at_s), (fault.end, fault.at_s + fault.down_s)):
        if done.wait(max(0.0, (t0_ns + at * 1e9 - time.monotonic_ns()) / 1e9)):
            return
        action()
        log.append((time.monotonic_ns() - t0_ns) / 1e9)


@dataclass(frozen=True)
class Plan:
    """What one worker process does in a phase (picklable)."""

    role: str  # producer | consumer
    slots: tuple[Slot, ...]
    t0_ns: int
    warmup_s: float
    duration_s: float
    rate_per_slot: float  # messages/s; math.inf: as fast as the window allows
    message_size: int = 100
    limit_per_slot: int | None = None  # stop after this many (backlog building)
    drain_s: float = 0.0  # consumers go on this long at most after the producers stop


class _Stats:
    def __init__(self, seconds: int) -> None:
        self.published = [0] * seconds
        self.errors = [0] * seconds
        self.consumed = [0] * seconds
        self.latency = new_histogram()
        self.delay = new_histogram()
        self.e2e = new_histogram()
        self.first_error = ""

    def bucket(self, now_ns: int, t0_ns: int) -> int:
        return min(len(self.published) - 1, max(0, (now_ns - t0_ns) // 1_000_000_000))

    def report(self) -> dict:
        return {
            "published": self.published,
            "errors": self.errors,
            "consumed": self.consumed,
            "latency": self.latency.encode(),
            "delay": self.delay.encode(),
            "e2e": self.e2e.encode(),
            "first_error": self.first_error,
        }


async def _produce(slot: Slot, plan: Plan, stats: _Stats, end_ns: int, warm_ns: int) -> None:
    adapter = make_adapter(slot)
    await adapter.connect()
    window = asyncio.Semaphore(WINDOW)
    pending: set[asyncio.Task] = set()
    k = 0

    async def one(data: bytes, intended: int) -> None:
        send = time.monotonic_ns()
        try:
            await adapter.publish(data)
        except PublishError as exc:
            stats.errors[stats.bucket(time.monotonic_ns(), plan.t0_ns)] += 1
            stats.first_error = stats.first_error or str(exc)[:200]
        else:
            done = time.monotonic_ns()
            stats.published[stats.bucket(done, plan.t0_ns)] += 1
            if intended >= warm_ns:
                stats.latency.record_value(max(1, (done - send) // 1000))
                stats.delay.record_value(max(1, (send - intended) // 1000))
        finally:
            window.release()

    try:
        while plan.limit_per_slot is None or k < plan.limit_per_slot:
            now = time.monotonic_ns()
            if math.isinf(plan.rate_per_slot):
                intended = now
            else:
                intended = plan.t0_ns + int(k * 1e9 / plan.rate_per_slot)
                if intended > now:
                    await asyncio.sleep((intended - now) / 1e9)
            if intended >= end_ns or time.monotonic_ns() >= end_ns:
                break
            await window.acquire()
            data = payload(plan.message_size, slot.index, k)
            task = asyncio.create_task(one(data, intended))
            pending.add(task)
            task.add_done_callback(pending.discard)
            k += 1
        if pending:
            await asyncio.wait(pending, timeout=30)
    finally:
        await adapter.close()


async def _consume(slot: Slot, plan: Plan, stats: _Stats, end_ns: int, warm_ns: int) -> None:
    adapter = make_adapter(slot)
    await adapter.connect()
    drain_end_ns, last_ns = end_ns + int(plan.drain_s * 1e9), end_ns
    try:
        while (now := time.monotonic_ns()) < end_ns or (
            now < drain_end_ns and now - last_ns < QUIET_NS
        ):
            try:
                got = await adapter.receive()
            except PublishError:
                await asyncio.sleep(0.01)
                continue
            now = time.monotonic_ns()
            if not got:
                await asyncio.sleep(0.001)
                continue
            last_ns = now
            stats.consumed[stats.bucket(now, plan.t0_ns)] += len(got)
            for message in got:
                sent = sent_at(message)
                if sent >= warm_ns:
                    stats.e2e.record_value(max(1, (now - sent) // 1000))
    finally:
        await adapter.close()


async def _run(plan: Plan) -> dict:
    seconds = math.ceil(plan.warmup_s + plan.duration_s) + 1
    stats = _Stats(seconds)
    end_ns = plan.t0_ns + int((plan.warmup_s + plan.duration_s) * 1e9)
    warm_ns = plan.t0_ns + int(plan.warmup_s * 1e9)
    work = _produce if plan.role == "producer" else _consume
    await asyncio.gather(*(work(slot, plan, stats, end_ns, warm_ns) for slot in plan.slots))
    return stats.report()


def _worker(plan: Plan, conn) -> None:
    try:
        conn.send(("ok", asyncio.run(_run(plan))))
    except BaseException as exc:  # reported to the coordinator, which says it in one line
        conn.send(("error", f"{type(exc).__name__}: {exc} (in {raised_at(exc)})"))
    finally:
        conn.close()


@dataclass
class Phase:
    """What one phase measured, merged over every worker."""

    target_rate: float
    warmup_s: float
    duration_s: float
    published: list[int]
    errors: list[int]
    consumed: list[int]
    latency: HdrHistogram
    delay: HdrHistogram
    e2e: HdrHistogram
    first_error: str = ""
    label: str = ""
    fault_s: tuple[float, ...] = ()
    """When the fault began and ended, in seconds from the phase's start."""

    @property
    def measured(self) -> slice:
        """The whole 1-second windows after the warm-up and before the phase ends (a window
        the phase only partly covers would read as a lower rate)."""
        start = math.ceil(self.warmup_s)
        return slice(start, max(start + 1, math.floor(self.warmup_s + self.duration_s)))

    @property
    def measured_s(self) -> int:
        """How many seconds ``measured`` spans."""
        return self.measured.stop - self.measured.start

    @property
    def publish_rate(self) -> float:
        """Messages acknowledged per second, after the warm-up."""
        return sum(self.published[self.measured]) / self.measured_s

    @property
    def consume_rate(self) -> float:
        """Messages consumed per second, after the warm-up."""
        return sum(self.consumed[self.measured]) / self.measured_s

    @property
    def publish_errors(self) -> int:
        """Publishes that failed, over the whole phase."""
        return sum(self.errors)

    def backlog(self) -> list[int]:
        """Published minus consumed, at the end of every second."""
        out, level = [], 0
        for p, c in zip(self.published, self.consumed, strict=True):
            level += p - c
            out.append(level)
        return out


def prepare(slots: list[Slot]) -> None:
    """Create every topic the slots use, once each, before any worker starts."""

    async def main() -> None:
        for slot in {slot.topic: slot for slot in slots}.values():
            adapter = make_adapter(slot)
            await adapter.connect()
            try:
                await adapter.prepare()
            finally:
                await adapter.close()

    asyncio.run(main())


def run_phase(
    producers: list[Slot],
    consumers: list[Slot],
    rate: float,
    warmup_s: float,
    duration_s: float,
    message_size: int,
    limit_per_producer: int | None = None,
    fault: Fault | None = None,
    drain_s: float = 0.0,
) -> Phase:
    """Run producers at ``rate`` messages/s in all (math.inf: unthrottled) and consumers; their
    measurements merged. With ``drain_s`` the consumers go on after the producers stop, until
    nothing arrived for QUIET_NS or ``drain_s`` passed (what they take then counts in the last
    second). RuntimeError with the first worker's error if one failed."""
    prepare(producers + consumers)
    ctx = multiprocessing.get_context("spawn")
    t0 = time.monotonic_ns() + 1_500_000_000  # every process started and connected by then
    per_slot = rate / max(1, len(producers))
    plans = []
    for role, slots, count in (
        ("producer", producers, PRODUCER_PROCESSES),
        ("consumer", consumers, CONSUMER_PROCESSES),
    ):
        for k in range(min(count, len(slots))):
            plans.append(
                Plan(
                    role,
                    tuple(slots[k::count]),
                    t0,
                    warmup_s,
                    duration_s,
                    per_slot,
                    message_size,
                    limit_per_producer,
                    drain_s,
                )
            )
    procs = []
    for plan in plans:
        here, there = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(plan, there), daemon=True)
        proc.start()
        there.close()
        procs.append((proc, here))
    done, fault_log = threading.Event(), []
    nemesis = None
    if fault is not None:
        nemesis = threading.Thread(target=_nemesis, args=(fault, t0, done, fault_log), daemon=True)
        nemesis.start()
    reports, errors = [], []
    for proc, conn in procs:
        try:
            kind, value = conn.recv()
        except EOFError:
            kind, value = "error", f"a worker process died (exit {proc.exitcode})"
        (reports if kind == "ok" else errors).append(value)
        proc.join(30)
    done.set()
    if nemesis is not None:
        nemesis.join()
        if len(fault_log) == 1:  # the phase ended while the node was down
            fault.end()
    if errors:
        raise RuntimeError(f"benchmark worker failed: {errors[0]}")
    seconds = max(len(r["published"]) for r in reports)
    merged = {k: [0] * seconds for k in ("published", "errors", "consumed")}
    hists = {k: new_histogram() for k in ("latency", "delay", "e2e")}
    for r in reports:
        for k in merged:
            for i, v in enumerate(r[k]):
                merged[k][i] += v
        for k, h in hists.items():
            h.decode_and_add(r[k])
    first_error = next((r["first_error"] for r in reports if r["first_error"]), "")
    return Phase(
        rate,
        warmup_s,
        duration_s,
        **merged,
        **hists,
        first_error=first_error,
        fault_s=tuple(fault_log),
    )
