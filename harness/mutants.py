"""Planted bugs: our node with one deliberate mistake, to show a fault or checker catching it.

A verifier that never fails proves nothing, and a fault that never lands where a bug lives
proves little more. Each mutant here is a small patch applied to the node's classes in the node
process, before ``walrus node`` starts (``python -m harness.mutants NAME node ...``); the
``walrus`` package itself carries none of them. The harness runs one with ``--mutant NAME``
(local backend: the node image holds only ``walrus``).

- ``ack-during-rollover``: a PUT that arrives in the first 50 ms of its segment's rollover
  (sealed here, the rollover not yet committed) is answered OK at once and written once the
  next segment is open. Nothing is reordered, so without a fault no client can tell: the
  early-answered PUTs are written in arrival order, PUTs behind them wait their turn one at a
  time, and rollovers keep a topic on its leader (so that PUTs sent straight to a new leader
  cannot overtake them). Killing the node in that window loses acknowledged writes; the window
  is a Raft commit wide, so faults on a timer rarely land in it and ``kill@seal`` does.
  Answers only plain PUT this way (a PUTX reply names a position not yet chosen), so it is run
  ``--black-box``.
- ``lease-stamped-late``: a committed renewal is not taken as the lease at once; the node's
  next look (every 100 ms) stamps the lease with the time of that look instead of the time the
  renewal was sent. Without a fault the lease then ends at most 0.1 s late, inside the margin
  the takeover wait keeps (``walrus.lease``), so no run can tell. A pause that begins between
  the renewal's sending and that look, and lasts past the takeover, ends with the node stamping
  a fresh lease on waking and appending to a segment already handed on: the lease checker sees
  appends after the committed lease's end and two writers of one topic. The window is about a
  tenth of each renewal interval, so pauses on a timer rarely begin in it and ``pause@lease-renew``
  does. (With replicated segments the followers refuse those appends, so nothing stale is
  acknowledged and the queue checker has nothing to see.)
- ``raft-as-shipped``: the metadata's Raft follower as pysyncobj 0.3.17 ships it, which deletes
  every entry after an AppendEntries' previous one, applied or not (``walrus/raft.py``): the node
  as it was before that correction. A follower that rejoins a new leader behind it deletes
  entries it applied (the metadata checker's ``applied_truncated``); with a leader that dies
  before it sends the rest (``kill@meta-truncate``), committed entries can be lost.
- ``apply-before-commit``: a metadata follower applies every entry it appends, before any leader
  says it is committed. With three nodes no run can tell (an entry on two of three is never
  overwritten); with five, a metadata leader cut off with one follower keeps appending there,
  the follower applies what the majority side then overwrites (``apply_divergence``), and
  refuses the majority's entries once healed (``committed_lost``).
"""

import sys
from collections.abc import Callable

EARLY_WINDOW = 0.05
"""Seconds after a rollover is met during which ``ack-during-rollover`` answers PUTs early
(bounded, so that a rollover held up by a fault elsewhere does not widen its window)."""


class _Waiting:
    """A PUT queued behind early-answered ones: its reply, once its turn has come."""

    def __init__(self) -> None:
        import trio

        self.done = trio.Event()
        self.reply = b""

    async def wait(self) -> bytes:
        await self.done.wait()
        return self.reply


def _ack_during_rollover() -> None:
    import trio

    from walrus import metastate, protocol
    from walrus.writes import Writer

    right = Writer.put
    next_node = metastate._next_node
    metastate._next_node = lambda candidates, after: (
        after if after in candidates else next_node(candidates, after)
    )
    queues: dict[str, list] = {}  # topic -> [(request, hops, _Waiting or None)], in arrival order
    opened: dict[str, float] = {}  # topic -> when its queue opened (a rollover was first met)

    async def drain(self: Writer, name: str, seg_id: int) -> None:
        ctx = self.ctx
        while ctx.view.topic(name).current.id == seg_id:
            await ctx.wait_view_change(1.0)
        queue = queues[name]
        while queue:  # one at a time, in order, whatever they meet (another rollover, say)
            req, hops, waiting = queue.pop(0)
            reply = right(self, req, hops)
            reply = reply if isinstance(reply, bytes) else await reply.reply()
            if waiting is not None:
                waiting.reply = reply
                waiting.done.set()
        del queues[name]

    def put(self: Writer, req, hops: int):
        ctx = self.ctx
        topic = ctx.view.topic(req.topic)
        if req.command != "PUT" or topic is None or topic.current.leader != ctx.me:
            return right(self, req, hops)
        rolling = (topic.name, topic.current.id) in ctx.rolling
        queue = queues.get(topic.name)
        if queue is None:
            if not rolling:
                return right(self, req, hops)
            queue = queues[topic.name] = []
            opened[topic.name] = trio.current_time()
            ctx.background(drain, self, topic.name, topic.current.id)
        if rolling and trio.current_time() - opened[topic.name] < EARLY_WINDOW:
            queue.append((req, hops, None))
            return protocol.OK
        waiting = _Waiting()
        queue.append((req, hops, waiting))
        return ctx.spawn(waiting.wait)

    Writer.put = put


STAMP_EVERY = 0.1
"""Seconds between the looks ``lease-stamped-late`` takes at its committed renews."""


def _lease_stamped_late() -> None:
    import trio

    from walrus.duties import LeaseDuties

    renew_once, lease_watch = LeaseDuties._renew_once, LeaseDuties.lease_watch
    due: set[LeaseDuties] = set()  # holding a committed renew not yet stamped

    async def renew(self: LeaseDuties) -> None:
        before = self.ctx.lease.renew_sent
        await renew_once(self)
        if self.ctx.lease.renew_sent != before:  # committed: the lease is stamped later
            self.ctx.lease.renew_sent = before
            due.add(self)

    async def stamp(self: LeaseDuties) -> None:
        while True:
            await trio.sleep(STAMP_EVERY)
            if self in due:
                due.discard(self)
                self.ctx.lease.renew_sent = self.ctx.clock.now()

    async def watch(self: LeaseDuties) -> None:
        self.ctx.nursery.start_soon(stamp, self)
        await lease_watch(self)

    LeaseDuties._renew_once = renew
    LeaseDuties.lease_watch = watch


def _raft_as_shipped() -> None:
    from walrus.raft import Raft

    Raft._append = lambda self, node, message: message


def _apply_before_commit() -> None:
    from walrus.raft import Raft

    Raft._commit_bound = lambda self, leader_commit, vouched: self.last_log_index()


MUTANTS: dict[str, Callable[[], None]] = {
    "ack-during-rollover": _ack_during_rollover,
    "lease-stamped-late": _lease_stamped_late,
    "raft-as-shipped": _raft_as_shipped,
    "apply-before-commit": _apply_before_commit,
}
"""Every planted bug, by name (importing this module imports no part of the node)."""


def main(argv: list[str]) -> int:
    """``python -m harness.mutants NAME [walrus arguments...]``: the node, with NAME planted."""
    if not argv or argv[0] not in MUTANTS:
        print(f"mutants: the first argument is one of {', '.join(MUTANTS)}", file=sys.stderr)
        return 2
    MUTANTS[argv[0]]()
    from walrus.cli import main as walrus_main

    return walrus_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
