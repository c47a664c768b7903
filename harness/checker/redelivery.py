"""Which repeated deliveries a system's promise explains: redeliveries versus duplicates.

A system that delivers each value at most once (Walrus) explains no repeat: every second delivery
is a duplicate. One that delivers at least once hands a value out again when its acknowledgement
may not have taken effect. A later delivery of a value is *explained* — a redelivery, reported but
no violation — when some earlier delivery of it

- was a get whose outcome is unknown (the client may never have acknowledged it),
- carried ``ack`` ``failed`` or ``unknown`` (the acknowledgement did not certainly happen), or
- had not yet returned when the later get was invoked (its acknowledgement may have been
  processed after the later hand-out: an ack that arrives after the redelivery time is such a
  case, since the redelivery comes at least that long after the first hand-out),

or when the system does not promise that a confirmed acknowledgement ends a value's deliveries
(``Delivery.acked_final`` False). Any other repeat — every earlier delivery returned and its
acknowledgement confirmed before the later get was even invoked — is a *duplicate* the promise
does not allow.
"""

from collections.abc import Iterable

from harness.history import Op
from harness.history.delivery import Delivery


def explained(deliveries: Iterable[Op], delivery: Delivery) -> bool:
    """True if every repeat among ``deliveries`` (the gets that returned one value) is a
    redelivery ``delivery`` allows (the module's rules); False if any is a duplicate."""
    if delivery.once:
        return False
    if not delivery.acked_final:
        return True
    earlier: list[Op] = []
    for op in sorted(deliveries, key=lambda o: o.inv):
        if earlier and not any(
            e.type != "ok" or e.ack is not None or op.inv < e.ret for e in earlier
        ):
            return False
        earlier.append(op)
    return True
