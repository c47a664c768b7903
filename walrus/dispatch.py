"""Requests to their handlers: client frames, and the commands peers send over the node RPC.

A client frame is parsed and served here or forwarded (PUT to the open segment's leader, the
read path's POP to the holder of the cursor's segment); a peer's RPC command is either ``POP``
(the read path's hand-out at the holder, ``walrus.reads``), ``APPEND`` (a segment leader's
entries for a follower, ``walrus.replication``), ``SEAL``/``FETCH``/``FILL`` (a replicated
segment's copies after its leader, ``walrus.segment_recovery``), or a client command it forwarded,
served with its hop count so that a forwarding loop ends. REGISTER and METRICS are answered
here; METRICS is rendered by ``walrus.metrics``, a pure function of the node's state.
"""

from walrus import lease, metrics, protocol
from walrus.context import Context, proposal_failure
from walrus.metadata import ProposalError
from walrus.metastate import state_json
from walrus.protocol import Request
from walrus.reads import Reader
from walrus.replication import Append
from walrus.segment_recovery import Recovery
from walrus.server import Pending
from walrus.writes import Writer, register_reply


class Dispatcher:
    """Routes each request of a client or a peer to the writer, the reader, or an answer."""

    def __init__(self, ctx: Context, writer: Writer, reader: Reader, recovery: Recovery) -> None:
        self.ctx = ctx
        self.writer = writer
        self.reader = reader
        self.recovery = recovery

    def client(self, body: bytes) -> bytes | Pending:
        """A client request frame."""
        return self.handle(protocol.parse(body), 0)

    def rpc(self, hops: int, command: bytes) -> bytes | Pending:
        """A command a peer sent over the node RPC, ``hops`` forwards from its client."""
        if command.startswith(b"APPEND "):
            try:
                batch = Append.decode(command)
            except protocol.ProtocolError as exc:
                return exc.reply.encode()
            return self.ctx.spawn(self.ctx.replication.append, batch)
        if command.startswith((b"SEAL ", b"FETCH ", b"FILL ")):
            return self.ctx.spawn(self.recovery.serve, command)
        if command.startswith(b"POP "):
            parts = command.decode(errors="replace").split(" ")
            if len(parts) not in (3, 4) or not parts[2].isdigit():
                return protocol.err("POP takes <topic> <segment> [<tag>]")
            return self.reader.pop(parts[1], int(parts[2]), parts[3] if len(parts) == 4 else "")
        try:
            return self.handle(protocol.parse(command), hops)
        except protocol.ProtocolError as exc:
            return exc.reply.encode()

    def handle(self, req: Request, hops: int) -> bytes | Pending:
        """Start serving a parsed request."""
        ctx = self.ctx
        if ctx.pub is None:
            return protocol.unavailable(f"node {ctx.me} is starting (no metadata yet)")
        command = req.command
        if command in ("PUT", "PUTX"):
            return self.writer.put(req, hops)
        if command in ("GET", "GETX"):
            return self.reader.get(req, hops)
        if command == "STATE":
            topic = ctx.view.topic(req.topic)
            if topic is None:
                return protocol.unknown_topic(req.topic)
            return protocol.json_reply(state_json(topic))
        if command == "METRICS":
            return ctx.spawn(self._metrics)
        if command == "REGISTER":
            return ctx.spawn(self._register, req.topic)
        return self.reader.scan(req, hops)

    async def _register(self, topic: str) -> bytes:
        if self.ctx.view.topic(topic) is not None:
            return protocol.OK
        try:
            return register_reply(await self.ctx.propose("register", topic))
        except ProposalError as exc:
            return proposal_failure(exc)

    async def _metrics(self) -> bytes:
        ctx = self.ctx
        status = await ctx.meta.status()
        if status is None:
            return protocol.unavailable("the Raft thread did not answer")
        now = ctx.clock.now()
        lease_state = {
            "lease_holds": ctx.lease.holds(now),
            "lease_remaining_s": lease.remaining(ctx.config.lease, ctx.lease.renew_sent, now),
        }
        body = metrics.render(ctx.config, status, ctx.view, lease_state, ctx.clock)
        return protocol.json_reply(body, pretty=True)
