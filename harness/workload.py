"""The queue workload, the final drain and the storage audit.

C worker slots share T topics. Each slot talks to one fixed node (slot k to node k mod N, so
every node is exercised and forwarding is tested) and issues, at random intervals averaging
C/rate seconds, a ``PUTX`` of a value unique in the whole test or a ``GETX``. A timeout or a lost
connection makes the operation ``info`` and retires the process: the slot carries on as process
``p + C`` (DESIGN §4). The choice of operations, topics and pauses comes from a generator seeded
per slot, so the same seed gives the same schedule.
"""

import random
from dataclasses import dataclass

import trio

from harness.cluster.base import Cluster
from harness.history import Recorder
from walrus.client import AsyncClient, Client, DefiniteError, IndeterminateError, WalrusError


@dataclass(frozen=True)
class WorkloadConfig:
    """The workload's shape."""

    concurrency: int = 6
    topics: int = 2
    rate: float = 200.0
    put_ratio: float = 0.5
    timeout: float = 10.0
    seed: int = 0

    def topic_names(self) -> list[str]:
        """The topics used."""
        return [f"t{i}" for i in range(self.topics)]


async def _operate(
    client: AsyncClient,
    recorder: Recorder,
    process: int,
    f: str,
    topic: str,
    value: str | None,
    via: int,
) -> bool:
    """Run one operation and record it; False if its outcome is unknown (process retires)."""
    tag = None if f == "put" else f"{process}.{recorder.now()}"
    recorder.record(process, "invoke", f, topic, value, **({"tag": tag} if tag else {}))
    try:
        if f == "put":
            placed = await client.putx(topic, value)
            recorder.record(
                process,
                "ok",
                f,
                topic,
                value,
                pos=[placed.segment, placed.offset],
                node=placed.node,
                epoch=placed.epoch,
                via=via,
            )
        else:
            entry = await client.getx(topic, tag)
            if entry is None:
                recorder.record(process, "ok", f, topic, None, via=via)
            else:
                recorder.record(
                    process,
                    "ok",
                    f,
                    topic,
                    entry.payload.decode("utf-8", "replace"),
                    pos=[entry.segment, entry.offset],
                    via=via,
                )
    except IndeterminateError as exc:
        recorder.record(process, "info", f, topic, value, via=via, error=str(exc))
        return False
    except DefiniteError as exc:
        recorder.record(process, "fail", f, topic, value, via=via, error=str(exc))
    return True


async def run_workers(
    cluster: Cluster, recorder: Recorder, config: WorkloadConfig, seconds: float
) -> int:
    """Run the workload for ``seconds``; returns the next free process number."""
    deadline = trio.current_time() + seconds
    topics = config.topic_names()
    last = [0] * config.concurrency

    async def worker(slot: int) -> None:
        rng = random.Random(f"{config.seed}/worker/{slot}")
        via = cluster.nodes[slot % len(cluster.nodes)]
        process, seq = slot, 0
        mean = config.concurrency / config.rate
        host, port = cluster.client_address(via)
        async with AsyncClient(host, port, config.timeout) as client:
            while True:
                pause = rng.uniform(0, 2 * mean)
                topic = rng.choice(topics)
                put = rng.random() < config.put_ratio
                if trio.current_time() + pause >= deadline:
                    break
                await trio.sleep(pause)
                seq += 1
                value = f"{process}-{seq}" if put else None
                if not await _operate(
                    client, recorder, process, "put" if put else "get", topic, value, via
                ):
                    process += config.concurrency
        last[slot] = process

    async with trio.open_nursery() as nursery:
        for slot in range(config.concurrency):
            nursery.start_soon(worker, slot)
    return max(last) + config.concurrency


async def register_topics(cluster: Cluster, topics: list[str], timeout: float = 30.0) -> None:
    """REGISTER every topic (retrying definite failures until ``timeout``)."""
    host, port = cluster.client_address(cluster.nodes[0])
    with trio.fail_after(timeout):
        for topic in topics:
            while True:
                try:
                    await trio.to_thread.run_sync(_register, host, port, topic)
                    break
                except WalrusError:
                    await trio.sleep(0.2)


def _register(host: str, port: int, topic: str) -> None:
    with Client(host, port, timeout=5) as c:
        c.register(topic)


async def drain(
    cluster: Cluster,
    recorder: Recorder,
    topics: list[str],
    first_process: int,
    timeout: float,
    op_timeout: float,
) -> dict[str, bool]:
    """GETX every topic through every node in turn until each node in a row answers EMPTY.

    The drain's operations are part of the history (they consume values). Returns, per topic,
    whether it was drained.
    """
    process = first_process
    drained = {}
    deadline = trio.current_time() + timeout
    for topic in topics:
        in_a_row, turn = 0, 0
        while in_a_row < len(cluster.nodes) and trio.current_time() < deadline:
            via = cluster.nodes[turn % len(cluster.nodes)]
            turn += 1
            host, port = cluster.client_address(via)
            async with AsyncClient(host, port, op_timeout) as client:
                before = len(recorder.events)
                known = await _operate(client, recorder, process, "get", topic, None, via)
            last = recorder.events[before + 1]
            if not known:
                process += 1
                in_a_row = 0
            elif last.type == "ok" and last.value is None:
                in_a_row += 1
            elif last.type == "ok":
                in_a_row = 0
            else:
                in_a_row = 0
                await trio.sleep(0.2)
        drained[topic] = in_a_row >= len(cluster.nodes)
    return drained


async def audit(cluster: Cluster, topics: list[str], page: int = 10_000) -> dict:
    """STATE of each topic and a non-destructive SCAN of every segment it has."""
    out: dict = {"states": {}, "segments": {}, "errors": []}
    for topic in topics:
        for via in cluster.nodes:
            host, port = cluster.client_address(via)
            try:
                state = await trio.to_thread.run_sync(_state, host, port, topic)
                break
            except WalrusError as exc:
                out["errors"].append(f"STATE {topic} via node {via}: {exc}")
        else:
            continue
        out["states"][topic] = state
        segments = {}
        for segment in range(1, state["current_segment"] + 1):
            try:
                segments[str(segment)] = await trio.to_thread.run_sync(
                    _scan_all, host, port, topic, segment, page
                )
            except WalrusError as exc:
                out["errors"].append(f"SCAN {topic} segment {segment}: {exc}")
        out["segments"][topic] = segments
    return out


def _state(host: str, port: int, topic: str) -> dict:
    with Client(host, port, timeout=10) as c:
        return c.state(topic)


def _scan_all(host: str, port: int, topic: str, segment: int, page: int) -> dict:
    values: list[str] = []
    with Client(host, port, timeout=30) as c:
        while True:
            chunk = c.scan(topic, segment, len(values), page)
            values += chunk["entries"]
            if len(values) >= chunk["stored"] or not chunk["entries"]:
                return {
                    "node": chunk["node"],
                    "stored": chunk["stored"],
                    "state": chunk["state"],
                    "count": chunk["count"],
                    "values": values,
                }
