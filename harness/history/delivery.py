"""What a system promises about the values its topics hand out: the checkers' yardstick.

A history's header carries the promise of the system that produced it, so ``check`` judges a
history by what its system documents, not by Walrus's rules. Walrus hands out each entry once, in
the order the topic holds them. JetStream, RabbitMQ and Redis consumer groups hand out each value
*at least* once: a value whose acknowledgement failed, or never arrived within the system's
redelivery time, is handed out again, and that is not a violation.
"""

from dataclasses import asdict, dataclass

ORDERS = ("topic", "none")
"""``topic``: values leave a topic in the order they were acknowledged into it; ``none``: no
order is promised."""


@dataclass(frozen=True)
class Delivery:
    """A system's delivery promise, and where it says so."""

    once: bool
    """True: each value is handed out at most once; False: at least once (a value whose
    acknowledgement failed, or never came, may be handed out again)."""
    order: str
    """One of ``ORDERS``."""
    source: str
    """Where the system documents it."""
    redelivery_s: float | None = None
    """At least once: a value handed out and not acknowledged is handed out again within this
    many seconds (JetStream's AckWait), so a get whose outcome is unknown consumed nothing for
    good once that long has passed. None: no such bound is promised."""
    acked_final: bool = True
    """At least once: a value whose acknowledgement the system confirmed is never handed out
    again (False: a confirmed acknowledgement may still be followed by a redelivery)."""

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {self.order!r}")

    def to_json(self) -> dict[str, object]:
        """The promise as the history's header keeps it."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> "Delivery":
        """A promise from a header; ValueError naming what is wrong with it."""
        if not isinstance(raw, dict):
            raise ValueError(f"delivery must be an object, not {raw!r}")
        once, order, source = raw.get("once"), raw.get("order"), raw.get("source", "")
        redelivery_s, acked_final = raw.get("redelivery_s"), raw.get("acked_final", True)
        if not isinstance(once, bool) or not isinstance(acked_final, bool):
            raise ValueError("delivery: once and acked_final must be true or false")
        if not isinstance(order, str) or not isinstance(source, str):
            raise ValueError("delivery: order and source must be strings")
        if redelivery_s is not None and (
            not isinstance(redelivery_s, int | float) or redelivery_s < 0
        ):
            raise ValueError("delivery: redelivery_s must be a non-negative number or null")
        return cls(once, order, source, redelivery_s, acked_final)

    def describe(self) -> str:
        """One line: the promise in words."""
        how = "once" if self.once else "at least once"
        order = "in order" if self.order == "topic" else "in no promised order"
        return f"each value {how}, {order}"


EXACTLY_ONCE_IN_ORDER = Delivery(
    True,
    "topic",
    "Walrus: GET hands out the next entry of the topic's one shared cursor, so each entry once, "
    "in the order the topic holds them (docs/design.md §2)",
)
"""Walrus's promise, which every Walrus client declares; a history without one is judged by it."""
