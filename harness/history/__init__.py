"""Histories: the record of every client operation and fault, as ``history.jsonl``.

The format is a public contract (``docs/design.md`` §4): other tools may write histories for
``walrus-harness check``. One JSON object per line, in order of occurrence::

    {"index": 0, "time": 1200, "process": 3, "type": "invoke", "f": "put", "topic": "t1",
     "value": "3-17"}
    {"index": 1, "time": 2100500, "process": 3, "type": "ok", "f": "put", "topic": "t1",
     "value": "3-17", "pos": [2, 40], "node": 1, "epoch": 5}

- ``time``: nanoseconds since the test started; ``index``: 0, 1, 2, ...
- ``type``: ``invoke``, then exactly one of ``ok``, ``fail`` (certainly did not happen) or
  ``info`` (unknown), paired as below.
- ``f``: ``put`` or ``get``; a ``get`` ok with ``value`` null is EMPTY. Values are unique per topic.
- Optional: a get's invocation may carry ``"tag"``, the tag its ``GETX`` sent; the nodes log which
  entry they handed to which tag, which resolves what an ``info`` get consumed.
- Faults: process ``"nemesis"``, type ``info``, ``f`` ``start-X`` / ``stop-X``.
- Optional: a get's ``ok`` completion with a value may carry ``"ack"``, ``"failed"`` or
  ``"unknown"``: the system needs the value acknowledged and that acknowledgement did not
  certainly happen, so an at-least-once system may hand the value out again.
- An optional first line without ``index``, the header, says what produced the history:
  ``{"history": 1, "system": "walrus-rs", "black_box": true, "delivery": {...}}``. A black-box
  history has no positions, nodes or epochs (plain ``PUT``/``GET``), so the checkers that need
  them do not apply. A history without a header is black-box when no acknowledged put carries a
  position. ``delivery`` is the system's promise (``harness.history.delivery``: once or at least
  once, which order, its source); without it, Walrus's: each value once, in order.

``Op`` pairs an invocation with its completion: what the checkers work on. The pairing rules,
stated here once (``_Pairing`` keeps them for this reader, ``scan.feed`` for the columnar one,
and the tests hold the two readers to the same operations and the same errors):

1. A process has at most one operation open. Its invocation opens it; the process's next client
   event completes it (``ok``, ``fail`` or ``info``), and names the same ``f``. A second
   invocation while one is open, a completion with none open, or one naming another ``f``
   breaks the history.
2. After ``info`` the process is retired: it never invokes again.
3. The operation takes from its invocation the process, ``f``, ``topic``, time (``inv``), index,
   ``tag`` (present unless null) and a put's ``value``; from its completion the index, ``type``,
   ``node`` and ``error``, the time (``ret``) unless ``info`` (``end`` keeps it whatever the
   type), and when ``ok`` a get's ``value`` (null: EMPTY) and ``ack`` or a put's ``pos`` and
   ``epoch``. Anything else on the lines is not read. An
   operation never completed is ``info`` with ``ret`` INF, like one completed with ``info``.

This module is the format and its reader of record (``load``); the rest of the package reads
histories at scale and what goes with them: ``columns`` (a history as numpy columns, the
checkers' input), ``scan`` (its numba kernel) and ``node_events`` (the nodes' event logs).
"""

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from harness.history.delivery import EXACTLY_ONCE_IN_ORDER, Delivery

INF = math.inf
"""The completion time of an operation whose outcome is unknown."""


class HistoryError(ValueError):
    """A history that breaks the format; the message names the line."""


@dataclass
class Event:
    """One line of a history."""

    index: int
    time: int
    process: int | str
    type: str
    f: str
    topic: str | None = None
    value: object = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The line as a JSON object."""
        out = {
            "index": self.index,
            "time": self.time,
            "process": self.process,
            "type": self.type,
            "f": self.f,
        }
        if self.topic is not None:
            out["topic"] = self.topic
        out["value"] = self.value
        out.update(self.extra)
        return out


@dataclass(slots=True)
class Op:
    """An operation: invocation and completion. ``ret`` is INF (and ``type`` "info") when it
    never completed or completed with info."""

    process: int
    f: str
    topic: str
    value: str | None
    inv: float
    ret: float
    type: str
    invoke_index: int
    complete_index: int | None
    node: int | None = None
    pos: tuple[int, int] | None = None
    epoch: int | None = None
    error: str | None = None
    tag: str | None = None
    resolved: bool = False
    ack: str | None = None
    """A get's acknowledgement that did not certainly happen: ``failed`` or ``unknown``."""
    end: float = INF
    """When the completion was recorded, ``info`` included (INF: never)."""

    @property
    def ok(self) -> bool:
        """True if it certainly happened."""
        return self.type == "ok"

    def describe(self) -> str:
        """A short description for anomaly reports."""
        what = (
            f"{self.f} {self.value!r}"
            if self.f == "put"
            else (
                "get -> EMPTY"
                if self.ok and self.value is None
                else f"get -> {self.value!r}"
                if self.ok
                else "get"
            )
        )
        when = f"{self.inv / 1e9:.3f}s" + ("" if self.ret == INF else f"-{self.ret / 1e9:.3f}s")
        status = {"ok": "", "info": " (outcome unknown)", "fail": " (failed)"}[self.type]
        node = "" if self.node is None else f" via node {self.node}"
        return f"op #{self.invoke_index} process {self.process} {what} at {when}{node}{status}"


