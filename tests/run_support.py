"""Run directories made from simulated operations, as a test run writes them, for the reports and
the results browser: history.jsonl, the nodes' events, audit.json, test.json, then the real
checkers and reports."""

import json
from pathlib import Path

from harness.checker.suite import Evidence, check_run
from harness.history import INF, Op
from harness.history.node_events import parse
from harness.report import write_reports


def write_history(path: Path, ops: list[Op], faults: list[tuple[str, float, float]] = ()) -> dict:
    """Write ``ops`` (and ``faults``: name, start ns, stop ns) as history.jsonl, in time order;
    returns each op's invoke index in the file, by the index it had."""
    lines: list[tuple[float, int, dict, Op | None]] = []
    for n, o in enumerate(ops):
        invoke = {"process": o.process, "type": "invoke", "f": o.f, "topic": o.topic}
        invoke["value"] = o.value if o.f == "put" else None
        lines.append((o.inv, 0, invoke, o))
        done = {"process": o.process, "type": o.type, "f": o.f, "topic": o.topic}
        done["value"] = o.value
        if o.node is not None:
            done["node"] = o.node
        if o.pos is not None:
            done["pos"], done["epoch"] = list(o.pos), o.epoch
        end = o.ret if o.ret != INF else max(x.inv for x in ops) + 1e9 + n
        lines.append((end, 1, done, None))
    for name, start, stop in faults:
        lines.append((start, 0, {"process": "nemesis", "type": "info", "f": f"start-{name}"}, None))
        lines.append((stop, 0, {"process": "nemesis", "type": "info", "f": f"stop-{name}"}, None))
    lines.sort(key=lambda line: (line[0], line[1]))
    moved = {}
    with open(path, "w") as f:
        for index, (time, _, raw, op) in enumerate(lines):
            raw = {"index": index, "time": int(time), **raw}
            raw.setdefault("value", None)
            if op is not None:
                moved[op.invoke_index] = index
            f.write(json.dumps(raw) + "\n")
    return moved


def write_run(
    directory: Path,
    ops: list[Op],
    events: list[dict],
    audit: dict,
    test: dict | None = None,
    faults: list[tuple[str, float, float]] = (),
    lease_s: float = 2.0,
) -> tuple[dict, dict]:
    """A checked run in ``directory``: (its results, the new invoke index of each op)."""
    directory.mkdir(parents=True)
    moved = write_history(directory / "history.jsonl", ops, faults)
    for node in sorted({e["node"] for e in events}):
        log = directory / "nodes" / str(node)
        log.mkdir(parents=True)
        (log / "events.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in events if e["node"] == node)
        )
        (log / "node.log").write_text(f"node {node} started\nnode {node} stopped\n")
    (directory / "audit.json").write_text(json.dumps(audit))
    test = {
        "name": "simulated",
        "backend": "local",
        "nodes": 2,
        "nemesis": "none",
        "seed": 0,
        "system": {"name": "walrus-py", "description": "walrus-py"},
        **(test or {}),
    }
    (directory / "test.json").write_text(json.dumps(test))
    evidence = Evidence.read(
        directory / "history.jsonl", events=[parse(e) for e in events], audit=audit, lease_s=lease_s
    )
    results = check_run(evidence)
    (directory / "results.json").write_text(json.dumps(results))
    write_reports(directory, results, max(o.inv for o in ops))
    return results, moved


def write_store(root: Path) -> dict[str, str]:
    """A store of three simulated runs — one valid, one invalid (a lost write, under a
    partition), one incomplete — and a campaign of two; returns their paths by role."""
    from tests.sensitivity.test_checkers_catch import lose_a_write, simulate

    ops, events, audit = simulate()
    write_run(root / "queue" / "20260101T000000", ops, events, audit)
    ops, events, audit = simulate()
    lose_a_write(ops, events, audit)
    faults = [("partition", 0.3e9, 0.9e9)]
    invalid = root / "queue" / "20260101T000100"
    write_run(invalid, ops, events, audit, {"nemesis": "partition", "seed": 7}, faults)
    incomplete = root / "queue" / "20260101T000200"
    incomplete.mkdir(parents=True)
    (incomplete / "test.json").write_text(json.dumps({"name": "queue", "nemesis": "kill"}))
    campaign = root / "campaign-20260102T000000"
    for slug, bug in (("none-seed1", None), ("partition-seed1", lose_a_write)):
        ops, events, audit = simulate()
        if bug:
            bug(ops, events, audit)
        write_run(campaign / slug / "20260102T000000", ops, events, audit, {"name": slug})
    (campaign / "summary.csv").write_text(
        "nemesis,seed,verdict,anomalies,ops,acked_put_per_s,availability,run\n"
        "none,1,VALID,-,21,1.0,1.000,none-seed1/20260102T000000\n"
        "partition,1,INVALID,lost=1 VOrd=1,20,1.0,1.000,partition-seed1/20260102T000000\n"
    )
    return {
        "valid": "queue/20260101T000000",
        "invalid": "queue/20260101T000100",
        "incomplete": "queue/20260101T000200",
        "campaign": "campaign-20260102T000000",
    }
