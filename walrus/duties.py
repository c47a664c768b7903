"""The lease duties of a node (not in ``--compat walrus``, which has no leases).

Every node renews its lease every L/4 through the metadata and logs each renewal that commits
(``lease-acquire``/``lease-renew``) and each lapse (``lease-loss``); the node leading Raft also
watches every other node's renewals and proposes a takeover of a node silent for longer than
L(1+rho) on its own clock (``walrus.lease``), so that its open segments move on — and, with
replicated segments, seals each taken-over one from its replicas (``walrus.segment_recovery``).
"""

import logging

import trio

from walrus import lease
from walrus.context import Context
from walrus.metadata import ProposalError
from walrus.metastate import OPEN, PENDING
from walrus.segment_recovery import Recovery

log = logging.getLogger("walrus.node")


class LeaseDuties:
    """Renewing this node's lease, watching it lapse, and taking over silent nodes."""

    def __init__(self, ctx: Context, recovery: Recovery) -> None:
        self.ctx = ctx
        self.recovery = recovery
        self._takeovers_tried: set[tuple[int, int]] = set()

    async def renew_loop(self) -> None:
        """Renew every L/4, each renewal in a task of its own (one slow commit delays no other)."""
        ctx = self.ctx
        assert ctx.nursery is not None, "the node is not running"
        while True:
            ctx.nursery.start_soon(self._renew_once)
            await trio.sleep(ctx.config.lease.renew_interval)

    async def _renew_once(self) -> None:
        ctx = self.ctx
        sent = ctx.clock.now()
        try:
            result = await ctx.meta.propose(
                "renew", ctx.me, ctx.request_id(), timeout=ctx.config.lease.duration
            )
        except ProposalError:
            return
        if result != "renewed":
            log.warning("lease renew refused: %s", result)
            return
        held = ctx.lease.holds(ctx.clock.now())
        if ctx.lease.renew_sent is None or sent > ctx.lease.renew_sent:
            ctx.lease.renew_sent = sent
            ctx.events.record(
                "lease-renew" if held else "lease-acquire",
                sent=sent,
                expiry=lease.lease_expiry(ctx.config.lease, sent),
            )

    async def lease_watch(self) -> None:
        """Log the moment the lease lapses."""
        ctx = self.ctx
        held = False
        while True:
            now = ctx.clock.now()
            holds = ctx.lease.holds(now)
            if held and not holds:
                ctx.events.record(
                    "lease-loss",
                    expiry=lease.lease_expiry(ctx.config.lease, ctx.lease.renew_sent),
                )
            held = holds
            await trio.sleep(0.05)

    async def leader_loop(self) -> None:
        """While leading Raft, take over every node whose renewals stopped for L(1+rho)."""
        ctx = self.ctx
        while True:
            await trio.sleep(ctx.config.lease.duration / 8)
            pub = ctx.pub
            if pub is None or not pub.is_leader or pub.elected_at is None:
                continue
            view, now = pub.view, ctx.clock.now()
            leading = {t.current.leader for t in view.topics.values() if t.current.state == OPEN}
            for node in view.nodes:
                if node == ctx.me or (node not in view.alive and node not in leading):
                    continue
                if not lease.takeover_due(
                    ctx.config.lease, pub.renew_applied.get(node), pub.elected_at, now
                ):
                    continue
                attempt = (node, view.renew_seq[node])
                if attempt not in self._takeovers_tried:
                    self._takeovers_tried.add(attempt)
                    ctx.background(self._takeover, *attempt)
            for topic in view.topics.values():
                for seg in topic.pending:
                    if len(seg.replicas) > 1:
                        self.recovery.seal_pending(topic.name, seg)

    def _moved_to(self, node: int) -> list[int]:
        """The nodes now leading the segments that follow ``node``'s sealed-pending-count ones."""
        leaders = set()
        for topic in self.ctx.view.topics.values():
            for seg, nxt in zip(topic.segments, topic.segments[1:], strict=False):
                if seg.leader == node and seg.state == PENDING:
                    leaders.add(nxt.leader)
        return sorted(leaders)

    async def _takeover(self, node: int, renew_seq: int) -> None:
        try:
            result = await self.ctx.propose("takeover", node, renew_seq)
        except ProposalError as exc:
            self._takeovers_tried.discard((node, renew_seq))
            log.warning("takeover of node %d: %s", node, exc)
            return
        self.ctx.events.record(
            "takeover",
            silent=node,
            renew_seq=renew_seq,
            result=result,
            moved_to=self._moved_to(node),
        )
        log.info("takeover of node %d: %s", node, result)
