"""Workloads: what a benchmark run asks of a system, in OpenMessaging Benchmark's terms.

A workload is a small YAML file (``harness/bench/workloads/``) with OMB's field names where OMB has
one — ``topics``, ``messageSize``, ``producersPerTopic``, ``subscriptionsPerTopic``,
``consumerPerSubscription``, ``producerRate`` (0: find the highest sustainable rate),
``testDurationMinutes``, ``warmupDurationMinutes``, ``consumerBacklogSizeGB`` — and a few of our
own for a machine where runs last seconds, not hours: ``testDurationSeconds``,
``warmupDurationSeconds``, ``backlogMessages``, ``rateOfMax`` (a fixed rate as a fraction of the
highest sustainable rate found for the same shape) and ``rateSteps`` (a list of such fractions:
a latency-throughput curve), and a nemesis for the fixed-rate workload: ``nemesis: kill-leader``
(SIGKILL the node leading the first topic — for NATS the stream's leader, for Redis its one
server — ``nemesisAtSeconds`` into the phase, restarted ``nemesisDownSeconds`` later) or
``nemesis: partition-leader`` (cut that node off from the other nodes for as long, clients still
reaching every node: ``harness.bench.omb.cut``).
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

NEMESES = ("kill-leader", "partition-leader")
"""The faults a benchmark workload can inject."""

WORKLOADS = Path(__file__).resolve().parent.parent / "workloads"
"""The workload files in the repository."""


class WorkloadError(ValueError):
    """A workload file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Workload:
    """One workload."""

    name: str
    topics: int = 1
    message_size: int = 100
    producers_per_topic: int = 1
    consumers_per_topic: int = 1
    producer_rate: float = 0.0
    rate_of_max: float | None = None
    rate_steps: tuple[float, ...] = ()
    warmup_s: float = 2.0
    duration_s: float = 10.0
    backlog_messages: int = 0
    nemesis: str = ""
    nemesis_at_s: float = 0.0
    nemesis_down_s: float = 0.0
    source: str = field(default="", compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """What a highest sustainable rate is measured for: (topics, message size)."""
        return self.topics, self.message_size

    @property
    def finds_max(self) -> bool:
        """True if the workload's rate is the highest sustainable one (searched for)."""
        return self.producer_rate == 0 and self.rate_of_max is None and not self.rate_steps

    def quick(self) -> "Workload":
        """The same workload, short enough for a check (``--quick``)."""
        return replace(
            self,
            warmup_s=min(self.warmup_s, 1.0),
            duration_s=min(self.duration_s, 8.0 if self.nemesis else 2.0),
            backlog_messages=min(self.backlog_messages, 2000),
            rate_steps=self.rate_steps[:: max(1, len(self.rate_steps) // 3)],
            nemesis_at_s=min(self.nemesis_at_s, 2.0),
            nemesis_down_s=min(self.nemesis_down_s, 3.0),
        )


def _number(raw: dict, key: str, where: str, kind=float, minimum: float = 0.0):
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkloadError(f"{where}: {key} must be a number, not {value!r}")
    if value < minimum:
        raise WorkloadError(f"{where}: {key} must be at least {minimum:g}, not {value}")
    return kind(value)


KNOWN = {
    "name",
    "topics",
    "partitionsPerTopic",
    "messageSize",
    "producersPerTopic",
    "subscriptionsPerTopic",
    "consumerPerSubscription",
    "producerRate",
    "testDurationMinutes",
    "testDurationSeconds",
    "warmupDurationMinutes",
    "warmupDurationSeconds",
    "consumerBacklogSizeGB",
    "backlogMessages",
    "rateOfMax",
    "rateSteps",
    "nemesis",
    "nemesisAtSeconds",
    "nemesisDownSeconds",
}


def load(path: Path) -> Workload:
    """A workload from its YAML file; WorkloadError naming the file and field if it is wrong."""
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise WorkloadError(f"{where}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{where}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise WorkloadError(f"{where}: a workload is a YAML mapping of OMB's fields")
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise WorkloadError(f"{where}: unknown fields {', '.join(unknown)}")
    if raw.get("partitionsPerTopic", 1) != 1:
        raise WorkloadError(f"{where}: partitionsPerTopic must be 1 (a Walrus topic is one log)")
    if raw.get("subscriptionsPerTopic", 1) != 1:
        raise WorkloadError(
            f"{where}: subscriptionsPerTopic must be 1 (a Walrus topic has one shared cursor; "
            "consumerPerSubscription sets how many consumers share it)"
        )
    n = lambda key, kind=float, minimum=0.0: _number(raw, key, where, kind, minimum)  # noqa: E731
    duration = n("testDurationSeconds") or 60 * (n("testDurationMinutes") or 0) or 10.0
    warmup = n("warmupDurationSeconds")
    if warmup is None:
        warmup = 60 * (n("warmupDurationMinutes") or 0) if "warmupDurationMinutes" in raw else 2.0
    size = n("messageSize", int, 32) or 100
    backlog = n("backlogMessages", int) or 0
    if n("consumerBacklogSizeGB"):
        backlog = int(n("consumerBacklogSizeGB") * 1e9 / size)
    steps = raw.get("rateSteps") or ()
    if not isinstance(steps, list | tuple) or not all(
        isinstance(x, int | float) and 0 < x <= 2 for x in steps
    ):
        raise WorkloadError(f"{where}: rateSteps must be a list of fractions of the max rate")
    nemesis = raw.get("nemesis") or ""
    if nemesis and nemesis not in NEMESES:
        raise WorkloadError(f"{where}: nemesis {nemesis!r} is not one of {', '.join(NEMESES)}")
    if nemesis and ("rateSteps" in raw or backlog):
        raise WorkloadError(f"{where}: a nemesis runs in a fixed-rate workload only")
    rate_of_max = n("rateOfMax")
    if rate_of_max is not None and not 0 < rate_of_max <= 2:
        raise WorkloadError(f"{where}: rateOfMax must be a fraction of the max rate (0, 2]")
    return Workload(
        name=str(raw.get("name") or path.stem),
        topics=n("topics", int, 1) or 1,
        message_size=size,
        producers_per_topic=n("producersPerTopic", int, 1) or 1,
        consumers_per_topic=n("consumerPerSubscription", int, 1) or 1,
        producer_rate=n("producerRate") or 0.0,
        rate_of_max=rate_of_max,
        rate_steps=tuple(float(x) for x in steps),
        warmup_s=warmup,
        duration_s=duration,
        backlog_messages=backlog,
        nemesis=nemesis,
        nemesis_at_s=n("nemesisAtSeconds") or warmup + duration / 3,
        nemesis_down_s=n("nemesisDownSeconds") or 5.0,
        source=where,
    )


DEFAULT = (
    "10-max-rate-1-topic-100b.yaml",
    "20-fixed-rate-half-max-1-topic-100b.yaml",
    "30-rate-steps-1-topic-100b.yaml",
)
"""What ``bench compare`` runs unless told otherwise: max rate, fixed rate, rate steps (about
20 minutes for every system here); ``--workloads all`` adds 16 topics, the backlog and the
nemesis."""


def standard(every: bool = False) -> list[Path]:
    """The default workload files, or every one in the repository, in name order."""
    if every:
        return sorted(WORKLOADS.glob("*.yaml"))
    return [WORKLOADS / name for name in DEFAULT]
