"""The iptables commands that degrade one link's packets, shared by the backends that own a
node's packet filter (a container's, a host's): loss and duplication by the ``statistic`` match,
delay, jitter and reordering by handing the packets to a user-space delayer (``harness.netq``)
on an NFQUEUE numbered by the peer."""

from nemesis.interfaces import LinkShape


def peer_rules(peer: str, queue: int, shape: LinkShape, chains: tuple[str, str, str]) -> list[str]:
    """Commands putting ``shape`` on the packets between this machine and the one at ``peer``:
    ``chains`` are where to append (the filter table's input and output chains and the mangle
    table's postrouting chain, or chains of the harness's own jumped to from them)."""
    into, out, mangle = chains
    rules = []
    if shape.loss > 0:
        rules.append(
            f"iptables -A {into} -s {peer} -m statistic --mode random "
            f"--probability {shape.loss:.4f} -j DROP"
        )
    if shape.duplicate > 0:
        rules.append(
            f"iptables -t mangle -A {mangle} -d {peer} -m statistic --mode random "
            f"--probability {shape.duplicate:.4f} -j TEE --gateway {peer}"
        )
    if shape.queued:
        rules.append(f"iptables -A {out} -d {peer} -j NFQUEUE --queue-num {queue} --queue-bypass")
    return rules


def delayer_args(queue: int, shape: LinkShape) -> list[str]:
    """``harness.netq``'s options for one queue's delayer."""
    return [
        *("--queue", str(queue), "--delay-ms", f"{shape.delay * 1000:g}"),
        *("--jitter-ms", f"{shape.jitter * 1000:g}", "--reorder", f"{shape.reorder:g}"),
        *("--hold-ms", f"{shape.hold * 1000:g}"),
    ]
