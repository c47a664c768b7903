"""``rabbitmq``: Debian's rabbitmq-server 3.10, three clustered nodes, quorum or mirrored queues.

Each node is ``rabbitmq-server`` (the script in ``/usr/lib/rabbitmq/bin``, not the Debian wrapper
in ``/usr/sbin``, which switches to the ``rabbitmq`` user and its home) with its own data, config
and epmd (the Erlang port mapper, on a port of its own, started in the node's process group so
that nothing outlives it), clustered by classic-config peer discovery. The Erlang distribution
links between nodes go through the local backend's link proxies: each node runs with a small
``-epmd_module`` (``EPMD_MODULE``, compiled once with ``erlc``) that answers "where is node T"
with the proxy from this node to T, so a partition cuts the real links while the CLI, which asks
epmd, reaches every node directly (nodes' distribution ports are pinned, ``RABBITMQ_DIST_PORT``).
``net_ticktime`` is 10 s, so a cut link is noticed in 10-15 s rather than a minute, and
``cluster_partition_handling`` is ``pause_minority`` by default, as RabbitMQ recommends.

Topics are durable queues (``harness.clients.rabbitmq``): quorum queues (Raft), or classic queues
mirrored on every node by an ``ha-mode: all`` policy with automatic synchronisation. A node is
ready when it accepts AMQP connections (its listener opens last, and is closed while
``pause_minority`` holds it); the cluster is settled when every node runs in it. Recovery after
the faults heal: every node ready and none still reporting a partition — a node that does (as
after a long SIGSTOP, which ``pause_minority`` does not handle: RabbitMQ's "Clustering and Network
Partitions", suspend and resume) has its application restarted (``stop_app``, ``start_app``),
RabbitMQ's documented way out, and the run's log says so.

Faults: partitions (the link proxies), kill and pause (signals to the node's process group: the
script, the Erlang VM, epmd), clock skew (libfaketime, ``harness.systems.faketime``: the Erlang VM
reads its clocks through libc; ``+C multi_time_warp`` lets its system time follow the OS's, and
the monotonic clock its timers and Raft run on stays true), power loss of one node, a majority
or all (the data directory on losefs), the local link faults. Not yet: the Docker backend.
"""

import functools
import hashlib
import json
import os
import socket
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import trio

from harness.clients.rabbitmq import QUEUE_TYPES, RabbitMQ
from harness.systems import faketime
from harness.systems.base import Command, Launched, Log, Member, Nodes, Unsupported
from harness.tools import require
from walrus.config import Address
from walrus.protocol import JsonObject

if TYPE_CHECKING:
    from docker import DockerClient

PARTITION_HANDLING = ("pause_minority", "autoheal", "ignore")
"""RabbitMQ's ``cluster_partition_handling`` modes the harness offers."""

COOKIE = "WALRUSHARNESSCOOKIE"
"""The Erlang cookie every node and the CLI share (a test cluster's, on the loopback only)."""

CTL = "rabbitmqctl"
"""The CLI, beside the server script (``/usr/lib/rabbitmq/bin``)."""

EPMD_MODULE = """\
%% Where a node finds its peers: at the harness's link proxies (HARNESS_DIST_ROUTES,
%% "name@host=ip:port,..."), every other question to the real epmd.
-module(harness_epmd).
-export([start_link/0, register_node/2, register_node/3, listen_port_please/2,
         port_please/2, port_please/3, address_please/3, names/0, names/1]).

start_link() -> erl_epmd:start_link().
register_node(Name, Port) -> erl_epmd:register_node(Name, Port).
register_node(Name, Port, Family) -> erl_epmd:register_node(Name, Port, Family).
listen_port_please(Name, Host) -> erl_epmd:listen_port_please(Name, Host).
names() -> erl_epmd:names().
names(Host) -> erl_epmd:names(Host).
port_please(Name, Host) -> port_please(Name, Host, infinity).
port_please(Name, Host, Timeout) ->
    case route(Name) of
        {ok, _Ip, Port} -> {port, Port, 6};
        error -> erl_epmd:port_please(Name, Host, Timeout)
    end.
address_please(Name, Host, Family) ->
    case route(Name) of
        {ok, Ip, Port} -> {ok, Ip, Port, 6};
        error -> erl_epmd:address_please(Name, Host, Family)
    end.

route(Name) -> find(text(Name), string:tokens(os:getenv("HARNESS_DIST_ROUTES", ""), ",")).

find(_, []) -> error;
find(Name, [Route | Rest]) ->
    [Node, Where] = string:split(Route, "="),
    [Short | _] = string:split(Node, "@"),
    case Short =:= Name of
        true ->
            [Ip, Port] = string:split(Where, ":", trailing),
            {ok, Addr} = inet:parse_address(Ip),
            {ok, Addr, list_to_integer(Port)};
        false -> find(Name, Rest)
    end.

text(Name) when is_atom(Name) -> atom_to_list(Name);
text(Name) -> Name.
"""


