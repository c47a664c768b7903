"""The systems a comparison starts on this machine, and tears down after.

Each is started fresh in a temporary directory for one (system, variant) and stopped when its
workloads are done, whatever happened:

- ``null``: a Walrus-protocol server that acknowledges every PUT at once and answers every GET
  ``EMPTY`` — the driver's own ceiling is measured against it;
- ``walrus-py``: this repository's node, 3 nodes (fsync each / none);
- ``walrus-rs``: the original Walrus, 3 nodes, built from a source tree (``harness.systems``);
- ``redis``: one redis-server, AOF with ``appendfsync always`` / ``everysec``;
- ``nats``: three nats-server processes clustered with JetStream on file storage; streams with 3
  replicas or 1. Debian's nats-server 2.9 acknowledges before its write reaches the disk (it syncs
  every two minutes by default), so its variants are labelled ``sync=none``;
- ``rabbitmq``: three rabbitmq-server nodes clustered (``harness.systems.rabbitmq``, their
  distribution links direct), quorum queues: a confirm comes once a majority of the queue's Raft
  members wrote the message to their logs and fsynced them (RabbitMQ 3.10, "Quorum Queues",
  data safety).
"""

import asyncio
import contextlib
import multiprocessing
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.bench.omb import cut
from harness.bench.omb.adapters import quiet
from harness.cluster.local import free_base_port
from harness.systems.base import Launched, Member
from harness.tools import require
from walrus.client import Client, WalrusError
from walrus.cluster import stop_processes
from walrus.config import Address


@dataclass
class Endpoint:
    """How the driver reaches a started system: its client kind, an address per node, and
    per-topic routing (Walrus: the node that leads the topic)."""

    kind: str
    addresses: list
    options: dict = field(default_factory=dict)

    def address_for(self, topic_index: int, leader=None):
        """Where a client of the topic connects: Walrus, a list of node addresses to try in
        turn (the topic's leader first when known, else spread by topic); NATS, the server
        list; Redis, its one address; RabbitMQ, every node, starting with one spread by
        topic."""
        if self.kind == "nats":
            return self.addresses
        if self.kind == "redis":
            return self.addresses[0]
        if self.kind == "amqp":
            n = len(self.addresses)
            return [self.addresses[(topic_index + i) % n] for i in range(n)]
        first = self.addresses.index(leader) if leader in self.addresses else topic_index
        n = len(self.addresses)
        return [self.addresses[(first + i) % n] for i in range(n)]


@dataclass
class Process:
    """One process of a started system, with what it takes to start it again."""

    argv: list[str]
    log: Path
    env: dict = field(default_factory=dict)
    popen: subprocess.Popen | None = None

    def start(self) -> int:
        """Start (or start again, keeping its files); the process id."""
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        return self.popen.pid


class Server:
    """A started system; ``stop`` frees everything. Its nodes run in cgroups of their own where
    the machine allows (``cut``), so that one can be cut off from the others."""

    endpoint: Endpoint

    def __init__(self) -> None:
        self.nodes: dict[str, Process] = {}
        self.helpers: list[multiprocessing.Process] = []
        self.peer_ports: dict[str, list[int]] = {}
        """Per node, the ports its peers reach it on (none for a one-process system)."""
        self._cut = None if cut.unavailable() else cut.Cut(f"walrus-bench-{os.getpid()}-{id(self)}")

    def spawn(self, name: str, argv: list[str], log: Path, env: dict | None = None) -> None:
        """Start a node process named ``name``."""
        self.nodes[name] = Process(argv, log, env or {})
        self._start(name)

    def _start(self, name: str) -> None:
        pid = self.nodes[name].start()
        if self._cut is not None:
            self._cut.place(name, pid)

    def leader(self, topic: str) -> str | None:
        """The node that leads ``topic`` (what ``kill-leader`` kills); None if unknown."""
        return next(iter(self.nodes), None)

    def kill(self, name: str) -> None:
        """SIGKILL one node (its files stay)."""
        popen = self.nodes[name].popen
        if popen is not None and popen.poll() is None:
            popen.kill()
            popen.wait()

    def restart(self, name: str) -> None:
        """Start a killed node again on its files."""
        self._start(name)

    def uncuttable(self) -> str | None:
        """Why ``isolate`` cannot work here, or None if it can."""
        if len(self.peer_ports) < 2:
            return "it runs as one process: there is no link between nodes to cut"
        return cut.unavailable() if self._cut is None else None

    def isolate(self, name: str) -> None:
        """Cut one node off from the others (clients still reach every node)."""
        why = self.uncuttable()
        if why is not None:
            raise RuntimeError(why)
        self._cut.isolate(name, self.peer_ports)

    def heal(self) -> None:
        """Undo ``isolate``."""
        if self._cut is not None:
            self._cut.heal()

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 10 s)."""
        for proc in self.helpers:
            if proc.is_alive():
                proc.terminate()
        stop_processes([n.popen for n in self.nodes.values() if n.popen is not None])
        deadline = time.monotonic() + 10
        for proc in self.helpers:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
        if self._cut is not None:
            self._cut.remove()


def _wait(what: str, check, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:g} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- null ------------------------------------------------------------------------------------


class _NullProtocol(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out, pos = bytearray(), 0
        while len(buf) - pos >= 4:
            n = int.from_bytes(buf[pos : pos + 4], "little")
            if len(buf) - pos - 4 < n:
                break
            verb = bytes(buf[pos + 4 : pos + 7])
            out += b"\x05\x00\x00\x00EMPTY" if verb == b"GET" else b"\x02\x00\x00\x00OK"
            pos += 4 + n
        del buf[:pos]
        self.transport.write(out)


def _serve_null(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_NullProtocol, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


class NullServer(Server):
    """Acknowledges everything at once; consumers find nothing."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        port = _free_port()
        proc = multiprocessing.get_context("spawn").Process(
            target=_serve_null, args=(port,), daemon=True
        )
        proc.start()
        self.helpers = [proc]
        self.endpoint = Endpoint("walrus", [("127.0.0.1", port)])
        _wait("the null server", lambda: _answers("127.0.0.1", port), 20)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- Walrus (ours and the original) ------------------------------------------------------------


