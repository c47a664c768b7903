"""``walrus cluster up``: N nodes as child processes on one host, supervised until interrupted.

Node i (1..N) gets client port P+i, RPC port P+100+i, Raft port P+200+i and the data directory
``<data-dir>/node-<i>`` (its output goes to ``node.log`` there). Once every node answers
``METRICS`` with a Raft leader known and a lease held, the command prints one line, ``ready``.

A node that dies does not take the others with it: the survivors keep serving (their leases
take the dead node's open segments over), the supervisor says which node died and how to bring
it back, and stops everything only on SIGINT or SIGTERM (SIGTERM to every node, SIGKILL after
10 s). The running cluster has controls — ``walrus cluster kill|pause|resume|restart|status
--data-dir D [--node N]`` — that talk to the supervisor over a Unix socket in the data directory
(``cluster.sock``), so a person, or a harness testing the cluster from outside, can break and
mend it; a restarted node runs with the configuration the cluster was started with.
"""

import json
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from walrus.client import Client, WalrusError
from walrus.config import ConfigError, Peer, local_cluster
from walrus.protocol import JsonObject, parse_json_object

STOP_GRACE = 10.0
SOCKET_NAME = "cluster.sock"
CONTROLS = ("kill", "pause", "resume", "restart", "status")


def node_command(node: int, peers: dict[int, Peer], data_dir: Path, extra: list[str]) -> list[str]:
    """The ``walrus node`` command line for node ``node`` of ``peers``."""
    me = peers[node]
    cmd = [
        sys.executable,
        "-m",
        "walrus",
        "node",
        "--id",
        str(node),
        "--data-dir",
        str(data_dir),
        "--listen",
        str(me.client),
        "--rpc",
        str(me.rpc),
        "--raft",
        str(me.raft),
    ]
    for peer in peers.values():
        if peer.id != node:
            cmd += ["--peer", f"{peer.id}={peer.client},{peer.rpc},{peer.raft}"]
    return cmd + extra


def node_ready(peer: Peer) -> bool:
    """True once the node answers METRICS, knows a Raft leader and (unless in compat mode, which
    has no leases) holds a lease, so that it can take writes."""
    try:
        with Client(peer.client.host, peer.client.port, timeout=2) as client:
            metrics = client.metrics()
    except (WalrusError, OSError, ValueError):
        return False
    ours = metrics.get("walrus", {})
    return metrics.get("current_leader") is not None and (
        ours.get("compat") or ours.get("lease_holds")
    )


@dataclass
class _Node:
    """One supervised node: its process and what the supervisor last did to it."""

    proc: subprocess.Popen[bytes]
    state: str = "running"  # running | paused | killed | exited
    reported: bool = False


