"""The SSH backend: one node per host the user names, every fault done on the hosts themselves.

Jepsen's model: a control node (this one) drives database nodes over SSH (``harness.remote.ssh``).
Each node runs on its host as a process in a session of its own (``Remote.start``), its data in
``/var/tmp/walrus-harness/<run>/node-<i>`` there; the harness talks to it at the host's address
on the system's fixed ports (``Launched.container_ports``: each host, like a container, has an
address of its own). Kill, pause and resume are signals to the node's process group; partitions
are iptables ``DROP`` rules by peer address in a chain of ours (``CHAIN``), jumped to from INPUT,
so that cleanup removes exactly what the harness added. Each host's clock is measured against
this one's before the nodes start, every ``CLOCK_PERIOD`` seconds and after they stop
(``harness.remote.clocks``), so that their event logs can be set on the history's time line. When
the run ends — however it ends —
every node's process group is stopped, its log copied into the run directory, its directory on
the host removed and the chain deleted; the SSH connections are closed.

What a system needs on a host is checked (``harness.remote.needs``), never installed. Systems run
here once they say how their node starts on a host (``Launched.host_command``).
"""

import json
import shlex
from pathlib import Path

import trio

from harness import netq
from harness.cluster.base import Grudge, LaunchedCluster
from harness.cluster.packets import delayer_args, peer_rules
from harness.cluster.power import MOUNT_TIMEOUT, losefs_log
from harness.history.host_clocks import HostClocks, Sample
from harness.images import LOSEFS_REQUIREMENTS, host_bundle
from harness.remote.base import Ran, Remote, RemoteError, Started
from harness.remote.clocks import ClockProbe
from harness.remote.install import install_bundle
from harness.remote.ssh import SshRemote
from harness.systems.base import Launched, Log, Member, Unsupported
from nemesis.interfaces import LinkShape, Slowed, shape_between
from walrus.config import Address

CLOCK_PERIOD = 2.0
"""Seconds between measurements of the hosts' clocks while the nodes run."""

CHAIN = "WALRUS-HARNESS"
"""The iptables chain every rule of ours on incoming packets goes in (jumped to from INPUT);
outgoing ones go in ``CHAIN-OUT`` (from OUTPUT) and duplicated ones in the mangle table's
``CHAIN-DUP`` (from POSTROUTING)."""

CHAINS = (
    (CHAIN, "filter", "INPUT"),
    (f"{CHAIN}-OUT", "filter", "OUTPUT"),
    (f"{CHAIN}-DUP", "mangle", "POSTROUTING"),
)
"""Our chains: (name, table, the built-in chain that jumps to it)."""

HOME = "/var/tmp/walrus-harness"
"""Where runs keep their nodes' directories on a host."""

MARK = "WALRUS_HARNESS_RUN"
"""The environment variable every process the harness starts on a host carries (its run's
directory there), passed on to whatever that process starts: how ``clean`` finds them."""


def chain_setup() -> str:
    """Shell that makes our chains (if missing), jumps to each once, and empties them."""
    return "; ".join(
        f"iptables -t {t} -N {c} 2>/dev/null; iptables -t {t} -C {j} -j {c} 2>/dev/null || "
        f"iptables -t {t} -I {j} -j {c}; iptables -t {t} -F {c}"
        for c, t, j in CHAINS
    )


def chain_removal() -> str:
    """Shell that removes our chains and the jumps to them (whatever is there)."""
    return (
        "; ".join(
            f"while iptables -t {t} -D {j} -j {c} 2>/dev/null; do :; done; "
            f"iptables -t {t} -F {c} 2>/dev/null; iptables -t {t} -X {c} 2>/dev/null"
            for c, t, j in CHAINS
        )
        + "; true"
    )


def rule_count() -> str:
    """Shell that prints how many rules our chains hold."""
    return "cat /dev/null " + "".join(
        f"; iptables -t {t} -S {c} 2>/dev/null | grep -- '-A {c}'" for c, t, _ in CHAINS
    )