class LaunchedServer(Server):
    """N nodes of a launched system as local processes, started in its boot stages; ready once a
    probe topic takes a PUT through every node."""

    def __init__(self, root: Path, system: Launched, nodes: int = 3, log=print) -> None:
        super().__init__()
        system.preflight("local", [], nodes)
        system.build(lambda m: log(f"  {m}"))
        base = free_base_port(nodes)
        members = {}
        for n in range(1, nodes + 1):
            ports = system.local_ports(base, n)
            members[n] = Member(
                n,
                Address("127.0.0.1", ports.pop("client")),
                {name: Address("127.0.0.1", p) for name, p in ports.items()},
            )
        self.members = members
        self.peer_ports = {str(n): [a.port for a in m.links.values()] for n, m in members.items()}
        try:
            for stage in system.boot(sorted(members)).stages:
                for n in stage:
                    d = (root / f"node-{n}").resolve()
                    d.mkdir(parents=True, exist_ok=True)
                    cmd = system.local_command(members[n], members, d, {})
                    self.spawn(str(n), cmd.argv, d / "node.log", cmd.env)
                for n in stage:
                    _wait(f"{system.name} node {n}", lambda n=n: system.ready(members[n]))
            _wait(f"{system.name} writes through every node", self._probe, 120)
        except BaseException:
            self.stop()
            raise
        self.endpoint = Endpoint(
            "walrus", [(m.client.host, m.client.port) for m in members.values()]
        )

    def _probe(self) -> bool:
        for m in self.members.values():
            try:
                with Client(m.client.host, m.client.port, timeout=5) as c:
                    c.register("bench-probe")
                    c.put("bench-probe", "ready")
            except (WalrusError, OSError):
                return False
        return True

    def _state(self, topic: str) -> dict:
        for m in self.members.values():
            try:
                with Client(m.client.host, m.client.port, timeout=10) as c:
                    c.register(topic)
                    return c.state(topic)
            except (WalrusError, OSError):
                continue
        return {}

    def leader(self, topic: str) -> str | None:
        """The node leading ``topic``, as STATE names it (registering the topic)."""
        leader = self._state(topic).get("leader_node")
        return str(leader) if leader in self.members else None

    def leader_of(self, topic: str) -> tuple[str, int] | None:
        """The client address of the node leading ``topic`` (registering it)."""
        leader = self.leader(topic)
        if leader is None:
            return None
        m = self.members[int(leader)]
        return m.client.host, m.client.port


# --- Redis -----------------------------------------------------------------------------------


class RedisServer(Server):
    """One redis-server with the AOF on."""

    def __init__(self, root: Path, appendfsync: str) -> None:
        binary = require("redis-server")
        port = _free_port()
        cmd = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(root),
            "--appendonly", "yes",
            "--appendfsync", appendfsync,
            "--save", "",
            "--protected-mode", "no",
            "--logfile", str(root / "redis.log"),
        ]  # fmt: skip
        super().__init__()
        self.spawn("redis", cmd, root / "redis.out")
        self.endpoint = Endpoint("redis", [("127.0.0.1", port)])
        try:
            _wait("redis-server", lambda: _answers("127.0.0.1", port), 30)
        except BaseException:
            self.stop()
            raise


# --- NATS ------------------------------------------------------------------------------------


