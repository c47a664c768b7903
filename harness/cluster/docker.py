"""The Docker backend: one container per node on a bridge network of the test's own.

Every node runs its system's node (the system supplies the image and the command) as PID 1 of its
container, with its own address on the network (the harness reaches it there), ``NET_ADMIN`` for
iptables, and its data directory bind-mounted from the run's directory — so clock control files,
event logs and disk faults work on host paths exactly as with local processes. Faults:

- partition: ``iptables -A INPUT -s <peer> -j DROP`` inside each node that must not hear that
  peer — every protocol, so UDP links (Walrus's QUIC) are cut as well as TCP; the harness's own
  address is never dropped; heal flushes the rules; a restarted container gets the partition in
  force again;
- loss: ``iptables -A INPUT -s <peer> -m statistic --mode random --probability p -j DROP`` in
  each node for the peers on a degraded link (no ``sch_netem`` here); throttle: an ``htb``
  class per degraded peer on the node's ``eth0``, matched by destination (``u32``), so only
  node-to-node traffic is capped, never the harness's; delay and jitter: ``iptables -A OUTPUT
  -d <peer> -j NFQUEUE --queue-num <peer> --queue-bypass`` and, per queue, ``harness.netq`` run
  on the host inside the container's network namespace (``nsenter --net``), holding each packet
  for its delay (jitter reorders packets here, unlike the local backend's stream proxies);
  reorder: the same delayer holding a share of the packets back; duplicate: ``iptables -t
  mangle -A POSTROUTING -d <peer> -m statistic --mode random --probability p -j TEE --gateway
  <peer>`` (the kernel's TEE target clones the packet to the peer itself, so it arrives twice);
- kill: SIGKILL (the container exits) and ``start`` again; pause: SIGSTOP / SIGCONT to the node;
- clock: the system's control file in the bind-mounted data directory;
- lose-unsynced: the data directory is a losefs mount made on the host
  (``harness.cluster.power``) and bind-mounted as ``/data``; the container is killed, losefs
  loses what was not synced, and the restart mounts afresh.

Everything created carries the ``walrus-harness`` label and is removed on every exit path;
``walrus-harness docker clean`` removes what a crashed harness left behind.
"""

import contextlib
import ipaddress
import itertools
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from harness import netq
from harness.cluster.base import Grudge, LaunchedCluster
from harness.cluster.packets import delayer_args, peer_rules
from harness.cluster.power import mounts
from harness.images import LABEL, engine
from harness.remote.base import Ran
from harness.remote.container import ContainerRemote
from harness.systems.base import Launched, Log, Member, Unsupported
from nemesis.interfaces import LinkShape, Slowed, shape_between
from walrus.config import Address

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network


def _subnet(rng: random.Random) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{rng.randrange(200, 250)}.{rng.randrange(256)}.0/24")


