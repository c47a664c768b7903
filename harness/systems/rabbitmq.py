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

On the Docker backend each node is a container of an image made like our base with Debian's
``rabbitmq-server`` added (``harness.images``), named with a long name at its address,
``rabbit@<ip>`` (``RABBITMQ_USE_LONGNAME``: nothing to resolve), with the Erlang distribution on a
fixed port (25672, epmd on 4369, AMQP on 5672), so the backend's iptables rules cut every link
between nodes; ``rabbitmqctl`` runs inside the node's container (``Nodes.run``). On a host over
SSH the node is the host's own rabbitmq-server, started the same way.

Faults: partitions (the link proxies; iptables on Docker), kill and pause (signals to the node's
process group: the script, the Erlang VM, epmd; or its container), clock skew (libfaketime,
``harness.systems.faketime``: the Erlang VM reads its clocks through libc; ``+C multi_time_warp``
lets its system time follow the OS's, and the monotonic clock its timers and Raft run on stays
true), power loss of one node, a majority or all (the data directory on losefs), the link faults
of each backend (delay and throttle; on Docker also loss, duplicate, reorder).
"""

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
from harness.systems.base import PROCESS_FAULTS, Command, Launched, Log, Member, Nodes, Unsupported
from harness.tools import TOOLS, require
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

CONTAINER_BIN = Path("/usr/lib/rabbitmq/bin")
"""Where the server script and the CLI are in a node's container (Debian's package)."""

CONTAINER_PORTS = {"client": 5672, "dist": 25672, "epmd": 4369}
"""A container's listeners: RabbitMQ's defaults for AMQP and epmd, the distribution pinned."""

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
    """The Erlang node name of local node ``node``: ``rabbit<i>@localhost`` (each with an epmd
    of its own)."""
    return f"rabbit{node}@localhost"


def is_local(member: Member) -> bool:
    """True if ``member`` runs as a local process (which listens on 127.0.0.1; a container
    listens on its own address)."""
    return member.client.host == "127.0.0.1"


def name_of(member: Member) -> str:
    """The Erlang node name of ``member``: ``node_name`` locally; on a machine of its own (a
    container, a host) a long name at its address, ``rabbit@<ip>``, which every node and CLI
    can reach with no name resolution (``RABBITMQ_USE_LONGNAME``)."""
    return node_name(member.id) if is_local(member) else f"rabbit@{member.client.host}"


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


def ctl_argv(member: Member, *args: str) -> list[str]:
    """``rabbitmqctl -n <node> ARGS`` for ``member``, to run where it runs: on this host
    against its own epmd, never starting one; or in its container."""
    if is_local(member):
        where = Path(require("rabbitmq-server")).with_name(CTL)
        env = [
            f"ERL_EPMD_PORT={member.links['epmd'].port}",
            "RABBITMQ_CTL_ERL_ARGS=-start_epmd false",  # never leave an epmd daemon behind
        ]
        names = []
    else:
        where, env, names = CONTAINER_BIN / CTL, [], ["--longnames"]
    env += ["RABBITMQ_CONF_ENV_FILE=/dev/null", "HOME=/tmp", "ERL_CRASH_DUMP_SECONDS=0"]
    return [
        *("env", *env, str(where), "-n", name_of(member), *names),
        *("--erlang-cookie", COOKIE, *args),
    ]


def _answer(member: Member, args: tuple[str, ...], code: int, out: str, err: str) -> str:
    if code != 0:
        command = next((a for a in args if not a.startswith("-")), "")
        said = (err or out).strip().splitlines()
        raise RuntimeError(f"rabbitmqctl {command} on node {member.id}: {said[-1] if said else ''}")
    return out


async def ctl(cluster: Nodes, node: int, *args: str, timeout: float = 30.0) -> str:
    """``rabbitmqctl ARGS`` against node ``node``, run where it runs; its output, or
    RuntimeError with what it said."""
    member = cluster.members[node]
    ran = await cluster.run(node, ctl_argv(member, *args), timeout)
    return _answer(member, args, ran.code, ran.out, ran.err)


def ctl_here(member: Member, *args: str, timeout: float = 30.0) -> str:
    """``ctl`` for a local node outside a test (blocking; the benchmarks)."""
    try:
        done = subprocess.run(
            ctl_argv(member, *args), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on node {member.id}: no answer") from None
    return _answer(member, args, done.returncode, done.stdout, done.stderr)


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


async def queues(cluster: Nodes, node: int, timeout: float = 30.0) -> list[JsonObject]:
    """Every queue of the cluster as node ``node`` sees it (``QUEUES``)."""
    out = await ctl(cluster, node, "-q", "eval", QUEUES, timeout=timeout)
    rows: list[JsonObject] = json.loads(out.strip().splitlines()[0])
    return rows


def status_json(out: str) -> JsonObject:
    """``cluster_status --formatter json`` output as JSON (``running_nodes``, ``partitions``)."""
    status: JsonObject = json.loads(out)
    return status


async def cluster_status(cluster: Nodes, node: int) -> JsonObject:
    """``cluster_status`` of node ``node``."""
    return status_json(await ctl(cluster, node, "-q", "cluster_status", "--formatter", "json"))


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
    faults: ClassVar[frozenset[str]] = PROCESS_FAULTS | {"clock"}
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
        """Options known; locally, rabbitmq-server and erlc installed (a container has its own
        rabbitmq-server)."""
        super().preflight(backend, faults, nodes)
        if self.queue_type not in QUEUE_TYPES:
            raise Unsupported(f"--queue-type must be one of {', '.join(QUEUE_TYPES)}")
        if self.partition_handling not in PARTITION_HANDLING:
            raise Unsupported(
                f"--partition-handling must be one of {', '.join(PARTITION_HANDLING)}"
            )
        if backend != "local":
            return
        require("rabbitmq-server")
        require("erlc")
        if "clock" in faults:
            require("libfaketime")

    def files(self, names: list[str]) -> dict[str, str]:
        """A node's configuration files (name: content), its peers named ``names``."""
        peers = "".join(
            f"cluster_formation.classic_config.nodes.{k} = {name}\n"
            for k, name in enumerate(names, 1)
        )
        return {
            "enabled_plugins": "[].\n",
            "advanced.config": "[{kernel, [{net_ticktime, 10}]}].\n",
            "rabbitmq.conf": "loopback_users = none\n"
            f"cluster_partition_handling = {self.partition_handling}\n"
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"{peers}"
            "log.console = true\nlog.console.level = info\nlog.file = false\n",
        }

    def env(self, data_dir: Path, faketime_lib: str) -> dict[str, str]:
        """The environment every node has, its files under ``data_dir``."""
        env = {
            "HOME": str(data_dir / "home"),
            "ERL_CRASH_DUMP": str(data_dir / "erl_crash.dump"),  # not the harness's directory
            "RABBITMQ_MNESIA_BASE": str(data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(data_dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(data_dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(data_dir / "advanced.config"),
            "RABBITMQ_CONFIG_FILES": str(data_dir / "conf.d"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(data_dir / "enabled_plugins"),
        }
        if self.faketime:
            env |= faketime.preload(data_dir, faketime_lib)
        return env

    def erl_args(self) -> str:
        """The Erlang VM's extra arguments: one scheduler (three nodes share two cores), and
        an OS-following system time under clock skew."""
        return "+S 1:1" + (" +C multi_time_warp" if self.faketime else "")

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
        for name, text in self.files([node_name(n) for n in sorted(members)]).items():
            (data_dir / name).write_text(text)
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
        env = self.env(data_dir, require("libfaketime") if self.faketime else "") | {
            "ERL_EPMD_PORT": str(epmd),
            "RABBITMQ_NODENAME": node_name(member.id),
            "RABBITMQ_NODE_IP_ADDRESS": member.client.host,
            "RABBITMQ_NODE_PORT": str(member.client.port),
            "RABBITMQ_DIST_PORT": str(member.links["dist"].port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"{self.erl_args()} -pa {ebin} "
            "-epmd_module harness_epmd",
            "HARNESS_DIST_ROUTES": dist_routes,
        }
        return Command(["sh", "-c", script], env)

    def image(self, client: "DockerClient", base: str | None, log: Log) -> str:
        """Our Debian base with Debian's rabbitmq-server added."""
        from harness.images import packaged_image

        return packaged_image(client, base, "rabbitmq-server", log)

    def container_command(self, member: Member, members: dict[int, Member]) -> Command:
        """The node in its container, its files in /data (``_machine_command``)."""
        return self._machine_command(member, members, "/data")

    def _machine_command(self, member: Member, members: dict[int, Member], data: str) -> Command:
        """Write the node's files into ``data``, then ``rabbitmq-server`` as ``rabbit@<ip>`` on
        RabbitMQ's ports (a machine of its own: a container, a host)."""
        files = self.files([name_of(members[n]) for n in sorted(members)])
        script = f"mkdir -p {data}/home {data}/conf.d\n"
        for name, text in files.items():
            script += f"cat > {data}/{name} <<'END'\n{text}END\n"
        script += (
            f"rm -f {data}/home/.erlang.cookie\n"
            f"printf %s {COOKIE} > {data}/home/.erlang.cookie\n"
            f"chmod 400 {data}/home/.erlang.cookie\n"
            f"exec {CONTAINER_BIN / 'rabbitmq-server'}\n"
        )
        env = self.env(Path(data), TOOLS["libfaketime"].candidates[0]) | {
            "RABBITMQ_NODENAME": name_of(member),
            "RABBITMQ_USE_LONGNAME": "true",
            "RABBITMQ_NODE_PORT": str(CONTAINER_PORTS["client"]),
            "RABBITMQ_DIST_PORT": str(CONTAINER_PORTS["dist"]),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": self.erl_args(),
        }
        return Command(["sh", "-c", script], env)

    @property
    def host_needs(self) -> tuple[str, ...]:  # type: ignore[override]
        """Debian's rabbitmq-server; libfaketime too if the clock nemesis will run."""
        return ("rabbitmq-server", "libfaketime") if self.faketime else ("rabbitmq-server",)

    def host_command(self, member: Member, members: dict[int, Member], data_dir: str) -> Command:
        """As in a container, its files in the node's directory on the host (the host's epmd,
        which the server starts if none runs, is stopped with the run's other processes)."""
        return self._machine_command(member, members, data_dir)

    def container_ports(self, node: int) -> dict[str, int]:
        """AMQP 5672, the distribution 25672, epmd 4369."""
        return dict(CONTAINER_PORTS)

    def clock_control(self, offset: float, rate: float) -> tuple[str, bytes] | None:
        """libfaketime's control file (the Erlang VM reads its clocks through libc; with
        ``+C multi_time_warp`` its own system time follows the OS's)."""
        if not self.faketime:
            if (offset, rate) == (0.0, 1.0):
                return None
            raise Unsupported("rabbitmq was started without libfaketime: no clock control")
        return faketime.control(offset, rate)

    def ready(self, member: Member) -> bool:
        """Its AMQP listener accepts connections (it opens last, and closes while paused)."""
        return _listening(member.client)

    async def settle(self, cluster: Nodes, timeout: float) -> None:
        """Every node running in the cluster; then, for mirrored queues, the policy."""
        first = cluster.nodes[0]
        want = {name_of(cluster.members[n]) for n in cluster.nodes}
        deadline = trio.current_time() + timeout
        running: set[str] = set()
        while trio.current_time() < deadline:
            try:
                status = await cluster_status(cluster, first)
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
            await ctl(cluster, first, "set_policy", "ha-all", ".*", policy, "--apply-to", "queues")

    async def recovered(self, cluster: Nodes, topics: list[str], timeout: float, log: Log) -> bool:
        """Every node ready and none reporting a partition; a node that still reports one 15 s
        on has its application restarted, one that has not opened its listener 25 s on is
        restarted whole."""
        members = cluster.members
        deadline = trio.current_time() + timeout
        stuck_since: dict[int, float] = {}
        problems: list[str] = []
        while trio.current_time() < deadline:
            problems = []
            for n in cluster.nodes:
                problem, patience, status_known = None, 15.0, False
                if not await trio.to_thread.run_sync(self.ready, members[n]):
                    problem, patience = f"node {n} not accepting connections", 25.0
                else:
                    status_known = True
                    try:
                        status = await cluster_status(cluster, n)
                    except (RuntimeError, ValueError) as exc:
                        problems.append(str(exc))
                        continue
                    if status.get("partitions"):
                        problem = f"node {n} reports partitions {status['partitions']}"
                if problem is None:
                    stuck_since.pop(n, None)
                    continue
                problems.append(problem)
                since = stuck_since.setdefault(n, trio.current_time())
                if trio.current_time() - since > patience and await cluster.alive(n):
                    stuck_since.pop(n)
                    if status_known:
                        log(f"{problem} {patience:g} s after healing: stop_app, start_app")
                        await self._restart_app(cluster, n, log)
                        continue
                    # A boot stuck after a partition: Erlang's global waiting on a peer
                    # ("Global hang workaround" in the node's log), where stop_app hangs too.
                    log(f"{problem} {patience:g} s after healing: restarting it")
                    await cluster.kill(n)
                    await cluster.restart(n)
            if not problems:
                return True
            await trio.sleep(1.0)
        log(f"recovery incomplete after {timeout:g} s: {'; '.join(problems)}")
        return False

    async def _restart_app(self, cluster: Nodes, node: int, log: Log) -> None:
        """RabbitMQ's documented way out of a partition it did not resolve itself
        ("Clustering and Network Partitions", recovering from a split-brain)."""
        for step in ("stop_app", "start_app"):
            try:
                await ctl(cluster, node, step, timeout=60)
            except RuntimeError as exc:
                log(f"node {node}: {exc}")
                return

    async def audit(self, cluster: Nodes, topics: list[str]) -> JsonObject:
        """Each queue as ``list_queues`` reports it (messages, type, leader, members)."""
        errors = []
        for n in cluster.nodes:
            try:
                rows = await queues(cluster, n)
                return {"states": {}, "queues": rows, "via": n, "errors": []}
            except (RuntimeError, ValueError) as exc:
                errors.append(str(exc))
        return {"states": {}, "queues": [], "errors": errors}

    async def leader(self, cluster: Nodes, topic: str) -> int | None:
        """The node leading the topic's quorum queue, or holding its mirrored queue's master."""
        names = {name_of(cluster.members[n]): n for n in cluster.nodes}
        for n in cluster.nodes:
            try:
                rows = await queues(cluster, n, 5.0)
                leaders = {q["name"]: q.get("leader") for q in rows}
                return names.get(str(leaders.get(topic)))
            except (RuntimeError, ValueError, KeyError):
                continue
        return None

    def node_files(self) -> tuple[str, ...]:
        """The node's log (its console output) and the Erlang VM's crash dump, if it wrote one."""
        return ("node.log", "erl_crash.dump")