FORMAT_VERSION = 1
"""The ``history`` of the header line this harness writes."""


@dataclass(frozen=True)
class Header:
    """What produced a history: the system, whether it was driven as a black box, and what it
    promises about delivery."""

    system: str | None = None
    black_box: bool | None = None
    delivery: Delivery | None = None

    def to_json(self) -> dict:
        """The header line."""
        out = {"history": FORMAT_VERSION, "system": self.system, "black_box": self.black_box}
        if self.delivery is not None:
            out["delivery"] = self.delivery.to_json()
        return out

    @property
    def promise(self) -> Delivery:
        """The delivery promise to judge the history by (Walrus's when the header has none)."""
        return self.delivery or EXACTLY_ONCE_IN_ORDER


class Recorder:
    """Writes a history as it happens, after its header; thread-unsafe (one trio loop)."""

    def __init__(self, out: TextIO, clock: Callable[[], int], header: Header | None = None) -> None:
        self._out = out
        self._clock = clock
        self._next = 0
        self.events: list[Event] = []
        if header is not None:
            out.write(json.dumps(header.to_json(), separators=(",", ":")) + "\n")

    def now(self) -> int:
        """Nanoseconds since the start."""
        return self._clock()

    def record(
        self,
        process: int | str,
        type_: str,
        f: str,
        topic: str | None = None,
        value: object = None,
        **extra: object,
    ) -> Event:
        """Append one event."""
        event = Event(self._next, self.now(), process, type_, f, topic, value, extra)
        self._next += 1
        self.events.append(event)
        self._out.write(json.dumps(event.to_json(), separators=(",", ":")) + "\n")
        return event

    def flush(self) -> None:
        """Flush to the file."""
        self._out.flush()


_TYPES = {"invoke", "ok", "fail", "info"}


def parse_event(raw: dict, line: int) -> Event:
    """An Event from a JSON object, checked against the format."""
    try:
        index, time_, process, type_, f = (
            raw[k] for k in ("index", "time", "process", "type", "f")
        )
    except KeyError as exc:
        raise HistoryError(f"line {line}: missing key {exc.args[0]!r}") from None
    if type_ not in _TYPES:
        raise HistoryError(f"line {line}: type must be invoke/ok/fail/info, not {type_!r}")
    if not isinstance(time_, int | float) or not isinstance(index, int):
        raise HistoryError(f"line {line}: index and time must be numbers")
    if not (isinstance(process, int) or process == "nemesis"):
        raise HistoryError(f'line {line}: process must be an integer or "nemesis"')
    extra = {
        k: v
        for k, v in raw.items()
        if k not in ("index", "time", "process", "type", "f", "topic", "value")
    }
    return Event(index, time_, process, type_, f, raw.get("topic"), raw.get("value"), extra)