def kill_marked(home: str | None = None) -> str:
    """Shell that SIGKILLs every process carrying ``MARK`` (set to ``home``, if given: one run's)
    and prints ``processes <how many>``."""
    match = f"grep -qxF {shlex.quote(f'{MARK}={home}')}" if home else f"grep -q '^{MARK}='"
    return (
        "n=0; for p in /proc/[0-9]*; do "
        f"if tr '\\0' '\\n' < $p/environ 2>/dev/null | {match}; then "
        "kill -KILL ${p#/proc/} 2>/dev/null && n=$((n+1)); fi; done; echo processes $n"
    )


def clean_script() -> str:
    """Shell that leaves a host as it was before any run of ours, whatever state a run that was
    killed left it in: every process carrying ``MARK`` killed, every mount under ``HOME``
    unmounted, our chain removed, ``HOME`` deleted. It prints what it found, one word and a
    count per line (``processes``, ``mounts``, ``rules``, ``runs``)."""
    return (
        f"{kill_marked()}; "
        f"m=$(awk '$2 ~ \"^{HOME}/\" {{print $2}}' /proc/mounts | sort -r); "
        "for d in $m; do fusermount3 -uz $d 2>/dev/null || umount -l $d; done; "
        "echo mounts $(echo $m | wc -w); "
        f"echo rules $( ({rule_count()}) | wc -l); "
        f"{chain_removal()}; "
        f"echo runs $(ls -A {HOME} 2>/dev/null | wc -l); rm -rf {HOME}"
    )