class NatsServer(Server):
    """Three nats-server processes, clustered, with JetStream on file storage."""

    def __init__(self, root: Path, replicas: int) -> None:
        binary = require("nats-server")
        super().__init__()
        client = [_free_port() for _ in range(3)]
        route = [_free_port() for _ in range(3)]
        self.peer_ports = {f"n{i + 1}": [route[i]] for i in range(3)}
        try:
            for i in range(3):
                d = root / f"n{i + 1}"
                d.mkdir(parents=True, exist_ok=True)
                routes = ", ".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(route) if j != i)
                conf = d / "nats.conf"
                conf.write_text(
                    f'server_name: "n{i + 1}"\nlisten: "127.0.0.1:{client[i]}"\n'
                    f'jetstream {{ store_dir: "{d}/js" }}\n'
                    f'cluster {{ name: "bench", listen: "127.0.0.1:{route[i]}", '
                    f"routes: [{routes}] }}\n"
                )
                self.spawn(f"n{i + 1}", [binary, "-c", str(conf)], d / "nats.log")
            self.endpoint = Endpoint(
                "nats", [f"nats://127.0.0.1:{p}" for p in client], {"replicas": replicas}
            )
            _wait("the NATS JetStream cluster", lambda: _jetstream_ready(self.endpoint), 60)
        except BaseException:
            self.stop()
            raise

    def leader(self, topic: str) -> str | None:
        """The server leading the topic's stream (its server_name)."""
        return _stream_leader(self.endpoint, topic)


def _stream_leader(endpoint: Endpoint, topic: str) -> str | None:
    async def ask() -> str | None:
        import nats

        nc = await nats.connect(servers=endpoint.addresses, connect_timeout=2, error_cb=quiet)
        try:
            info = await nc.jetstream(timeout=5).stream_info(topic)
            return info.cluster.leader if info.cluster else None
        finally:
            await nc.close()

    return asyncio.run(ask())


def _jetstream_ready(endpoint: Endpoint) -> bool:
    async def check() -> bool:
        import nats

        try:
            nc = await nats.connect(
                servers=endpoint.addresses,
                connect_timeout=2,
                allow_reconnect=False,
                error_cb=quiet,
            )
        except Exception:
            return False
        try:
            await nc.jetstream(timeout=2).account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    return asyncio.run(check())


# --- RabbitMQ --------------------------------------------------------------------------------


class RabbitServer(Server):
    """Three rabbitmq-server nodes clustered, for quorum queues."""

    def __init__(self, root: Path, nodes: int = 3, log=print) -> None:
        from harness.systems.rabbitmq import Rabbit, ctl_here, node_name, status_json

        super().__init__()
        system = Rabbit("quorum")
        system.preflight("local", [], nodes)
        base = free_base_port(nodes, 1 + len(system.link_names) + len(system.listener_names))
        members = {}
        for n in range(1, nodes + 1):
            ports = system.local_ports(base, n)
            members[n] = Member(
                n,
                Address("127.0.0.1", ports.pop("client")),
                {name: Address("127.0.0.1", p) for name, p in ports.items()},
            )
        self.peer_ports = {str(n): [m.links["dist"].port] for n, m in members.items()}
        want = {node_name(n) for n in members}

        def _running(member: Member) -> set[str]:
            try:
                out = ctl_here(member, "-q", "cluster_status", "--formatter", "json")
                return set(status_json(out).get("running_nodes", []))
            except (RuntimeError, ValueError):
                return set()

        try:
            for n, member in members.items():
                d = (root / f"node-{n}").resolve()
                d.mkdir(parents=True, exist_ok=True)
                routes = {p: {"dist": m.links["dist"]} for p, m in members.items() if p != n}
                cmd = system.local_command(member, members, d, routes)
                self.spawn(str(n), cmd.argv, d / "node.log", cmd.env)
            for n, member in members.items():
                _wait(f"rabbitmq node {n}", lambda m=member: system.ready(m), 120)
            _wait("the RabbitMQ cluster", lambda: want <= _running(members[1]), 120)
        except BaseException:
            self.stop()
            raise
        self.members = members
        self.endpoint = Endpoint("amqp", [(m.client.host, m.client.port) for m in members.values()])

    def leader(self, topic: str) -> str | None:
        """The node leading the topic's quorum queue (None before it is declared)."""
        import json

        from harness.systems.rabbitmq import QUEUES, ctl_here, name_of

        names = {name_of(m): str(n) for n, m in self.members.items()}
        for member in self.members.values():
            try:
                rows = json.loads(ctl_here(member, "-q", "eval", QUEUES).strip().splitlines()[0])
            except (RuntimeError, ValueError, IndexError):
                continue
            leaders = {q["name"]: q.get("leader") for q in rows}
            return names.get(str(leaders.get(topic)))
        return None

    def stop(self) -> None:
        """Stop every node and what each started (its epmd: the node's process group)."""
        import signal

        for node in self.nodes.values():
            if node.popen is not None and node.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.popen.pid, signal.SIGTERM)
        super().stop()
        for node in self.nodes.values():
            if node.popen is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.popen.pid, signal.SIGKILL)
