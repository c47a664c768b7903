"""Histories as columns: every operation a row of numpy arrays, Python objects only on demand.

A history of ten million operations as ``Op`` objects takes gigabytes and minutes; as columns it
takes about a hundred and fifty bytes an operation. ``load`` scans ``history.jsonl`` with a
numba kernel (``harness.history.scan``) that parses the history's own lines (flat JSON objects of
numbers, plain strings and ``null``), pairs each invocation with its completion as it goes (by
the pairing rules, stated in ``harness.history``) and writes the operation's fields straight
into arrays. Values are identified by a hash of their bytes: two 64-bit lanes, the
first the identity, the second a check that no two different values share the first (if any
do, the load says so rather than confuse them). What the kernel does not parse — the header,
the nemesis's events, strings with escapes, numbers that are not integers — is parsed in Python
with orjson and paired by the kernel all the same; a line that breaks the format is reported by
``history.load``, the format's one reader of record, so the errors are its errors, line numbers
included.

An ``Op`` is made only for the rows someone asks about (``Columns.op``): the few that an anomaly
names, the first operations a timeline draws. The file is memory-mapped and read in windows whose
pages are dropped behind the scan, so resident memory is the columns, not the file.
"""

import mmap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import orjson

from harness import history
from harness.history import Event, HistoryError, Op
from harness.history.scan import (
    BAD,
    COLUMN_NAMES,
    DONE,
    F_NAMES,
    FAIL,
    GET,
    GROW,
    INFO,
    INVOKE,
    NONE,
    OK,
    PUT,
    T_INV,
    T_RET,
    TYPE_NAMES,
    TYPES,
    Rows,
    State,
    hash_value,
    hash_values,
    scan,
)

__all__ = [
    "FAIL",
    "F_NAMES",
    "GET",
    "INFO",
    "NO",
    "OK",
    "PUT",
    "TYPES",
    "TYPE_NAMES",
    "Columns",
    "Loaded",
    "Source",
    "from_ops",
    "hash_value",
    "hash_values",
    "last_per_value",
    "load",
    "lookup",
]

WINDOW = 64 << 20
"""Bytes of the file scanned per window."""


