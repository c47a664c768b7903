"""The checker benchmark: how long ``check`` takes on a large history of a correct queue.

The history is synthetic but shaped like a real one: ``processes`` clients each running one
operation at a time with random durations, over several topics, on a queue that really is FIFO
(each operation takes effect at a random instant inside its interval), with a sprinkling of
operations whose outcome is unknown. The timing covers reading and pairing the file into
columns, the queue and totals checkers each, and then everything ``walrus-harness check`` does
(every checker through the registry, the anomalies' operations read back, the results).
"""

import json
import random
import time
from collections import deque
from pathlib import Path

from harness.checker import queue, totals
from harness.checker.suite import Evidence, check_run
from harness.history import columns


def generate(
    path: Path,
    operations: int,
    processes: int = 64,
    topics: int = 8,
    info_rate: float = 0.001,
    seed: int = 1,
) -> None:
    """Write a history of ``operations`` operations of a correct queue to ``path``."""
    rng = random.Random(seed)
    ops = []
    clock = [0] * processes
    for i in range(operations):
        p = i % processes
        inv = clock[p] + rng.randint(10_000, 200_000)
        ret = inv + rng.randint(50_000, 5_000_000)
        clock[p] = ret
        kind = "put" if rng.random() < 0.5 else "get"
        point = inv + rng.random() * (ret - inv)
        ops.append((point, i, p, kind, rng.randrange(topics), inv, ret))
    ops.sort()
    queues = [deque() for _ in range(topics)]
    events = []
    proc_id = list(range(processes))
    for _, i, p, kind, topic, inv, ret in ops:
        value = None
        if kind == "put":
            value = f"{i}"
            queues[topic].append(value)
        elif queues[topic]:
            value = queues[topic].popleft()
        events.append((inv, i, p, kind, topic, value, "invoke"))
        events.append((ret, i, p, kind, topic, value, "info" if rng.random() < info_rate else "ok"))
    events.sort()
    retired = set()
    with open(path, "w") as f:
        for n, (t, i, p, kind, topic, value, type_) in enumerate(events):
            process = proc_id[p]
            line = {
                "index": n,
                "time": t,
                "process": process,
                "type": type_,
                "f": kind,
                "topic": f"t{topic}",
                "value": value if (kind == "put" or type_ == "ok") else None,
            }
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
            if type_ == "info":
                retired.add(i)
                proc_id[p] += processes


def run(operations: int, path: Path | None = None) -> dict:
    """Generate (unless ``path`` exists) and time the check; the measurements."""
    path = path or Path(f"/tmp/walrus-bench-history-{operations}.jsonl")
    if not path.exists():
        t = time.perf_counter()
        generate(path, operations)
        generated = time.perf_counter() - t
    else:
        generated = None
    t0 = time.perf_counter()
    c = columns.load(path).ops
    t1 = time.perf_counter()
    q = queue.check(c)
    t2 = time.perf_counter()
    tot = totals.check(c)
    t3 = time.perf_counter()
    operations = len(c)
    del c
    results = check_run(Evidence.read(path))
    t4 = time.perf_counter()
    return {
        "operations": operations,
        "file_mb": path.stat().st_size / 1e6,
        "generate_s": generated,
        "load_s": t1 - t0,
        "queue_s": t2 - t1,
        "totals_s": t3 - t2,
        "total_s": t3 - t0,
        "check_s": t4 - t3,
        "check_valid": results["valid"],
        "queue_valid": q.valid,
        "totals_valid": tot.valid,
    }