def node_name(node: int) -> str:
    """The Erlang node name of node ``node``."""
    return f"rabbit{node}@localhost"


def epmd_module_dir(log: Log) -> Path:
    """Where ``harness_epmd.beam`` is, compiled from ``EPMD_MODULE`` once per version of it."""
    digest = hashlib.sha256(EPMD_MODULE.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("WALRUS_HARNESS_CACHE", Path.home() / ".cache/walrus-harness"))
    out = cache / f"rabbitmq-epmd-{digest}"
    if not (out / "harness_epmd.beam").exists():
        out.mkdir(parents=True, exist_ok=True)
        (out / "harness_epmd.erl").write_text(EPMD_MODULE)
        log("compiling the nodes' epmd module (erlc)")
        done = subprocess.run(
            [require("erlc"), "-o", str(out), str(out / "harness_epmd.erl")],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"erlc could not compile the epmd module: {done.stderr.strip()}")
    return out


def ctl(member: Member, *args: str, timeout: float = 30.0) -> str:
    """``rabbitmqctl -n <node> ARGS`` against ``member`` (its own epmd); its output, or
    RuntimeError with what it said."""
    server = Path(require("rabbitmq-server"))
    env = {
        **os.environ,
        "ERL_EPMD_PORT": str(member.links["epmd"].port),
        "RABBITMQ_CONF_ENV_FILE": "/dev/null",
        "RABBITMQ_CTL_ERL_ARGS": "-start_epmd false",  # never leave an epmd daemon behind
        "HOME": "/tmp",
    }
    argv = [str(server.with_name(CTL)), "-n", node_name(member.id), "--erlang-cookie", COOKIE]
    try:
        done = subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on node {member.id}: no answer") from None
    command = next((a for a in args if not a.startswith("-")), "")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"rabbitmqctl {command} on node {member.id}: {said[-1] if said else ''}")
    return done.stdout


QUEUES = (
    'io:format("~s~n", [rabbit_json:encode([#{'
    "name => element(4, amqqueue:get_name(Q)), type => amqqueue:get_type(Q), "
    "leader => case amqqueue:get_pid(Q) of {_, N} -> N; P -> node(P) end, "
    "members => case amqqueue:get_type(Q) of rabbit_quorum_queue -> "
    "maps:get(nodes, amqqueue:get_type_state(Q), []); _ -> [node(P) || P <- "
    "[amqqueue:get_pid(Q) | amqqueue:get_sync_slave_pids(Q)]] end, "
    "messages => proplists:get_value(messages, rabbit_amqqueue:info(Q, [messages]))"
    "} || Q <- rabbit_amqqueue:list()])])."
)
"""An expression for ``rabbitmqctl eval`` that prints every queue as JSON: its name, type,
leader (a quorum queue's) or master (a classic queue's) node, members (a classic queue's: the
master and its synchronised mirrors) and messages. Evaluated on
the one node the CLI asks (``list_queues`` would have every node answer the CLI directly, and a
node finds the CLI only through its own epmd, where the CLI is not registered)."""


def queues(member: Member, timeout: float = 30.0) -> list[JsonObject]:
    """Every queue of the cluster as ``member`` sees it (``QUEUES``)."""
    out = ctl(member, "-q", "eval", QUEUES, timeout=timeout)
    rows: list[JsonObject] = json.loads(out.strip().splitlines()[0])
    return rows


def cluster_status(member: Member) -> JsonObject:
    """``cluster_status`` of ``member`` as JSON (``running_nodes``, ``partitions``...)."""
    status: JsonObject = json.loads(ctl(member, "-q", "cluster_status", "--formatter", "json"))
    return status