class SshCluster(LaunchedCluster):
    """N nodes of ``system``, node i on ``remotes[i-1]``; run files under ``root`` here."""

    def __init__(
        self,
        root: Path,
        system: Launched,
        remotes: list[SshRemote],
        hosts: list[str],
        nursery: trio.Nursery,
        log: Log = print,
        keep_data: bool = False,
        power_loss: bool = False,
    ) -> None:
        self.root = root
        self.system = system
        self.nodes = list(range(1, len(remotes) + 1))
        self.remotes = dict(zip(self.nodes, remotes, strict=True))
        self._log = log
        self._keep = keep_data
        self.home = f"{HOME}/{root.parent.name}-{root.name}".replace(" ", "_")
        self.members = {}
        for node, host in zip(self.nodes, hosts, strict=True):
            ports = system.container_ports(node)
            self.members[node] = Member(
                node,
                Address(host, ports["client"]),
                {n: Address(host, ports[n]) for n in (*system.link_names, *system.listener_names)},
            )
        self._started: dict[int, Started] = {}
        self._paused: set[int] = set()
        self._stopped = False
        self._nursery = nursery
        self._power = power_loss
        self._mounts: dict[int, Started] = {}
        self._probes: dict[int, ClockProbe] = {}
        self._samples: dict[int, list[Sample]] = {node: [] for node in self.nodes}
        self._watch = trio.CancelScope()
        self._grudge: Grudge = {}
        self._slowed: Slowed = {}
        self._delayers: dict[int, dict[int, tuple[Started, LinkShape]]] = {}

    def remote_dir(self, node: int) -> str:
        """The node's directory on its host (with power loss, the backing of its mount)."""
        return f"{self.home}/node-{node}"

    def node_dir(self, node: int) -> str:
        """Where the node keeps its data on its host: its directory, or with power loss the
        losefs mount of it (``<dir>.losefs``)."""
        return f"{self.remote_dir(node)}.losefs" if self._power else self.remote_dir(node)

    async def _mount(self, node: int) -> None:
        """Mount losefs over the node's directory (no-op if its mount is up)."""
        remote, backing = self.remotes[node], self.remote_dir(node)
        mount, log = self.node_dir(node), f"{backing}.losefs.log"
        started = self._mounts.get(node)
        if started is not None and await remote.alive(started.pid):
            return
        await remote.check(["sh", "-c", f"umount -l {mount} 2>/dev/null; mkdir -p {mount}"])
        argv = [f"{self.home}/losefs/venv/bin/python", "-m", "losefs", backing, mount]
        argv += ["--keep", ",".join(self.system.node_files()), "--report", f"{backing}.loss.json"]
        env = {"PYTHONPATH": f"{self.home}/losefs/src", MARK: self.home}
        started = self._mounts[node] = await remote.start(argv, log, env)
        with trio.move_on_after(MOUNT_TIMEOUT):
            while await remote.alive(started.pid):
                if (await remote.run(["grep", "-qs", f" {mount} ", "/proc/mounts"])).code == 0:
                    return
                await trio.sleep(0.1)
        said = (await remote.run(["tail", "-n", "1", log])).out.strip()
        raise RemoteError(f"{remote.name}: losefs did not mount {mount}: {said or 'no word'}")

    async def _unmount(self, node: int, signal: str) -> None:
        """End the node's losefs (``USR1``: losing what was not made durable; ``TERM``: keeping
        everything) and detach its mount."""
        remote, started = self.remotes[node], self._mounts.pop(node, None)
        if started is not None:
            await remote.signal(started.pid, signal)
            with trio.move_on_after(MOUNT_TIMEOUT):
                while await remote.alive(started.pid):
                    await trio.sleep(0.1)
            await remote.signal(started.pid, "KILL")
        await remote.run(["sh", "-c", f"umount -l {self.node_dir(node)} 2>/dev/null; true"])

    async def lose_unsynced(self, node: int) -> dict[str, object]:
        """The power loss of the node: killed, then its losefs undoes what was not durable;
        what it lost (the restart mounts again)."""
        if not self._power:
            raise Unsupported("this cluster was started without losefs mounts (power_loss)")
        await self.kill(node)
        report = f"{self.remote_dir(node)}.loss.json"
        await self.remotes[node].run(["rm", "-f", report])
        await self._unmount(node, "USR1")
        try:
            lost: dict[str, object] = json.loads(await self.remotes[node].read(report))
            return lost
        except (RemoteError, ValueError):
            return {"error": "losefs wrote no report"}

    async def start(self) -> None:
        """Make each node's directory and our iptables chain on its host, install what the
        system's node needs there (all hosts at once), then boot."""
        for node, remote in self.remotes.items():
            await remote.check(["mkdir", "-p", self.remote_dir(node)])
            await remote.check(["sh", "-c", chain_setup()])
            await remote.write(f"{self.home}/netq.py", Path(netq.__file__).read_bytes())
            self.data_dir(node).mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            for remote in self.remotes.values():
                nursery.start_soon(self.system.install, remote, self.home, self.root, self._log)
                if self._power:
                    nursery.start_soon(self._install_losefs, remote)
        for node, remote in self.remotes.items():
            argv = ["env", f"{MARK}={self.home}", *ClockProbe.argv()]
            self._probes[node] = ClockProbe(remote.name, remote.command(argv))
            await self._probes[node].open()
        await self._measure()
        self._nursery.start_soon(self._watch_clocks)
        await self.boot()

    async def _install_losefs(self, remote: SshRemote) -> None:
        bundle = await trio.to_thread.run_sync(
            lambda: host_bundle(self._log, "losefs", LOSEFS_REQUIREMENTS)
        )
        self._log(f"installing losefs on {remote.name}")
        await install_bundle(remote, bundle, f"{self.home}/losefs", LOSEFS_REQUIREMENTS)

    async def _measure(self) -> None:
        for node, probe in self._probes.items():
            self._samples[node].append(await probe.sample())

    async def _watch_clocks(self) -> None:
        with self._watch:
            while True:
                await trio.sleep(CLOCK_PERIOD)
                await self._measure()

    def host_clocks(self, t0_ns: int) -> HostClocks | None:
        """Every host's samples so far."""
        return HostClocks({n: tuple(s) for n, s in self._samples.items()}, t0_ns)

    async def spawn(self, node: int) -> None:
        """Write the node's files on its host, then start its command there."""
        if self._power:
            await self._mount(node)
        remote, where = self.remotes[node], self.node_dir(node)
        command = self.system.host_command(self.members[node], self.members, where)
        for name, data in self.system.host_files(self.members[node], self.members).items():
            await remote.write(f"{where}/{name}", data)
        self._started[node] = await remote.start(
            command.argv, f"{where}/node.log", {**command.env, MARK: self.home}, cwd=where
        )

    async def run(self, node: int, argv: list[str], timeout: float = 30.0) -> Ran:
        """Run ``argv`` on the node's host."""
        return await self.remotes[node].run(argv, timeout)

    async def log_tail(self, node: int) -> str:
        """The last lines of the node's log on its host."""
        ran = await self.remotes[node].run(["tail", "-n", "8", f"{self.node_dir(node)}/node.log"])
        return ran.out

    async def alive(self, node: int) -> bool:
        """True while the node's process runs on its host (stopped counts)."""
        started = self._started.get(node)
        return started is not None and await self.remotes[node].alive(started.pid)

    async def _signal(self, node: int, signal: str) -> bool:
        started = self._started.get(node)
        return started is not None and await self.remotes[node].signal(started.pid, signal)

    async def kill(self, node: int) -> None:
        """SIGKILL the node's process group and wait until it is gone."""
        await self._signal(node, "KILL")
        with trio.move_on_after(30):
            while await self.alive(node):
                await trio.sleep(0.1)
        self._paused.discard(node)

    async def restart(self, node: int) -> None:
        """Start the node again if it does not run."""
        if not await self.alive(node):
            await self._signal(node, "KILL")  # what is left of its last process group
            await self.spawn(node)

    async def pause(self, node: int) -> None:
        """SIGSTOP the node's process group."""
        if await self._signal(node, "STOP"):
            self._paused.add(node)

    async def resume(self, node: int) -> None:
        """SIGCONT the node's process group."""
        await self._signal(node, "CONT")
        self._paused.discard(node)

    async def partition(self, grudge: Grudge) -> None:
        """On each host, our chain holds a DROP rule for every peer it must not hear."""
        self._grudge = {n: set(peers) for n, peers in grudge.items()}
        await self._apply()

    async def heal(self) -> None:
        """No partition left on any host."""
        await self.partition({})

    async def slow_links(self, fault: str, nodes: list[int], shape: LinkShape) -> None:
        """As ``fault``, lose, duplicate, delay and reorder packets of every link touching
        ``nodes`` (none: stop), on the hosts: iptables rules in our chains and a delayer
        (``harness.netq``, copied there) per delayed link. Throttling is refused: it would
        replace a host's root queueing discipline."""
        if shape.rate > 0:
            raise Unsupported("throttle on hosts would replace their root qdisc: not done")
        if nodes:
            self._slowed[fault] = (set(nodes), shape)
        else:
            self._slowed.pop(fault, None)
        await self._apply()

    async def _apply(self) -> None:
        """Every host's chains and delayers as the partition and link faults now say."""
        into, out, mangle = (c for c, _, _ in CHAINS)
        for node, remote in self.remotes.items():
            rules = [f"iptables -F {into}", f"iptables -F {out}", f"iptables -t mangle -F {mangle}"]
            rules += [
                f"iptables -A {into} -s {shlex.quote(self.members[peer].client.host)} -j DROP"
                for peer in sorted(self._grudge.get(node, ()))
            ]
            wanted = {}
            for peer in self.nodes:
                shape = shape_between(self._slowed, node, peer) if peer != node else LinkShape()
                host = self.members[peer].client.host
                rules += peer_rules(host, peer, shape, (into, out, mangle))
                if shape.queued:
                    wanted[peer] = shape
            await self._delayers_of(node, wanted)
            await remote.check(["sh", "-c", " && ".join(rules)])

    async def _delayers_of(self, node: int, wanted: dict[int, LinkShape]) -> None:
        """Run a delayer on the node's host for each delayed link (its queue the peer's id),
        and no other."""
        remote = self.remotes[node]
        for peer, (started, shape) in list(self._delayers.get(node, {}).items()):
            if wanted.get(peer) != shape:
                await remote.signal(started.pid, "TERM")
                del self._delayers[node][peer]
        for peer, shape in wanted.items():
            if peer in self._delayers.get(node, {}):
                continue
            log = f"{self.remote_dir(node)}.netq-{peer}.log"
            argv = ["python3", f"{self.home}/netq.py", *delayer_args(peer, shape)]
            started = await remote.start(argv, log, {MARK: self.home})
            self._delayers.setdefault(node, {})[peer] = (started, shape)
            if not await _holds_queue(remote, started, log):
                said = (await remote.run(["tail", "-n", "1", log])).out.strip()
                raise RemoteError(
                    f"{remote.name}: the packet delayer did not start: {said or 'no word in 10 s'}"
                )

    async def set_clock(self, node: int, offset: float, rate: float) -> None:
        """Write the system's clock control file into the node's directory on its host."""
        control = self.system.clock_control(offset, rate)
        if control is not None:
            name, data = control
            await self.remotes[node].write(f"{self.node_dir(node)}/{name}", data)

    async def stop(self) -> None:
        """Stop every node, bring its log home, remove its directory and our chain on every
        host, close the connections (idempotent; shielded, so that it runs on Ctrl-C too)."""
        if self._stopped:
            return
        self._stopped = True
        self._watch.cancel()
        with trio.CancelScope(shield=True):
            for node, remote in self.remotes.items():
                try:
                    await self._stop_node(node, remote)
                    await self._last_sample(node)
                    await self._sweep(remote)
                except RemoteError as exc:
                    self._log(f"cleanup on node {node}'s host: {exc}")
                finally:
                    await self._last_sample(node)
                    await remote.aclose()

    async def _last_sample(self, node: int) -> None:
        """The host's clock once more (after its node stopped), and the reader closed."""
        probe = self._probes.pop(node, None)
        if probe is None:
            return
        try:
            self._samples[node].append(await probe.sample())
        except RemoteError as exc:
            self._log(f"the last clock sample of node {node}'s host: {exc}")
        finally:
            await probe.aclose()

    async def _stop_node(self, node: int, remote: Remote) -> None:
        if node in self._started:
            await self._signal(node, "CONT")
            await self._signal(node, "TERM")
            with trio.move_on_after(10):
                while await self.alive(node):
                    await trio.sleep(0.2)
            await self._signal(node, "KILL")
        if self._power:
            await self._unmount(node, "TERM")
        where = self.remote_dir(node)
        fetch = {f"{where}/{name}": self.data_dir(node) / name for name in self.system.node_files()}
        fetch[f"{where}.losefs.log"] = losefs_log(self.data_dir(node))
        for there, here in fetch.items():
            if (await remote.run(["test", "-f", there])).code == 0:
                here.write_bytes(await remote.read(there))

    async def _sweep(self, remote: Remote) -> None:
        """Whatever of the run is left on the host: its processes (a daemon a node started,
        such as RabbitMQ's epmd, outlives the node's process group), our chain, its
        directory."""
        cleanup = f"{kill_marked(self.home)} >/dev/null; {chain_removal()}"
        if not self._keep:
            # the run's directory (the node's, what install put there), then ours if empty
            cleanup += f"; rm -rf {shlex.quote(self.home)}; rmdir {HOME} 2>/dev/null; true"
        await remote.check(["sh", "-c", cleanup])


async def _holds_queue(remote: Remote, started: Started, log: str) -> bool:
    """Whether a delayer says, within 10 s and while it runs, that it holds its queue."""
    with trio.move_on_after(10):
        while await remote.alive(started.pid):
            if (await remote.run(["grep", "-qF", netq.READY, log])).code == 0:
                return True
            await trio.sleep(0.05)
    return False