def lookup(sorted_keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``wanted`` is in ``sorted_keys`` (clipped into it), and whether it is
    there: the one sorted lookup the checkers use."""
    wanted = np.asarray(wanted)
    if not len(sorted_keys):
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
    return at, sorted_keys[at] == wanted


def last_per_value(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values sorted, the last of ``rows`` holding each)."""
    uniq, first_in_flipped = np.unique(values[::-1], return_index=True)
    return uniq, rows[::-1][first_in_flipped]


NO = -1
"""Absent node, segment, offset or epoch in the columns."""


@dataclass(frozen=True, eq=False)
class Columns:
    """A history's operations, one row each in invocation order, as arrays."""

    process: np.ndarray
    f: np.ndarray
    """PUT or GET (int8)."""
    topic: np.ndarray
    """Index into ``topics`` (int32)."""
    topics: tuple[str, ...]
    """Topic names, sorted."""
    value: np.ndarray
    """The value's hash (int64; 0 where there is none): equal values, equal hashes."""
    has_value: np.ndarray
    inv: np.ndarray
    ret: np.ndarray
    """Completion time (ns); INF when the outcome is unknown."""
    type: np.ndarray
    """OK, INFO or FAIL (int8)."""
    invoke_index: np.ndarray
    complete_index: np.ndarray
    node: np.ndarray
    seg: np.ndarray
    off: np.ndarray
    epoch: np.ndarray
    has_tag: np.ndarray
    resolved: np.ndarray
    source: "Source" = field(repr=False)

    def __len__(self) -> int:
        return len(self.inv)

    @property
    def acked_put(self) -> np.ndarray:
        """Rows of acknowledged puts (a mask)."""
        return (self.f == PUT) & (self.type == OK)

    def rows_of_topic(self) -> list[tuple[str, np.ndarray]]:
        """(topic, its rows in invocation order) for every topic, by name."""
        order = np.argsort(self.topic, kind="stable")
        bounds = np.searchsorted(self.topic[order], np.arange(len(self.topics) + 1))
        return [
            (name, order[bounds[k] : bounds[k + 1]])
            for k, name in enumerate(self.topics)
            if bounds[k + 1] > bounds[k]
        ]

    def row(self, invoke_index: int) -> int | None:
        """The row of the operation with this invoke index."""
        order = self._by_index
        k = int(np.searchsorted(self.invoke_index[order], invoke_index))
        if k < len(order) and self.invoke_index[order[k]] == invoke_index:
            return int(order[k])
        return None

    @property
    def _by_index(self) -> np.ndarray:
        cached = self.__dict__.get("_order")
        if cached is None:
            cached = np.argsort(self.invoke_index, kind="stable")
            self.__dict__["_order"] = cached
        return cached

    def op(self, row: int) -> Op:
        """The operation of a row, as an Op (read again from the source)."""
        return self.source.op(row)

    def rows_as_ops(self, rows: Iterable[int]) -> list[Op]:
        """The operations of some rows, as Ops, in that order."""
        return self.source.ops(rows)

    def ops(self, invoke_indexes: Iterable[int]) -> dict[int, Op]:
        """The operations with these invoke indexes, by invoke index."""
        found = {i: r for i in invoke_indexes if (r := self.row(i)) is not None}
        return dict(zip(found, self.source.ops(found.values()), strict=True))


class Source:
    """Where the Op of a row comes from: the history file, or the list the columns were made
    from; resolutions of info gets (``resolve``) laid over either."""

    def __init__(
        self,
        path: Path | None = None,
        lines: tuple[np.ndarray, np.ndarray] | None = None,
        ops: list[Op] | None = None,
        overrides: Mapping[int, dict] | None = None,
    ) -> None:
        self.path, self.lines, self.list, self.overrides = path, lines, ops, dict(overrides or {})

    def over(self, overrides: Mapping[int, dict]) -> "Source":
        """This source with more fields overridden, by row."""
        return Source(self.path, self.lines, self.list, {**self.overrides, **overrides})

    def op(self, row: int) -> Op:
        """The Op of ``row``."""
        return self.ops([row])[0]

    def ops(self, rows: Iterable[int]) -> list[Op]:
        """The Ops of ``rows``, in that order (the file opened once)."""
        rows = [int(r) for r in rows]
        if self.list is not None:
            found = [self.list[r] for r in rows]
        else:
            found = []
            with open(self.path, "rb") as f:
                for r in rows:
                    pairing = history._Pairing()
                    for offset in (int(self.lines[0][r]), int(self.lines[1][r])):
                        if offset >= 0:
                            f.seek(offset)
                            pairing.feed(orjson.loads(f.readline()), f"byte {offset}")
                    found.append(pairing.ops[0])
        return [
            replace(op, **self.overrides[r]) if r in self.overrides else op
            for r, op in zip(rows, found, strict=True)
        ]


def from_ops(ops: list[Op]) -> Columns:
    """Columns of operations in memory (tests, small histories), in the order given."""
    n = len(ops)
    topics = tuple(sorted({o.topic for o in ops}))
    code = {t: k for k, t in enumerate(topics)}

    def col(get, dtype) -> np.ndarray:
        return np.fromiter((get(o) for o in ops), dtype, n)

    hashes = [hash_value(o.value)[0] if o.value is not None else 0 for o in ops]
    return Columns(
        process=col(lambda o: o.process, np.int64),
        f=col(lambda o: PUT if o.f == "put" else GET, np.int8),
        topic=col(lambda o: code[o.topic], np.int32),
        topics=topics,
        value=np.array(hashes, np.int64) if n else np.zeros(0, np.int64),
        has_value=col(lambda o: o.value is not None, bool),
        inv=col(lambda o: o.inv, float),
        ret=col(lambda o: o.ret, float),
        type=col(lambda o: TYPES[o.type], np.int8),
        invoke_index=col(lambda o: o.invoke_index, np.int64),
        complete_index=col(
            lambda o: -1 if o.complete_index is None else o.complete_index, np.int64
        ),
        node=col(lambda o: NO if o.node is None else o.node, np.int64),
        seg=col(lambda o: NO if o.pos is None else o.pos[0], np.int64),
        off=col(lambda o: NO if o.pos is None else o.pos[1], np.int64),
        epoch=col(lambda o: NO if o.epoch is None else o.epoch, np.int64),
        has_tag=col(lambda o: o.tag is not None, bool),
        resolved=col(lambda o: o.resolved, bool),
        source=Source(ops=list(ops)),
    )


MIN_LINE = 48
"""Fewer bytes than any client line that has every key an operation needs."""


class _Refused(Exception):
    """A line the columnar reader will not take: ``history.load`` says why."""


@dataclass(frozen=True)
class Loaded:
    """A history as ``load`` reads it, once: its header, nemesis events and operations."""

    header: history.Header
    nemesis: list[Event]
    ops: Columns


def load(path: Path) -> Loaded:
    """A history file, read once.

    Raises HistoryError, as ``history.load`` does, for a history that breaks the format.
    """
    try:
        nemesis, ops = _load(path)
    except _Refused:
        history.load(path)  # raises the format's own error, naming the line
        raise HistoryError(f"{path}: a line the columnar reader cannot take") from None
    return Loaded(history.read_header(path), nemesis, ops)


def _load(path: Path) -> tuple[list[Event], Columns]:
    size = path.stat().st_size
    state = State.empty(size // MIN_LINE + 1)
    names: dict[int, str] = {}
    nemesis: list[Event] = []
    if size == 0:
        return nemesis, _columns(state.rows, names, path)
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    buf = np.frombuffer(mm, np.uint8)
    try:
        pos = 0
        while pos < size:
            stop = mm.find(b"\n", min(size, pos + WINDOW))
            stop = size if stop < 0 else stop + 1
            done = pos
            while True:  # until DONE, which pairs any event _python_line left
                what, line, nxt = scan(buf, pos, stop, state)
                if what == DONE:
                    break
                if what == BAD:
                    raise _Refused
                if what == GROW:
                    state = state.grown()
                    pos = line
                    continue
                if state.processes.full():
                    state = state.grown()
                _python_line(bytes(buf[line:nxt]), line, nemesis, names, state)
                pos = nxt
            pos = stop
            if stop - done > mmap.PAGESIZE:
                mm.madvise(mmap.MADV_DONTNEED, done - done % mmap.PAGESIZE, stop - done)
        for h, offset in state.topics.items():
            end = mm.find(b'"', offset)
            names.setdefault(h, mm[offset:end].decode())
    finally:
        del buf
        mm.close()
    return nemesis, _columns(state.rows, names, path)


def _python_line(
    data: bytes, offset: int, nemesis: list[Event], names: dict[int, str], state: State
) -> None:
    """A line the kernel left: the header, a nemesis event, or a client event it could not
    parse (escapes, fractional times), left in ``state`` for the next scan to pair."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _Refused from None
    if not isinstance(raw, dict):
        raise _Refused
    if "history" in raw and "index" not in raw:
        if offset != 0:
            raise _Refused
        return
    if raw.get("process") == "nemesis":
        try:
            nemesis.append(history.parse_event(raw, 0))
        except HistoryError:
            raise _Refused from None
        return
    process, type_, f, time_ = (raw.get(k) for k in ("process", "type", "f", "time"))
    index, topic, pos = raw.get("index"), raw.get("topic"), raw.get("pos")
    if (
        type_ not in ("invoke", *TYPES)
        or process.__class__ is not int
        or time_.__class__ not in (int, float)
        or index.__class__ is not int
        or f not in F_NAMES
        or (type_ == "invoke" and topic.__class__ is not str)
    ):
        raise _Refused
    fields = {
        "line": offset,
        "index": index,
        "time": time_,
        "process": process,
        "type": INVOKE if type_ == "invoke" else TYPES[type_],
        "f": PUT if f == "put" else GET,
        "has_tag": raw.get("tag") is not None,
    }
    if type_ == "invoke":  # a completion's topic is not read
        fields["topic"] = h = hash_value(topic)[0]
        names.setdefault(h, topic)
    value = raw.get("value")
    if value is not None:
        fields["has_value"] = True
        fields["value"], fields["value2"] = hash_value(value)
    if type_ == "ok" and pos is not None:
        if not (isinstance(pos, list) and len(pos) == 2 and all(isinstance(x, int) for x in pos)):
            raise _Refused
        fields["seg"], fields["off"] = pos
    for name in ("node", "epoch"):
        x = raw.get(name)
        if x is not None:
            if x.__class__ is not int:
                raise _Refused
            fields[name] = x
    state.pair_next(**fields)


def _columns(rows: Rows, names: dict[int, str], path: Path) -> Columns:
    n = int(rows.count[0])
    cut = {name: rows.ints[k, :n] for k, name in enumerate(COLUMN_NAMES)}
    inv, ret = rows.times[T_INV, :n], rows.times[T_RET, :n]
    has = cut["has_value"].astype(bool)
    _no_collisions(cut["value"][has], cut["value2"][has])
    del cut["value2"]
    topics = tuple(sorted(set(names.values())))
    code = {h: topics.index(name) for h, name in names.items()}
    topic_codes = np.zeros(n, np.int32)
    if n:
        keys = np.array(list(code), np.int64)
        vals = np.array(list(code.values()), np.int32)
        order = np.argsort(keys)
        topic_codes = vals[order][np.searchsorted(keys[order], cut["topic"])]
    for name in ("node", "seg", "off", "epoch"):
        col = cut[name]
        col[col == NONE] = NO
    return Columns(
        process=cut["process"],
        f=cut["f"].astype(np.int8),
        topic=topic_codes,
        topics=topics,
        value=cut["value"],
        has_value=has,
        inv=inv,
        ret=ret,
        type=cut["type"].astype(np.int8),
        invoke_index=cut["invoke_index"],
        complete_index=cut["complete_index"],
        node=cut["node"],
        seg=cut["seg"],
        off=cut["off"],
        epoch=cut["epoch"],
        has_tag=cut["has_tag"].astype(bool),
        resolved=np.zeros(n, bool),
        source=Source(path=path, lines=(cut["inv_line"], cut["ret_line"])),
    )


def _no_collisions(h1: np.ndarray, h2: np.ndarray) -> None:
    """Raise if two different values share their first hash lane (in any run of equal first
    lanes holding two values, some neighbours differ in the second)."""
    if len(h1) < 2:
        return
    order = np.argsort(h1)
    a, b = h1[order], h2[order]
    clash = (a[1:] == a[:-1]) & (b[1:] != b[:-1])
    if clash.any():
        raise HistoryError(
            "two different values of this history share a 64-bit hash, so the columnar checkers "
            "cannot tell them apart; rename one of them"
        )
