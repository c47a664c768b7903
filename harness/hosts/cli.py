"""``walrus-harness hosts``: the machines a run over SSH would use."""

import argparse

import trio

from harness.cluster.ssh import clean_script
from harness.remote.base import Remote, RemoteError
from harness.remote.needs import BASIC, NEEDS, check_hosts
from harness.remote.ssh import SshRemote, hosts_of, ssh_options


def _check(args: argparse.Namespace) -> int:
    needs = list(BASIC) + [n for n in (args.needs or "").split(",") if n]
    remotes: list[Remote] = list(hosts_of(args).remotes())

    async def main() -> list[str]:
        try:
            reports = await check_hosts(remotes, needs)
        finally:
            for remote in remotes:
                await remote.aclose()
        return [r.line() for r in reports] + (
            [] if all(r.ready for r in reports) else ["not ready"]
        )

    lines = trio.run(main)
    for line in lines:
        print(line)
    return 1 if lines[-1] == "not ready" else 0


def _clean(args: argparse.Namespace) -> int:
    remotes = hosts_of(args).remotes()
    said: dict[str, str] = {}

    async def one(remote: SshRemote) -> None:
        try:
            counts = dict(
                line.split()
                for line in (await remote.check(["sh", "-c", clean_script()], 120.0)).splitlines()
                if len(line.split()) == 2
            )
            said[remote.name] = (
                f"{remote.name}: killed {counts.get('processes', '?')} processes, unmounted "
                f"{counts.get('mounts', '?')} mounts, removed {counts.get('rules', '?')} rules "
                f"and {counts.get('runs', '?')} run directories"
            )
        except RemoteError as exc:
            said[remote.name] = f"{exc} (not cleaned)"
        finally:
            await remote.aclose()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for remote in remotes:
                nursery.start_soon(one, remote)

    trio.run(main)
    for remote in remotes:
        print(said[remote.name])
    return 0 if all(not line.endswith("(not cleaned)") for line in said.values()) else 1


def add_command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``hosts`` and its subcommands to the CLI's subparsers ``sub``."""
    hosts = sub.add_parser("hosts", help="the machines of a run over SSH")
    hsub = hosts.add_subparsers(dest="hosts_command", required=True)
    check = hsub.add_parser(
        "check", help="whether each host is reachable and has what the harness needs there"
    )
    ssh_options(check)
    check.add_argument(
        "--needs",
        help=f"needs besides {', '.join(BASIC)}, comma-separated: "
        f"{', '.join(n for n in NEEDS if n not in BASIC)}",
    )
    check.set_defaults(run=_check)
    clean = hsub.add_parser(
        "clean",
        help="remove everything of ours from each host (after a run that was killed): "
        "processes, mounts, iptables rules, run directories — of every run there",
    )
    ssh_options(clean)
    clean.set_defaults(run=_clean)