@dataclass
class Supervisor:
    """Starts, watches and, on request, breaks and mends the nodes of a local cluster."""

    peers: dict[int, Peer]
    data_dir: Path
    node_args: list[str]
    nodes: dict[int, _Node] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def node_dir(self, node: int) -> Path:
        """Where node ``node`` keeps its data and log."""
        return self.data_dir / f"node-{node}"

    def spawn(self, node: int) -> None:
        """Start the node's process with the cluster's configuration."""
        d = self.node_dir(node)
        d.mkdir(exist_ok=True)
        with open(d / "node.log", "ab") as log:
            proc = subprocess.Popen(
                node_command(node, self.peers, d, self.node_args),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.nodes[node] = _Node(proc)

    def log_tail(self, node: int, lines: int = 5) -> str:
        """The last lines of the node's log."""
        text = (self.node_dir(node) / "node.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def watch(self, say: Callable[[str], None]) -> None:
        """Report each node that exited by itself, once, with how to bring it back."""
        with self.lock:
            for i, node in self.nodes.items():
                if node.proc.poll() is None or node.reported:
                    continue
                node.reported = True
                if node.state == "killed":
                    continue
                node.state = "exited"
                say(
                    f"walrus: node {i} exited with status {node.proc.returncode}; the others "
                    f"keep serving. Bring it back with: walrus cluster restart --data-dir "
                    f"{self.data_dir} --node {i}"
                )

    def control(self, op: str, node: int | None) -> dict[str, object]:
        """Carry out one control request; the reply to send."""
        if op not in CONTROLS:
            return {"ok": False, "error": f"unknown control {op!r}; one of {', '.join(CONTROLS)}"}
        if op == "status":
            with self.lock:
                return {"ok": True, "nodes": {str(i): self._status(i) for i in self.nodes}}
        if node not in self.nodes:
            return {"ok": False, "error": f"no node {node}; nodes are {sorted(self.nodes)}"}
        with self.lock:
            entry = self.nodes[node]
            running = entry.proc.poll() is None
            if op == "kill":
                if running:
                    entry.proc.send_signal(signal.SIGKILL)
                    entry.proc.wait()
                entry.state, entry.reported = "killed", True
                return {"ok": True, "message": f"node {node} killed"}
            if op in ("pause", "resume"):
                if not running:
                    return {"ok": False, "error": f"node {node} is not running ({entry.state})"}
                entry.proc.send_signal(signal.SIGSTOP if op == "pause" else signal.SIGCONT)
                entry.state = "paused" if op == "pause" else "running"
                return {"ok": True, "message": f"node {node} {op}d"}
            if op == "restart":
                if running:
                    entry.proc.send_signal(signal.SIGKILL)
                    entry.proc.wait()
                self.spawn(node)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.nodes[node].proc.poll() is not None:
                return {"ok": False, "error": f"node {node} exited: {self.log_tail(node)}"}
            if node_ready(self.peers[node]):
                return {"ok": True, "message": f"node {node} restarted and ready"}
            time.sleep(0.2)
        return {"ok": True, "message": f"node {node} restarted (not ready within 60 s)"}

    def _status(self, node: int) -> dict[str, object]:
        entry = self.nodes[node]
        return {"state": entry.state, "pid": entry.proc.pid, "returncode": entry.proc.poll()}

    def stop_all(self) -> None:
        """SIGTERM every node (continuing paused ones), SIGKILL what is left after 10 s."""
        with self.lock:
            procs = [n.proc for n in self.nodes.values()]
        stop_processes(procs)


def stop_processes(procs: list[subprocess.Popen[bytes]], grace: float = STOP_GRACE) -> None:
    """SIGTERM every process still running (continuing paused ones), SIGKILL what is left
    after ``grace`` seconds."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _serve_controls(supervisor: Supervisor, path: Path) -> _ControlServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                request = json.loads(self.rfile.readline())
                reply = supervisor.control(str(request["op"]), request.get("node"))
            except (ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "error": f"bad control request: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")

    path.unlink(missing_ok=True)
    server = _ControlServer(str(path), Handler)
    threading.Thread(target=server.serve_forever, name="controls", daemon=True).start()
    return server


def control(data_dir: Path, op: str, node: int | None, timeout: float = 90.0) -> JsonObject:
    """Send one control request to the ``cluster up`` supervising ``data_dir``; its reply."""
    path = data_dir / SOCKET_NAME
    if not path.exists():
        raise ConfigError(f"no `walrus cluster up` is running with --data-dir {data_dir}")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError:
            raise ConfigError(
                f"the `walrus cluster up` of {data_dir} does not answer (it has stopped)"
            ) from None
        s.sendall(json.dumps({"op": op, "node": node}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return parse_json_object(data)


def _answers(path: Path) -> bool:
    """True if a supervisor listens on the control socket ``path``."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


def cluster_up(
    nodes: int, base_port: int, data_dir: Path, node_args: list[str], ready_timeout: float = 60.0
) -> int:
    """Run the cluster until SIGINT/SIGTERM; returns the exit status."""
    peers = local_cluster(nodes, base_port)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot use data directory {data_dir}: {exc.strerror}") from None
    sock = data_dir.resolve() / SOCKET_NAME
    if len(str(sock)) > 100:
        raise ConfigError(f"--data-dir {data_dir} is too long a path for the control socket")
    if _answers(sock):
        raise ConfigError(f"a `walrus cluster up` is already running with --data-dir {data_dir}")
    stop: list[object] = []
    previous = {
        s: signal.signal(s, lambda signum, frame: stop.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    supervisor = Supervisor(peers, data_dir, node_args)
    server = None
    try:
        for i in peers:
            supervisor.spawn(i)
        deadline = time.monotonic() + ready_timeout
        waiting = set(peers)
        while waiting and not stop:
            for i in sorted(waiting):
                if supervisor.nodes[i].proc.poll() is not None:
                    print(
                        f"walrus: node {i} exited with status {supervisor.nodes[i].proc.returncode}"
                        f":\n{supervisor.log_tail(i)}",
                        file=sys.stderr,
                    )
                    return 1
            waiting = {i for i in waiting if not node_ready(peers[i])}
            if waiting and time.monotonic() > deadline:
                print(
                    f"walrus: nodes {sorted(waiting)} did not answer within {ready_timeout:g} s",
                    file=sys.stderr,
                )
                return 1
            if waiting:
                time.sleep(0.2)
        if stop:
            return 130
        server = _serve_controls(supervisor, sock)
        print("ready", flush=True)
        while not stop:
            supervisor.watch(lambda line: print(line, file=sys.stderr, flush=True))
            time.sleep(0.2)
        return 0
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
            sock.unlink(missing_ok=True)
        supervisor.stop_all()
        for s, handler in previous.items():
            signal.signal(s, handler)