class DockerCluster(LaunchedCluster):
    """N node containers; their data under ``root`` on the host."""

    def __init__(
        self,
        root: Path,
        nodes: int,
        system: Launched,
        base_image: str | None = None,
        log: Log = print,
        power_loss: bool = False,
    ) -> None:
        self.root = root
        self.nodes = list(range(1, nodes + 1))
        self.system = system
        self._base_image = base_image
        self._log = log
        self._client: DockerClient | None = None
        self._network: Network | None = None
        self._containers: dict[int, Container] = {}
        self._grudge: Grudge = {}
        self._slowed: Slowed = {}
        self._delayers: dict[tuple[int, int], tuple[int, LinkShape, trio.Process]] = {}
        """(node, peer) -> (the container's PID, the shape, the netq process delaying it)."""
        self._paused: set[int] = set()
        self._run_label = f"{root.resolve()}"
        self.members: dict[int, Member] = {}
        self.image: str | None = None
        self._mounts = mounts(root, self.nodes if power_loss else [], system.node_files())

    async def start(self) -> None:
        """Build or find the image, create the network and the containers, start them in the
        system's stages and wait until ready."""
        await trio.to_thread.run_sync(self._create)
        await self.boot()

    async def spawn(self, node: int) -> None:
        """Start the node's container (on a fresh losefs mount, with power loss)."""
        if node in self._mounts:
            await self._mounts[node].up()
        await trio.to_thread.run_sync(self._containers[node].start)

    def _create(self) -> None:
        client = self._client = engine()
        self.image = self.system.image(client, self._base_image, self._log)
        labels = {LABEL: "test", f"{LABEL}.run": self._run_label}
        rng = random.Random()
        from docker.errors import APIError
        from docker.types import IPAMConfig, IPAMPool

        for _ in range(20):
            subnet = _subnet(rng)
            try:
                network = self._network = client.networks.create(
                    f"walrus-{rng.getrandbits(32):08x}",
                    driver="bridge",
                    labels=labels,
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
                )
                break
            except APIError:
                continue
        else:
            raise RuntimeError("no free private subnet for the test network")
        hosts = list(subnet.hosts())
        for node in self.nodes:
            ip = str(hosts[9 + node])
            ports = self.system.container_ports(node)
            self.members[node] = Member(
                node,
                Address(ip, ports["client"]),
                {
                    name: Address(ip, ports[name])
                    for name in (*self.system.link_names, *self.system.listener_names)
                },
            )
        for node in self.nodes:
            d = self.data_dir(node)
            d.mkdir(parents=True, exist_ok=True)
            if node in self._mounts:
                d = self._mounts[node].mount
                d.mkdir(parents=True, exist_ok=True)
            command = self.system.container_command(self.members[node], self.members)
            container = client.containers.create(
                self.image,
                command=command.argv,
                environment=command.env,
                name=f"{network.name}-n{node}",
                hostname=f"n{node}",
                labels=labels,
                cap_add=["NET_ADMIN"],
                volumes={
                    str(d.resolve()): {"bind": "/data", "mode": "rw"},
                    **{
                        host: {"bind": inside, "mode": "ro"}
                        for host, inside in self.system.container_mounts(self.root).items()
                    },
                },
                network=network.name,
                stop_signal="SIGTERM",
                **self.system.container_options(),
            )
            network.disconnect(container)
            network.connect(
                container, ipv4_address=self.members[node].client.host, aliases=[f"n{node}"]
            )
            self._containers[node] = container

    async def run(self, node: int, argv: list[str], timeout: float = 30.0) -> Ran:
        """Run ``argv`` inside the node's container (``docker exec``); RuntimeError (a
        ``RemoteError``) if it outlives ``timeout``."""
        return await ContainerRemote(self._containers[node]).run(argv, timeout)

    async def log_tail(self, node: int) -> str:
        """The last lines of the container's output."""
        logs = await trio.to_thread.run_sync(self._containers[node].logs)
        return "\n".join(logs.decode(errors="replace").splitlines()[-8:])

    async def alive(self, node: int) -> bool:
        """True while the node's container runs (paused counts)."""
        container = self._containers.get(node)
        if container is None:
            return False
        await trio.to_thread.run_sync(container.reload)
        return container.status in ("running", "paused")

    async def kill(self, node: int) -> None:
        """SIGKILL the node (its container exits)."""
        if await self.alive(node):
            await trio.to_thread.run_sync(lambda: self._containers[node].kill(signal="SIGKILL"))
            await trio.to_thread.run_sync(lambda: self._containers[node].wait(timeout=30))
        self._paused.discard(node)

    async def restart(self, node: int) -> None:
        """Start the container again, with the partition in force."""
        if not await self.alive(node):
            await self.spawn(node)
            await self._apply(node)

    async def lose_unsynced(self, node: int) -> dict[str, object]:
        """The power loss of the node: its container killed, what its losefs mount undid (the
        restart mounts again)."""
        if node not in self._mounts:
            raise Unsupported("this cluster was started without losefs mounts (power_loss)")
        await self.kill(node)
        return await self._mounts[node].lose()

    async def pause(self, node: int) -> None:
        """SIGSTOP the node."""
        if await self.alive(node):
            await trio.to_thread.run_sync(lambda: self._containers[node].kill(signal="SIGSTOP"))
            self._paused.add(node)

    async def resume(self, node: int) -> None:
        """SIGCONT the node."""
        if await self.alive(node):
            await trio.to_thread.run_sync(lambda: self._containers[node].kill(signal="SIGCONT"))
        self._paused.discard(node)

    async def partition(self, grudge: Grudge) -> None:
        """iptables DROP rules in each node for the peers it must not hear."""
        self._grudge = {n: set(h) for n, h in grudge.items()}
        for node in self.nodes:
            await self._apply(node)

    async def slow_links(self, fault: str, nodes: list[int], shape: LinkShape) -> None:
        """As ``fault``, delay, throttle and drop packets of every link touching ``nodes`` (none:
        stop)."""
        if nodes:
            self._slowed[fault] = (set(nodes), shape)
        else:
            self._slowed.pop(fault, None)
        for node in self.nodes:
            await self._apply(node)

    def _rules(self, node: int) -> list[str]:
        """The shell commands that put this node's partition and link shapes in force."""
        script = [
            "iptables -F INPUT",
            "iptables -F OUTPUT",
            "iptables -t mangle -F POSTROUTING",
            "(tc qdisc del dev eth0 root 2>/dev/null || true)",
        ]
        for peer in sorted(self._grudge.get(node, ())):
            script.append(f"iptables -A INPUT -s {self.members[peer].client.host} -j DROP")
        peers = [(p, shape_between(self._slowed, node, p)) for p in self.nodes if p != node]
        for peer, shape in peers:
            script += peer_rules(
                self.members[peer].client.host, peer, shape, ("INPUT", "OUTPUT", "POSTROUTING")
            )
        capped = [(p, s) for p, s in peers if s.rate > 0]
        if capped:
            script += [
                "tc qdisc add dev eth0 root handle 1: htb default 1",
                "tc class add dev eth0 parent 1: classid 1:1 htb rate 10gbit",
            ]
            for k, (peer, shape) in enumerate(capped, 10):
                kbit = max(8, int(shape.rate * 8 / 1000))
                script += [
                    f"tc class add dev eth0 parent 1: classid 1:{k} htb rate {kbit}kbit",
                    f"tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst "
                    f"{self.members[peer].client.host}/32 flowid 1:{k}",
                ]
        return script

    async def _delay(self, node: int) -> None:
        """Run a netq delayer for each of this node's delayed links (in the container's current
        network namespace), and no other."""
        container = self._containers[node]
        pid = container.attrs["State"]["Pid"]
        wanted = {}
        for peer in self.nodes:
            shape = shape_between(self._slowed, node, peer) if peer != node else LinkShape()
            if shape.queued:
                wanted[peer] = shape
        for (n, peer), (old_pid, shape, proc) in list(self._delayers.items()):
            if n == node and (old_pid != pid or wanted.get(peer) != shape):
                await _end(proc)
                del self._delayers[(n, peer)]
        for peer, shape in wanted.items():
            if (node, peer) in self._delayers:
                continue
            argv = ["nsenter", "-t", str(pid), "--net", sys.executable, "-m", "harness.netq"]
            argv += delayer_args(peer, shape)
            log = self.data_dir(node).with_name(f"node-{node}.netq.log")
            start = log.stat().st_size if log.exists() else 0
            with open(log, "ab") as out:
                proc = await trio.lowlevel.open_process(
                    argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            self._delayers[(node, peer)] = (pid, shape, proc)
            await _ready(proc, log, start)

    async def _apply(self, node: int) -> None:
        if not await self.alive(node):
            return
        await self._delay(node)
        cmd = ["sh", "-c", " && ".join(self._rules(node))]
        from docker.errors import APIError

        try:
            exit_code, output = await trio.to_thread.run_sync(
                lambda: self._containers[node].exec_run(cmd, user="root")
            )
            assert isinstance(output, bytes)  # not streamed
        except APIError as exc:
            exit_code, output = -1, str(exc).encode()
        if exit_code != 0 and await self.alive(node):
            raise RuntimeError(
                f"iptables/tc in node {node} failed: {output.decode(errors='replace')}"
            )
        # A node that died meanwhile gets its rules when it is restarted.

    async def tcp_counters(self) -> dict[int, dict[str, int]] | None:
        """Each running container's TCP counters, read from its /proc/net (its own stack)."""
        from docker.errors import APIError

        out = {}
        for node in self.nodes:
            if not await self.alive(node):
                continue
            try:
                code, text = await trio.to_thread.run_sync(
                    self._containers[node].exec_run, ["cat", "/proc/net/snmp", "/proc/net/netstat"]
                )
            except APIError:
                continue
            assert isinstance(text, bytes)  # not streamed
            if code == 0:
                out[node] = parse_tcp_counters(text.decode(errors="replace"))
        return out

    async def heal(self) -> None:
        """Flush every node's rules."""
        await self.partition({})

    def _save_logs(self) -> None:
        for node, container in self._containers.items():
            (self.data_dir(node) / "node.log").write_bytes(container.logs())

    async def collect_logs(self, dest: Path) -> None:
        """Container output (as node.log) and the system's other files into ``dest/<node>/``."""
        await trio.to_thread.run_sync(self._save_logs)
        await super().collect_logs(dest)

    async def stop(self) -> None:
        """Stop and remove every container, the network and the delayers (idempotent)."""
        with trio.CancelScope(shield=True):
            delayers, self._delayers = self._delayers, {}
            for _, _, proc in delayers.values():
                await _end(proc)
            await trio.to_thread.run_sync(self._remove)
            for mount in self._mounts.values():
                await mount.down()

    def _remove(self) -> None:
        from docker.errors import APIError

        for container in self._containers.values():
            with contextlib.suppress(APIError):  # it may have exited already
                container.kill(signal="SIGCONT")
            with contextlib.suppress(APIError):
                container.stop(timeout=10)
        self._save_logs()
        containers, self._containers = self._containers, {}
        for container in containers.values():
            container.remove(force=True)
        if self._network is not None:
            self._network.remove()
            self._network = None


TCP_COUNTERS = {
    "Tcp.InSegs": "segments_in",
    "Tcp.RetransSegs": "retransmitted",
    "TcpExt.TCPDSACKOldSent": "duplicates_in",
    "TcpExt.TCPOFOQueue": "out_of_order_in",
    "TcpExt.TCPLossProbes": "loss_probes",
}
"""The kernel's TCP counters that show packet faults landing, under the names links.json uses
(``duplicates_in``: segments that arrived twice, answered with a D-SACK)."""


def parse_tcp_counters(text: str) -> dict[str, int]:
    """``TCP_COUNTERS`` from /proc/net/snmp and /proc/net/netstat (header line, value line)."""
    lines = [line.split() for line in text.splitlines()]
    found = {}
    for names, numbers in itertools.pairwise(lines):
        paired = len(names) > 1 and numbers[:1] == names[:1] and not names[1].isdigit()
        if not paired:
            continue
        prefix = names[0].rstrip(":")
        for name, number in zip(names[1:], numbers[1:], strict=False):
            key = TCP_COUNTERS.get(f"{prefix}.{name}")
            if key is not None and number.lstrip("-").isdigit():
                found[key] = int(number)
    return found


async def _ready(proc: trio.Process, log: Path, start: int) -> None:
    """Wait until a delayer says it holds its queue; RuntimeError with its words if it ends or
    stays silent for 10 s."""

    def said() -> str:
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    with trio.move_on_after(10):
        while proc.returncode is None:
            if netq.READY in said():
                return
            await trio.sleep(0.02)
    raise RuntimeError(f"the packet delayer did not start: {said().strip() or 'no word in 10 s'}")


async def _end(proc: trio.Process) -> None:
    """SIGTERM a delayer (it lets every held packet go), SIGKILL if it lingers."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(5):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
