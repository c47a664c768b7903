"""Breadth-first exploration of the model: every reachable state, every invariant in each.

``python -m spec.explore --config CONFIG`` (``spec.model.CONFIGS``) enumerates the states
reachable from the initial ones (distinct states, by hash), checks every invariant of
``spec.model`` in each, and stops at the first violation with the shortest trace that reaches
it, printed step by step in words. Without a violation it then checks the liveness property on
the explored graph: from every state where no fault is in effect, a path without faults leads
to every acknowledged value being read (backward reachability from the goal states). Exit
status 0 when everything holds, 1 with a counterexample, 2 on bad arguments.
"""

import argparse
import itertools
import sys
import time
from array import array
from collections import deque
from dataclasses import dataclass, fields, replace

from spec import model
from spec.model import Config, State


@dataclass
class Outcome:
    """What an exploration found: the counts, and a violation with its trace if any."""

    states: int
    transitions: int
    depth: int
    seconds: float
    violated: str | None = None
    reason: str | None = None
    trace: list[str] | None = None
    actions: list[str] | None = None

    @property
    def ok(self) -> bool:
        """True if every invariant (and the liveness property, if checked) holds."""
        return self.violated is None


def _path(parent: array, last: int) -> list[int]:
    path = [last]
    while parent[path[-1]] >= 0:
        path.append(parent[path[-1]])
    path.reverse()
    return path


def _counterexample(
    outcome: Outcome, states: list[State], parent: array, label: list, last: int, cfg: Config
) -> Outcome:
    path = _path(parent, last)
    outcome.actions = [label[j][0] for j in path[1:]]
    outcome.trace = [describe_initial(cfg, states[path[0]])] + [
        describe(cfg, label[j], states[i], states[j]) for i, j in itertools.pairwise(path)
    ]
    return outcome


def explore(
    cfg: Config,
    invariants=model.INVARIANTS,
    liveness: bool = True,
) -> Outcome:
    """Explore every state of ``cfg`` reachable within its bounds; check ``invariants`` in each
    and, if they all hold, the liveness property."""
    started = time.monotonic()
    states: list[State] = []
    index: dict[State, int] = {}
    parent = array("q")
    depth = array("H")
    label: list = []
    edges_from, edges_to = array("q"), array("q")
    queue: deque[int] = deque()

    def add(s: State, p: int, lbl) -> tuple[int, bool]:
        known = index.get(s)
        if known is not None:
            return known, False
        i = len(states)
        index[s] = i
        states.append(s)
        parent.append(p)
        depth.append(0 if p < 0 else depth[p] + 1)
        label.append(lbl)
        queue.append(i)
        return i, True

    def check(i: int) -> Outcome | None:
        for inv in invariants:
            reason = inv(cfg, states[i])
            if reason is not None:
                found = Outcome(
                    len(states),
                    len(edges_from),
                    depth[i],
                    time.monotonic() - started,
                    inv.__name__,
                    reason,
                )
                return _counterexample(found, states, parent, label, i, cfg)
        return None

    for s in model.init_states(cfg):
        i, new = add(s, -1, None)
        if new and (bad := check(i)):
            return bad
    while queue:
        i = queue.popleft()
        for lbl, nxt in model.successors(cfg, states[i]):
            if not model.within_bounds(cfg, nxt):
                continue
            j, new = add(nxt, i, lbl)
            if lbl[0] not in model.FAULTS:
                edges_from.append(i)
                edges_to.append(j)
            if new and (bad := check(j)):
                return bad
    outcome = Outcome(len(states), len(edges_from), max(depth), time.monotonic() - started)
    if liveness:
        stuck = _liveness(states, edges_from, edges_to)
        if stuck is not None:
            outcome.violated = "EventuallyAllRead"
            outcome.reason = (
                "from this state, with every node up and connected, no sequence of steps without "
                "faults reads every acknowledged value"
            )
            _counterexample(outcome, states, parent, label, stuck, cfg)
        outcome.seconds = time.monotonic() - started
    return outcome


def _liveness(states: list[State], edges_from: array, edges_to: array) -> int | None:
    """The first (shallowest) healed state from which no fault-free path reaches a state where
    every acknowledged value has been read, or None."""
    preds: list[list[int]] = [[] for _ in states]
    for a, b in zip(edges_from, edges_to, strict=True):
        preds[b].append(a)
    good = bytearray(len(states))
    work = [i for i, s in enumerate(states) if model.all_read(s)]
    for i in work:
        good[i] = 1
    while work:
        j = work.pop()
        for i in preds[j]:
            if not good[i]:
                good[i] = 1
                work.append(i)
    for i, s in enumerate(states):
        if not good[i] and model.healed(s):
            return i
    return None


# --- words ------------------------------------------------------------------------------------


def _node(n: int) -> str:
    return f"node {n + 1}"


def describe_initial(cfg: Config, s: State) -> str:
    """The initial state in words."""
    rates = ", ".join(f"{_node(n)} at {r}" for n, r in enumerate(s.rate))
    return (
        f"start: {cfg.nodes} nodes, no topic yet; clocks advance per tick: {rates} "
        f"(a renew holds for {cfg.hold}, a takeover waits {cfg.wait})"
    )


_PLAIN = {
    "Elect": "{node} becomes the metadata leader",
    "CommitRenew": "{node}'s renew commits",
    "Crash": "{node} crashes",
    "Wipe": "{node} crashes and loses its disk (it restarts knowing its copies are gone)",
    "Restart": "{node} restarts",
    "Isolate": "{node} is partitioned from the other nodes and the metadata",
    "Heal": "{node}'s partition heals",
}


