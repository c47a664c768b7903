"""The queue workload and the final drain.

C worker slots share T topics. Each slot talks to one fixed node (slot k to node k mod N, so
every node is exercised and forwarding is tested) and issues, at random intervals averaging
C/rate seconds, a put of a value unique in the whole test or a get, in the system's dialect
(``harness.clients``: ``PUTX``/``GETX`` for this repository's node, plain ``PUT``/``GET`` for a
black box, whatever the system's client speaks). A timeout
or a lost connection makes the operation ``info`` and retires the process: the slot carries on as
process ``p + C`` (``docs/design.md`` §4). The choice of operations, topics and pauses comes from
a generator seeded per slot, so the same seed gives the same schedule.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass

import trio

from harness.clients.base import Client, Session
from harness.cluster.base import Cluster
from harness.history import Event, Recorder


@dataclass(frozen=True)
class WorkloadConfig:
    """The workload's shape."""

    concurrency: int = 6
    topics: int = 2
    rate: float = 200.0
    put_ratio: float = 0.5
    timeout: float = 10.0
    seed: int = 0

    topic_prefix: str = "t"
    """Topics are named prefix0, prefix1...: a cluster that outlives the test (external) gets
    a prefix of its own per run, so no run reads another's values."""

    def topic_names(self) -> list[str]:
        """The topics used."""
        return [f"{self.topic_prefix}{i}" for i in range(self.topics)]


async def _operate(
    session: Session,
    recorder: Recorder,
    process: int,
    f: str,
    topic: str,
    value: str | None,
    via: int,
    tags_gets: bool,
) -> bool:
    """Run one operation through the system's client and record it; False if its outcome is
    unknown (the process retires)."""
    tag = f"{process}.{recorder.now()}" if f == "get" and tags_gets else None
    recorder.record(process, "invoke", f, topic, value, **({"tag": tag} if tag else {}))
    if f == "put":
        assert value is not None
        outcome = await session.put(topic, value)
    else:
        outcome = await session.get(topic, tag)
    recorded = value if f == "put" else outcome.value
    recorder.record(process, outcome.type, f, topic, recorded, **outcome.extra, via=via)
    return outcome.type != "info"


def operation_plan(config: WorkloadConfig, slot: int) -> Iterator[tuple[float, str, bool]]:
    """What worker ``slot`` does, endlessly: (pause before it, topic, put?) per operation, from
    a generator seeded by the workload's seed and the slot, so the same seed plans the same."""
    rng = random.Random(f"{config.seed}/worker/{slot}")
    topics = config.topic_names()
    mean = config.concurrency / config.rate
    while True:
        pause = rng.uniform(0, 2 * mean)
        topic = rng.choice(topics)
        yield pause, topic, rng.random() < config.put_ratio


async def run_workers(
    cluster: Cluster, recorder: Recorder, config: WorkloadConfig, seconds: float, client: Client
) -> int:
    """Run the workload for ``seconds``; returns the next free process number."""
    deadline = trio.current_time() + seconds
    last = [0] * config.concurrency

    async def worker(slot: int) -> None:
        via = cluster.nodes[slot % len(cluster.nodes)]
        process, seq = slot, 0
        async with client.session(cluster.client_address(via), config.timeout) as session:
            for pause, topic, put in operation_plan(config, slot):
                if trio.current_time() + pause >= deadline:
                    break
                await trio.sleep(pause)
                seq += 1
                value = f"{process}-{seq}" if put else None
                f = "put" if put else "get"
                known = await _operate(
                    session, recorder, process, f, topic, value, via, client.tags_gets
                )
                if not known:
                    process += config.concurrency
        last[slot] = process

    async with trio.open_nursery() as nursery:
        for slot in range(config.concurrency):
            nursery.start_soon(worker, slot)
    return max(last) + config.concurrency


def quiet_from(events: list[Event]) -> float:
    """The time (ns) of the last get whose outcome is unknown or the last fault, whichever is
    later: a value handed out then and never acknowledged may come back until the system's
    redelivery time after it (0 if neither happened)."""
    for e in reversed(events):
        if e.process == "nemesis" or (e.f == "get" and e.type == "info"):
            return float(e.time)
    return 0.0


async def drain(
    cluster: Cluster,
    recorder: Recorder,
    topics: list[str],
    first_process: int,
    timeout: float,
    op_timeout: float,
    client: Client,
) -> dict[str, bool]:
    """Get from every topic through every node in turn until each node in a row answers EMPTY
    and, for a system that delivers at least once, until no value handed out unseen can still
    come back: its redelivery time has passed since the last get whose outcome is unknown and
    the last fault (``quiet_from``).

    The drain's operations are part of the history (they consume values). Returns, per topic,
    whether it was drained.
    """
    process = first_process
    drained = {}
    deadline = trio.current_time() + timeout
    redelivery = client.delivery.redelivery_s
    quiet = quiet_from(recorder.events)
    for topic in topics:
        in_a_row, turn, settled = 0, 0, False
        while trio.current_time() < deadline and not (in_a_row >= len(cluster.nodes) and settled):
            if in_a_row >= len(cluster.nodes):
                await trio.sleep(0.5)  # drained, but a value handed out unseen may come back
            via = cluster.nodes[turn % len(cluster.nodes)]
            turn += 1
            async with client.session(cluster.client_address(via), op_timeout) as session:
                before = len(recorder.events)
                known = await _operate(
                    session, recorder, process, "get", topic, None, via, client.tags_gets
                )
            invoked, last = recorder.events[before], recorder.events[before + 1]
            if not known:
                process += 1
                in_a_row, quiet = 0, float(last.time)
            elif last.type == "ok" and last.value is None:
                in_a_row += 1
                settled = redelivery is None or invoked.time > quiet + redelivery * 1e9
            elif last.type == "ok":
                in_a_row = 0
            else:
                in_a_row = 0
                await trio.sleep(0.2)
        drained[topic] = in_a_row >= len(cluster.nodes) and settled
    return drained
