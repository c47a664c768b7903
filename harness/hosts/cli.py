"""``walrus-harness hosts``: the machines a run over SSH would use."""

import argparse

import trio

from harness.remote.base import Remote
from harness.remote.needs import BASIC, NEEDS, check_hosts
from harness.remote.ssh import KNOWN_HOSTS, SshHosts


def ssh_options(p: argparse.ArgumentParser) -> None:
    """``--hosts``, ``--ssh-key`` and ``--known-hosts``."""
    p.add_argument(
        "--hosts", required=True, help="comma-separated [user@]host[:port], one per node"
    )
    p.add_argument("--ssh-key", help="the private key to log in with (default: the agent's)")
    p.add_argument(
        "--known-hosts",
        choices=KNOWN_HOSTS,
        default="strict",
        help="host keys: strict (only hosts already known; default), accept-new (record a new "
        "host, refuse a changed key), off (check nothing: throwaway test machines only)",
    )


def hosts_of(args: argparse.Namespace) -> SshHosts:
    """The hosts ``--hosts``, ``--ssh-key`` and ``--known-hosts`` name."""
    hosts = tuple(h.strip() for h in args.hosts.split(",") if h.strip())
    return SshHosts(hosts, args.ssh_key, args.known_hosts)


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