def _listening(address: Address) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=2):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Rabbit(Launched):
    """A RabbitMQ cluster of Debian's rabbitmq-server."""

    queue_type: str = "quorum"
    """``quorum`` or ``mirrored`` (a classic queue under an ``ha-mode: all`` policy)."""
    partition_handling: str = "pause_minority"
    """RabbitMQ's ``cluster_partition_handling``."""
    faketime: bool = False
    """Preload libfaketime (the clock nemesis needs it)."""

    name: ClassVar[str] = "rabbitmq"
    faults: ClassVar[frozenset[str]] = frozenset(
        {
            "partition",
            "kill",
            "pause",
            "clock",
            "lose-unsynced",
            "lose-unsynced-all",
            "lose-unsynced-majority",
            "delay",
            "throttle",
        }
    )
    why_not: ClassVar[dict[str, str]] = {
        "loss": "packet faults need the Docker backend, not built yet for rabbitmq",
        "duplicate": "packet faults need the Docker backend, not built yet for rabbitmq",
        "reorder": "packet faults need the Docker backend, not built yet for rabbitmq",
    }
    link_names: ClassVar[tuple[str, ...]] = ("dist",)
    listener_names: ClassVar[tuple[str, ...]] = ("epmd",)

    @property
    def client(self) -> RabbitMQ:
        """Publisher confirms, ``basic.get`` and manual acks, on the queue type chosen."""
        return RabbitMQ(self.queue_type)

    def describe(self) -> str:
        """rabbitmq, its queue type and partition handling."""
        return f"rabbitmq ({self.queue_type} queues, {self.partition_handling})"

    def for_faults(self, faults: list[str]) -> "Rabbit":
        """This system with libfaketime preloaded if the clock nemesis will run."""
        return replace(self, faketime="clock" in faults)

    def preflight(self, backend: str, faults: list[str], nodes: int) -> None:
        """rabbitmq-server and erlc installed, the local backend, options known."""
        super().preflight(backend, faults, nodes)
        if backend != "local":
            raise Unsupported(f"rabbitmq runs on the local backend only so far, not {backend}")
        if self.queue_type not in QUEUE_TYPES:
            raise Unsupported(f"--queue-type must be one of {', '.join(QUEUE_TYPES)}")
        if self.partition_handling not in PARTITION_HANDLING:
            raise Unsupported(
                f"--partition-handling must be one of {', '.join(PARTITION_HANDLING)}"
            )
        require("rabbitmq-server")
        require("erlc")
        if "clock" in faults:
            require("libfaketime")

    def build(self, log: Log) -> None:
        """Compile the epmd module the nodes find their peers with."""
        epmd_module_dir(log)

    def local_command(
        self,
        member: Member,
        members: dict[int, Member],
        data_dir: Path,
        routes: dict[int, dict[str, Address]],
    ) -> Command:
        """``rabbitmq-server`` after its own epmd, with its files written into ``data_dir``."""
        home = data_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if cookie.exists():
            cookie.chmod(0o600)
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)
        (data_dir / "conf.d").mkdir(exist_ok=True)
        (data_dir / "enabled_plugins").write_text("[].\n")
        (data_dir / "advanced.config").write_text("[{kernel, [{net_ticktime, 10}]}].\n")
        peers = "".join(
            f"cluster_formation.classic_config.nodes.{k} = {node_name(n)}\n"
            for k, n in enumerate(sorted(members), 1)
        )
        (data_dir / "rabbitmq.conf").write_text(
            "loopback_users = none\n"
            f"cluster_partition_handling = {self.partition_handling}\n"
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"{peers}"
            "log.console = true\nlog.console.level = info\nlog.file = false\n"
        )
        epmd = member.links["epmd"].port
        dist_routes = ",".join(
            f"{node_name(peer)}={via['dist'].host}:{via['dist'].port}"
            for peer, via in sorted(routes.items())
        )
        ebin = epmd_module_dir(lambda _: None)
        server = require("rabbitmq-server")
        script = (
            f"{require('epmd')} -port {epmd} -address 127.0.0.1 &\n"
            "n=0\n"
            f"until {require('epmd')} -port {epmd} -names >/dev/null 2>&1; do\n"
            '  n=$((n+1)); [ "$n" -lt 200 ] || { echo "epmd did not start" >&2; exit 1; }\n'
            "  sleep 0.05\n"
            "done\n"
            f"exec {server}\n"
        )
        env = {
            "HOME": str(home),
            "ERL_EPMD_PORT": str(epmd),
            "RABBITMQ_NODENAME": node_name(member.id),
            "RABBITMQ_NODE_IP_ADDRESS": member.client.host,
            "RABBITMQ_NODE_PORT": str(member.client.port),
            "RABBITMQ_DIST_PORT": str(member.links["dist"].port),
            "RABBITMQ_MNESIA_BASE": str(data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(data_dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(data_dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(data_dir / "advanced.config"),
            "RABBITMQ_CONFIG_FILES": str(data_dir / "conf.d"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(data_dir / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"+S 1:1 -pa {ebin} -epmd_module harness_epmd"
            + (" +C multi_time_warp" if self.faketime else ""),
            "HARNESS_DIST_ROUTES": dist_routes,
        }
        if self.faketime:
            env |= faketime.preload(data_dir, require("libfaketime"))
        return Command(["sh", "-c", script], env)

    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """Refused: no Docker image for rabbitmq yet."""
        raise Unsupported("rabbitmq runs on the local backend only so far")

    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """Refused: no Docker image for rabbitmq yet."""
        raise Unsupported("rabbitmq runs on the local backend only so far")

    def container_ports(self, node: int) -> dict[str, int]:
        """Refused: no Docker image for rabbitmq yet."""
        raise Unsupported("rabbitmq runs on the local backend only so far")

    def set_clock(self, data_dir: Path, offset: float, rate: float) -> None:
        """Steer libfaketime's control file (the Erlang VM reads its clocks through libc; with
        ``+C multi_time_warp`` its own system time follows the OS's)."""
        if not self.faketime:
            if (offset, rate) == (0.0, 1.0):
                return
            raise Unsupported("rabbitmq was started without libfaketime: no clock control")
        faketime.steer(data_dir, offset, rate)

    def ready(self, member: Member) -> bool:
        """Its AMQP listener accepts connections (it opens last, and closes while paused)."""
        return _listening(member.client)

    async def settle(self, cluster: Nodes, timeout: float) -> None:
        """Every node running in the cluster; then, for mirrored queues, the policy."""
        first = cluster.members[cluster.nodes[0]]
        want = {node_name(n) for n in cluster.nodes}
        deadline = trio.current_time() + timeout
        running: set[str] = set()
        while trio.current_time() < deadline:
            try:
                status = await trio.to_thread.run_sync(cluster_status, first)
                running = set(status.get("running_nodes", []))
            except (RuntimeError, ValueError):
                running = set()
            if running >= want:
                break
            await trio.sleep(1.0)
        else:
            raise RuntimeError(f"the cluster did not form: running {sorted(running)}")
        if self.queue_type == "mirrored":
            policy = json.dumps({"ha-mode": "all", "ha-sync-mode": "automatic"})
            await trio.to_thread.run_sync(
                lambda: ctl(first, "set_policy", "ha-all", ".*", policy, "--apply-to", "queues")
            )

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """Every node ready and none reporting a partition; a node that still does after a
        while has its application restarted."""
        members = cluster.members
        deadline = trio.current_time() + timeout
        split_since: dict[int, float] = {}
        problems: list[str] = []
        while trio.current_time() < deadline:
            problems = []
            for n in cluster.nodes:
                if not await trio.to_thread.run_sync(self.ready, members[n]):
                    problems.append(f"node {n} not accepting connections")
                    continue
                try:
                    status = await trio.to_thread.run_sync(cluster_status, members[n])
                except (RuntimeError, ValueError) as exc:
                    problems.append(str(exc))
                    continue
                if status.get("partitions"):
                    problems.append(f"node {n} reports partitions {status['partitions']}")
                    since = split_since.setdefault(n, trio.current_time())
                    if trio.current_time() - since > 15:
                        log(f"node {n} still partitioned after healing: stop_app, start_app")
                        for step in ("stop_app", "start_app"):
                            await trio.to_thread.run_sync(functools.partial(ctl, members[n], step))
                        split_since.pop(n)
                else:
                    split_since.pop(n, None)
            if not problems:
                return True
            await trio.sleep(1.0)
        log(f"recovery incomplete after {timeout:g} s: {'; '.join(problems)}")
        return False

    async def audit(self, cluster: Nodes, topics: list[str]) -> JsonObject:
        """Each queue as ``list_queues`` reports it (messages, type, leader, members)."""
        errors = []
        for n in cluster.nodes:
            try:
                rows = await trio.to_thread.run_sync(queues, cluster.members[n])
                return {"states": {}, "queues": rows, "via": n, "errors": []}
            except (RuntimeError, ValueError) as exc:
                errors.append(str(exc))
        return {"states": {}, "queues": [], "errors": errors}

    async def leader(self, cluster: Nodes, topic: str) -> int | None:
        """The node leading the topic's quorum queue, or holding its mirrored queue's master."""
        names = {node_name(n): n for n in cluster.nodes}
        for n in cluster.nodes:
            member = cluster.members[n]
            try:
                rows = await trio.to_thread.run_sync(functools.partial(queues, member, 5.0))
                leaders = {q["name"]: q.get("leader") for q in rows}
                return names.get(str(leaders.get(topic)))
            except (RuntimeError, ValueError, KeyError):
                continue
        return None

    def node_files(self) -> tuple[str, ...]:
        """The node's log (its console output)."""
        return ("node.log",)
