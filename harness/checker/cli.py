"""``walrus-harness check``: the checkers over any history, with the nodes' logs if given."""

import argparse
import json
from pathlib import Path


def add_command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``check`` to the CLI's subparsers ``sub``."""
    check = sub.add_parser("check", help="check a history.jsonl from anywhere")
    check.add_argument("history", help="the history file")
    check.add_argument(
        "--events", help="directory of <node>/events.jsonl (lease and metadata checks)"
    )
    check.add_argument("--audit", help="audit.json with the final STATE of each topic")
    check.add_argument(
        "--clocks",
        help="clocks.json: the hosts' clocks of a run over SSH, which set the events on the "
        "history's time line (default: the one beside the history, if any)",
    )
    check.add_argument("--lease-ms", type=int, default=2000, help="the nodes' lease duration")
    check.add_argument(
        "--black-box",
        action="store_true",
        help="the history came from a black box (plain PUT/GET): checkers that need positions, "
        "node events or an audit do not apply (default: what the history's header says, else "
        "black-box when no acknowledged put has a position)",
    )
    check.add_argument("--out", help="write results.json here")
    check.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from harness.checker.result import checker_results, found
    from harness.checker.suite import Evidence, check_run
    from harness.checker.verdict import EXIT_CODES, WORDS
    from harness.history import HistoryError
    from harness.history.host_clocks import HostClocks
    from harness.history.node_events import read_nodes

    history_path = Path(args.history)
    if not history_path.is_file():
        raise ValueError(f"{history_path}: no such history file")
    events = read_nodes(Path(args.events)) if args.events else None
    audit = None
    audit_path = Path(args.audit) if args.audit else history_path.parent / "audit.json"
    if audit_path.exists():
        audit = {"states": json.loads(audit_path.read_text()).get("states", {})}
    clocks_path = Path(args.clocks) if args.clocks else history_path.parent / "clocks.json"
    try:
        clocks = HostClocks.read(clocks_path) if clocks_path.exists() else None
    except ValueError as exc:
        raise ValueError(f"{clocks_path}: {exc}") from None
    try:
        evidence = Evidence.read(
            history_path,
            events=events,
            audit=audit,
            clocks=clocks,
            lease_s=args.lease_ms / 1000,
            black_box=True if args.black_box else None,
        )
        results = check_run(evidence)
    except HistoryError as exc:
        raise ValueError(f"{history_path}: {exc}") from None
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(WORDS[results["valid"]] + ("  (black box)" if results["black_box"] else ""))
    for name, r in checker_results(results).items():
        print(f"  {name:<8} {WORDS[r['valid']]:<8} {found(r)}")
    return EXIT_CODES[results["valid"]]
