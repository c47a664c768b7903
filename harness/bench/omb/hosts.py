"""A compared system's nodes on hosts over SSH (``bench compare --hosts``), the driver here.

The nodes are started, broken and stopped by the SSH backend (``harness.cluster.ssh``): one node
per host, installed and cleaned up as a test's are, kill and restart as signals there, a leader
cut off by iptables rules there. The driver's producers and consumers stay on this machine, as
OMB's driver workers run on machines of their own beside the brokers': a message's end-to-end
latency is its consumer's receive time less its producer's send time, both read on this machine's
clock, so no host's clock enters it.

The backend is trio and the driver's servers are called from plain threads; the cluster lives in
a trio loop on a thread of its own, and each call is ``trio.from_thread.run`` into it.
"""

import threading
from pathlib import Path
from typing import Any

import trio

from harness.bench.omb.servers import Endpoint, Server
from harness.cluster import make_cluster, preflight
from harness.cluster.base import Cluster
from harness.remote.ssh import SshHosts
from harness.systems.base import Launched


def endpoint(system: Launched, cluster: Cluster, options: dict[str, Any]) -> Endpoint:
    """How the driver reaches the system's nodes on their hosts."""
    addresses = [cluster.client_address(n) for n in cluster.nodes]
    if system.name == "nats":
        return Endpoint("nats", [f"nats://{h}:{p}" for h, p in addresses], options)
    if system.name == "rabbitmq":
        return Endpoint("amqp", addresses, options)
    return Endpoint("walrus", addresses, options)


class HostServer(Server):
    """``system``'s nodes on ``hosts``; ``options``: the endpoint's (NATS: stream replicas)."""

    def __init__(
        self,
        root: Path,
        system: Launched,
        hosts: SshHosts,
        options: dict[str, Any] | None = None,
        log=print,
    ) -> None:
        self.nodes = {}
        self.helpers = []
        self.peer_ports = {}
        self._cut = None
        self.system = system
        preflight("ssh", None, (), system, hosts)
        self._token: trio.lowlevel.TrioToken | None = None
        self._done: trio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.cluster: Cluster | None = None
        self._thread = threading.Thread(
            target=trio.run, args=(self._serve, root, hosts, log), daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(str(self._error)) from self._error
        assert self.cluster is not None
        self.endpoint = endpoint(system, self.cluster, options or {})

    async def _serve(self, root: Path, hosts: SshHosts, log) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._done = trio.Event()
        async with trio.open_nursery() as nursery:
            cluster = make_cluster(
                "ssh", root / "data", len(hosts.hosts), self.system, nursery, log=log, ssh=hosts
            )
            try:
                await cluster.start()
                self.cluster = cluster
            except BaseException as exc:
                self._error = exc
                await cluster.stop()
                nursery.cancel_scope.cancel()
                return
            finally:
                self._started.set()
            await self._done.wait()
            await cluster.stop()
            nursery.cancel_scope.cancel()

    def _call(self, fn, *args):  # type: ignore[no-untyped-def]
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def leader(self, topic: str) -> str | None:
        """The node leading ``topic``, as the system says (its node id as text)."""
        leader = self._call(self.system.leader, self.cluster, topic)
        return None if leader is None else str(leader)

    def leader_of(self, topic: str) -> tuple[str, int] | None:
        """The client address of the node leading ``topic``."""
        leader = self.leader(topic)
        if leader is None or self.cluster is None:
            return None
        return self.cluster.client_address(int(leader))

    def kill(self, name: str) -> None:
        """SIGKILL the node on its host."""
        self._call(self.cluster.kill, int(name))  # type: ignore[union-attr]

    def restart(self, name: str) -> None:
        """Start the node again on its host."""
        self._call(self.cluster.restart, int(name))  # type: ignore[union-attr]

    def uncuttable(self) -> str | None:
        """Always cuttable: iptables rules on the hosts."""
        return None

    def isolate(self, name: str) -> None:
        """Every host drops the node's packets, and the node drops theirs."""
        node = int(name)
        others = [n for n in self.cluster.nodes if n != node]  # type: ignore[union-attr]
        grudge = {node: set(others), **{n: {node} for n in others}}
        self._call(self.cluster.partition, grudge)  # type: ignore[union-attr]

    def heal(self) -> None:
        """No rule left."""
        self._call(self.cluster.heal)  # type: ignore[union-attr]

    def stop(self) -> None:
        """Stop the nodes and clean the hosts (the SSH backend's stop), end the loop."""
        if self._token is not None and self._done is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._done.set, trio_token=self._token)
        self._thread.join()