def _raw_lines(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise HistoryError(f"line {n}: not JSON ({exc})") from None
            if not isinstance(raw, dict):
                raise HistoryError(f"line {n}: not a JSON object")
            yield n, raw


def _is_header(raw: dict, line: int) -> bool:
    if "history" not in raw or "index" in raw:
        return False
    if line != 1:
        raise HistoryError(f"line {line}: a header must be the first line")
    return True


def read_header(path: Path) -> Header:
    """The history's header (empty if it has none)."""
    for n, raw in _raw_lines(path):
        if _is_header(raw, n):
            delivery = raw.get("delivery")
            try:
                promise = None if delivery is None else Delivery.from_json(delivery)
            except ValueError as exc:
                raise HistoryError(f"line {n}: {exc}") from None
            return Header(raw.get("system"), raw.get("black_box"), promise)
        break
    return Header()


def read_events(path: Path) -> list[Event]:
    """Every event of a history file."""
    return [parse_event(raw, n) for n, raw in _raw_lines(path) if not _is_header(raw, n)]


class _Pairing:
    """Turns a stream of client events (raw JSON objects) into Ops by the pairing rules (the
    module's docstring), checking the format."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._open: dict[int, int] = {}
        self._retired: set[int] = set()

    def feed(self, raw: dict, where: str | int) -> None:
        """Take one client event; ``where`` (a line number or a description) names it in errors."""
        process, type_, f = raw["process"], raw["type"], raw["f"]
        if f != "put" and f != "get":
            raise HistoryError(f"{_where(where)}: f must be put or get, not {f!r}")
        if type_ == "invoke":
            if process in self._open:
                raise HistoryError(f"{_where(where)}: process {process} invoked twice")
            if process in self._retired:
                raise HistoryError(f"{_where(where)}: process {process} invoked after an info")
            topic = raw.get("topic")
            if topic.__class__ is not str:
                raise HistoryError(f"{_where(where)}: an operation needs a topic")
            self._open[process] = len(self.ops)
            op = Op(
                process,
                f,
                topic,
                raw.get("value") if f == "put" else None,
                raw["time"],
                INF,
                "info",
                raw["index"],
                None,
            )
            op.tag = raw.get("tag")
            self.ops.append(op)
            return
        slot = self._open.pop(process, None)
        if slot is None:
            raise HistoryError(f"{_where(where)}: {type_} without an invocation")
        op = self.ops[slot]
        if f != op.f:
            raise HistoryError(f"{_where(where)}: a {f} completes process {process}'s {op.f}")
        op.complete_index = raw["index"]
        op.end = raw["time"]
        op.type = type_
        op.node = raw.get("node")
        op.error = raw.get("error")
        if type_ == "info":
            self._retired.add(process)
            return
        op.ret = raw["time"]
        if type_ == "ok":
            if f == "get":
                op.value = raw.get("value")
                op.ack = raw.get("ack")
            else:
                pos = raw.get("pos")
                op.pos = tuple(pos) if pos is not None else None
                op.epoch = raw.get("epoch")


def _where(where: str | int) -> str:
    return f"line {where}" if isinstance(where, int) else where


def pair(events: Iterable[Event]) -> list[Op]:
    """Client operations from events (nemesis events skipped), in invocation order.

    Raises HistoryError for a completion without an invocation, a second invocation while one
    is outstanding, or an invocation after an info.
    """
    pairing = _Pairing()
    for e in events:
        if e.process != "nemesis":
            pairing.feed(e.to_json(), f"event {e.index}")
    return pairing.ops


def load(path: Path) -> tuple[list[Event], list[Op]]:
    """(nemesis events, ops) of a history file, in one pass."""
    nemesis: list[Event] = []
    pairing = _Pairing()
    for n, raw in _raw_lines(path):
        if _is_header(raw, n):
            continue
        if raw.get("process") == "nemesis":
            nemesis.append(parse_event(raw, n))
            continue
        process, type_, time_ = raw.get("process"), raw.get("type"), raw.get("time")
        if type_ not in _TYPES:
            raise HistoryError(f"line {n}: type must be invoke/ok/fail/info, not {type_!r}")
        if process.__class__ is not int or time_.__class__ not in (int, float):
            raise HistoryError(f"line {n}: process must be an integer, time a number")
        try:
            pairing.feed(raw, n)
        except KeyError as exc:
            raise HistoryError(f"line {n}: missing key {exc.args[0]!r}") from None
    return nemesis, pairing.ops


def nemesis_windows(events: Iterable[Event]) -> list[tuple[str, float, float, object]]:
    """(fault, start ns, stop ns, value) for every start-X/stop-X pair, from when the fault
    began acting to when its stop was done; open ones end at INF."""
    open_: dict[str, tuple[float, object]] = {}
    windows = []
    for e in events:
        if e.process != "nemesis":
            continue
        kind, _, name = e.f.partition("-")
        if kind == "start":
            began = e.value.get("began", e.time) if isinstance(e.value, dict) else e.time
            open_[name] = (began, e.value)
        elif kind == "stop" and name in open_:
            start, value = open_.pop(name)
            windows.append((name, start, e.time, value))
    windows.extend((name, start, INF, value) for name, (start, value) in open_.items())
    return sorted(windows, key=lambda w: w[1])
