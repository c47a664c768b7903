"""Planted bugs: our node with one deliberate mistake, to show a fault or checker catching it.

A verifier that never fails proves nothing, and a fault that never lands where a bug lives
proves little more. Each mutant here is a small patch applied to the node's classes in the node
process, before ``walrus node`` starts (``python -m harness.mutants NAME node ...``); the
``walrus`` package itself carries none of them. The harness runs one with ``--mutant NAME``
(local backend: the node image holds only ``walrus``).

- ``ack-during-rollover``: a PUT that arrives while its segment is being rolled over (sealed
  here, the rollover not yet committed) is answered OK at once and written once the next
  segment is open. Killing the node in that window loses acknowledged writes; the window is
  a Raft commit wide, so faults on a timer rarely land in it and ``kill@seal`` does.
  Answers only plain PUT this way (a PUTX reply names a position not yet chosen), so it is
  run ``--black-box``.
"""

import sys
from collections.abc import Callable


def _ack_during_rollover() -> None:
    from walrus import protocol
    from walrus.writes import Writer

    right = Writer.put

    def put(self: Writer, req, hops: int):
        ctx = self.ctx
        topic = ctx.view.topic(req.topic)
        if (
            req.command == "PUT"
            and topic is not None
            and topic.current.leader == ctx.me
            and (topic.name, topic.current.id) in ctx.rolling
        ):
            ctx.background(self._put_after_change, req, hops, topic.current)
            return protocol.OK
        return right(self, req, hops)

    Writer.put = put


MUTANTS: dict[str, Callable[[], None]] = {"ack-during-rollover": _ack_during_rollover}
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