def describe(cfg: Config, lbl: tuple, a: State, b: State) -> str:
    """One step in words, from its action label and the states before and after."""
    name, args = lbl
    n = args[0] if args else None
    if name in _PLAIN:
        return _PLAIN[name].format(node=_node(n))
    if name == "Tick":
        leases = ", ".join(f"{_node(i)} {left}" for i, left in enumerate(b.lease))
        return f"time passes (tick {b.now}); lease left: {leases}"
    if name == "Create":
        return f"{_node(n)} registers the topic; segment 1 opens on {_node(b.meta.segs[0].leader)}"
    if name == "ApplyLog":
        cmds = ", ".join(_command(c) for c in a.log[a.applied[n] :])
        extra = ""
        if b.lease[n] > a.lease[n]:
            extra = f"; its lease now holds for {b.lease[n]} on its clock"
        return f"{_node(n)} applies {cmds}{extra}"
    if name == "BeginPut":
        v = next(v for v, p in enumerate(b.puts, 1) if p is not None and a.puts[v - 1] is None)
        p = b.puts[v - 1]
        return f"PUT {v} at {_node(n)}: sequenced at segment {p.seg} offset {p.offset}"
    if name == "FinishPut":
        v = args[1]
        p = b.puts[v - 1]
        extra = " and proposes a rollover" if len(b.log) > len(a.log) else ""
        return f"{_node(n)} acknowledges PUT {v} (segment {p.seg} offset {p.offset}){extra}"
    if name == "SealForRollover":
        seg = min(b.rolling[n] - a.rolling[n])
        return f"{_node(n)} seals segment {seg} locally to roll it over"
    if name in ("ProposeRollover", "Takeover", "ReportCount"):
        return f"{_node(n) if name != 'Takeover' else 'the leader'} commits {_command(b.log[-1])}"
    if name == "SealHere":
        return f"{_node(n)} seals segment {args[1]} locally, as the metadata says"
    if name == "Replicate":
        f = args[1]
        g = len(a.view[n].segs)
        return f"{_node(n)} sends {_node(f)} entry {len(a.store[f][g - 1].entries)} of segment {g}"
    if name == "SealFromReplicas":
        return f"the leader seals segment {args[0]} from its replicas: {_command(b.log[-1])}"
    if name == "Repair":
        return f"{_node(n)} repairs its copy of segment {args[1]} from another replica"
    if name == "Get":
        if len(b.delivered) > len(a.delivered):
            return f"GET at {_node(n)} returns value {b.delivered[-1]}"
        if len(b.log) > len(a.log):
            cmd = _command(b.log[-1])
            return f"GET at {_node(n)} finds the segment read to its end; commits {cmd}"
        return f"GET at {_node(n)} returns EMPTY"
    return f"{name}{args}"


def _command(cmd: tuple) -> str:
    kind = cmd[0]
    if kind == "create":
        return "create(topic)"
    if kind == "renew":
        return f"renew(node {cmd[1] + 1})"
    if kind == "rollover":
        return f"rollover(segment {cmd[1]}, epoch {cmd[2]}, count {cmd[3]})"
    if kind == "takeover":
        return f"takeover(node {cmd[1] + 1})"
    if kind == "report":
        return f"report_count(segment {cmd[1]}, count {cmd[2]})"
    return f"advance_cursor(from segment {cmd[1]})"


# --- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m spec.explore",
        description="Explore the model of spec/WalrusLease.tla breadth-first and check it.",
    )
    p.add_argument(
        "--config",
        choices=sorted(model.CONFIGS),
        default="safe",
        help="safe: the code's design; compat: --compat walrus; drift: a clock "
        "beyond the drift bound; replicated, replicated-r1: segments on 3 and 1 replicas with "
        "one disk loss (default: safe)",
    )
    for f in fields(Config):
        if f.type in (int, "int"):
            p.add_argument(
                f"--{f.name.replace('_', '-')}",
                type=int,
                metavar="N",
                help=f"override the configuration's {f.name}",
            )
    p.add_argument(
        "--invariant",
        action="append",
        metavar="NAME",
        choices=[inv.__name__ for inv in model.INVARIANTS],
        help="check only this invariant (repeatable; default: all)",
    )
    p.add_argument("--no-liveness", action="store_true", help="skip the liveness check")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the explorer; exit 0 if everything holds, 1 with a counterexample."""
    args = _parser().parse_args(argv)
    cfg = model.CONFIGS[args.config]
    overrides = {
        f.name: getattr(args, f.name)
        for f in fields(Config)
        if f.type in (int, "int") and getattr(args, f.name) is not None
    }
    if any(v < 0 for v in overrides.values()):
        print("explore: bounds must be >= 0", file=sys.stderr)
        return 2
    cfg = replace(cfg, **overrides)
    invariants = [
        inv for inv in model.INVARIANTS if not args.invariant or inv.__name__ in args.invariant
    ]
    outcome = explore(cfg, invariants, liveness=not args.no_liveness)
    print(
        f"config {args.config}: {outcome.states} distinct states, {outcome.transitions} "
        f"fault-free transitions, depth {outcome.depth}, {outcome.seconds:.1f} s"
    )
    if outcome.ok:
        names = ", ".join(inv.__name__ for inv in invariants)
        print(f"every state satisfies {names}")
        if not args.no_liveness:
            print(
                "EventuallyAllRead holds: from every state without faults in effect, steps "
                "without faults read every acknowledged value"
            )
        return 0
    print(f"VIOLATED {outcome.violated}: {outcome.reason}")
    for k, step in enumerate(outcome.trace):
        print(f"{k:3d}. {step}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
