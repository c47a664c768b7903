"""The history scanner: the numba kernel ``columns.load`` reads ``history.jsonl`` with.

The kernel reads the history's own lines — flat JSON objects of integers, plain strings and
``null`` — byte by byte, and takes each line through three steps (``scan``):

1. ``parse_line`` reads the line into an ``EVENT`` record: keys and the ``type`` and ``f`` words
   are matched exactly (``WORDS``), topics and values hashed (``hash_value``: two 64-bit lanes,
   the same for a value read here and one hashed in Python);
2. ``remember_topic`` keeps the byte offset of each topic's first spelling (a ``Table`` from the
   topic's hash), so that the names are read once, at the end;
3. ``feed`` pairs the event with its process's open operation by the pairing rules (stated once,
   in ``harness.history``), keeping each process's open row in a ``Table``, and writes the
   operation's fields into ``Rows``.

It stops at any line it does not parse (``SLOW``: the header, the nemesis's events, strings with
escapes, numbers that are not integers; Python parses those and leaves a client event for the
next scan to ``feed`` first), at one that breaks the pairing rules (``BAD``) and when one of its
tables is half full (``GROW``), and says where. Its state is named: ``State`` holds both
tables, the rows and the event being read, and ``scan`` takes it whole.

It checks the JSON it reads as strictly as orjson, but a value under a key it does not read it
only skips, and it takes a string's bytes as they are (a control character or invalid UTF-8 in
one passes unnoticed).
"""

from typing import NamedTuple

import numba
import numpy as np
import orjson

PUT, GET = 0, 1
"""Function codes."""
OK, INFO, FAIL = 0, 1, 2
"""Outcome codes, in the queue checker's order."""
INVOKE = 3
"""The type code of an invocation."""
TYPES = {"ok": OK, "info": INFO, "fail": FAIL}
"""Outcome codes by name."""
TYPE_NAMES = ("ok", "info", "fail")
"""Outcome names by code."""
F_NAMES = ("put", "get")
"""Function names by code."""

NONE = -(1 << 62)
"""The kernel's 'absent' for integer fields."""

DONE, SLOW, BAD, GROW = 0, 1, 2, 3
"""What ``scan`` says when it stops: every line read, a line for Python, a line that breaks the
pairing rules, a table to grow."""

# Bytes of JSON.
_TAB, _NL, _CR, _SPACE, _QUOTE, _COMMA, _MINUS, _DOT = 9, 10, 13, 32, 34, 44, 45, 46
_ZERO, _NINE, _COLON, _E, _LBRACKET, _BACKSLASH, _RBRACKET = 48, 57, 58, 69, 91, 92, 93
_e, _l, _n, _u, _LBRACE, _RBRACE = 101, 108, 110, 117, 123, 125


# Values, identified by a hash of their bytes.


@numba.njit(cache=True, nogil=True)
def _hash(buf, a, b):
    """Two 64-bit lanes of a hash of ``buf[a:b]``: FNV-1a and a multiply-rotate, each
    finished with splitmix64's avalanche."""
    h1 = np.uint64(14695981039346656037)
    h2 = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(b - a)
    for i in range(a, b):
        c = np.uint64(buf[i])
        h1 = (h1 ^ c) * np.uint64(1099511628211)
        h2 = (h2 + c) * np.uint64(0xC2B2AE3D27D4EB4F)
        h2 = (h2 << np.uint64(31)) | (h2 >> np.uint64(33))
    out1, out2 = h1, h2
    for _ in range(2):
        out1 = (out1 ^ (out1 >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        out1 = (out1 ^ (out1 >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out1 = out1 ^ (out1 >> np.uint64(31))
        out2 = (out2 ^ (out2 >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        out2 = (out2 ^ (out2 >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out2 = out2 ^ (out2 >> np.uint64(31))
    return np.int64(out1), np.int64(out2)


def hash_value(value: object) -> tuple[int, int]:
    """The hash lanes of a value: a string's UTF-8 bytes, anything else its JSON after a NUL
    (so that 5 and "5" differ)."""
    data = value.encode() if isinstance(value, str) else b"\0" + orjson.dumps(value)
    buf = np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8)
    return _hash(buf, 0, len(data))


@numba.njit(cache=True, nogil=True)
def _hash_spans(buf, starts, out):
    for k in range(len(out)):
        out[k] = _hash(buf, starts[k], starts[k + 1])[0]


def hash_values(values: list[object]) -> np.ndarray:
    """The first hash lane of each value (strings and other JSON values, as ``hash_value``)."""
    if not values:
        return np.zeros(0, np.int64)
    if not all(isinstance(v, str) for v in values):
        return np.array([hash_value(v)[0] if v is not None else 0 for v in values], np.int64)
    encoded = [v.encode() for v in values]
    starts = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=starts[1:])
    out = np.empty(len(encoded), np.int64)
    _hash_spans(np.frombuffer(b"".join(encoded) or b"\0", np.uint8), starts, out)
    return out


# The words the kernel knows.

WORDS = (
    "index",
    "time",
    "process",
    "type",
    "f",
    "topic",
    "value",
    "pos",
    "node",
    "epoch",
    "tag",
    "invoke",
    "ok",
    "fail",
    "info",
    "put",
    "get",
)
"""The keys and the type and f words the kernel knows, matched byte for byte."""
(
    W_INDEX,
    W_TIME,
    W_PROCESS,
    W_TYPE,
    W_F,
    W_TOPIC,
    W_VALUE,
    W_POS,
    W_NODE,
    W_EPOCH,
    W_TAG,
    W_INVOKE,
    W_OK,
    W_FAIL,
    W_INFO,
    W_PUT,
    W_GET,
) = range(len(WORDS))


def _word_code(first: int, second: int, n: int) -> int:
    return (first + 3 * second + 17 * n) & 255


def _word_table(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The words as ``_word`` matches them: their bytes end to end, where each starts (and the
    last ends), and the one candidate for each code of a first two bytes and a length."""
    lut = np.full(256, -1, np.int64)
    for k, w in enumerate(words):
        code = _word_code(ord(w[0]), ord(w[1]) if len(w) > 1 else 0, len(w))
        assert lut[code] == -1, "two words share a code: change _word_code"
        lut[code] = k
    text = np.frombuffer("".join(words).encode(), np.uint8).copy()
    return text, np.cumsum([0, *(len(w) for w in words)]).astype(np.int64), lut


_WORD_TEXT, _WORD_STARTS, _WORD_LUT = _word_table(WORDS)


@numba.njit(cache=True, nogil=True, inline="always")
def _word(buf, a, b):
    """Which of ``WORDS`` ``buf[a:b]`` is, or -1: one candidate from the first two bytes and
    the length, then compared byte for byte."""
    n = b - a
    if n <= 0:
        return -1
    k = _WORD_LUT[(buf[a] + 3 * (buf[a + 1] if n > 1 else 0) + 17 * n) & 255]
    if k < 0 or _WORD_STARTS[k + 1] - _WORD_STARTS[k] != n:
        return -1
    at = _WORD_STARTS[k]
    for m in range(n):
        if _WORD_TEXT[at + m] != buf[a + m]:
            return -1
    return k


# Tables: int64 -> int64, in arrays.


class Table(NamedTuple):
    """An int64 -> int64 hash table the kernel can use (open addressing, linear probing): keys,
    values, used flags, and the count of used slots. numba's typed dict would do, but it is
    compiled anew in every process, which costs a second; these arrays cost nothing."""

    keys: np.ndarray
    vals: np.ndarray
    used: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, size: int = 1 << 12) -> "Table":
        """A table of ``size`` slots (a power of two), none used."""
        return cls(
            np.zeros(size, np.int64),
            np.zeros(size, np.int64),
            np.zeros(size, np.int8),
            np.zeros(1, np.int64),
        )

    def full(self) -> bool:
        """Whether it should grow before more keys go in."""
        return int(self.count[0]) * 2 >= len(self.keys)

    def grown(self) -> "Table":
        """A table twice the size with the same entries."""
        bigger = Table.empty(len(self.keys) * 2)
        _rehash(self, bigger)
        return bigger

    def items(self) -> list[tuple[int, int]]:
        """Every (key, value)."""
        at = np.flatnonzero(self.used)
        return list(zip(self.keys[at].tolist(), self.vals[at].tolist(), strict=True))


@numba.njit(cache=True, nogil=True)
def _slot(table, key):
    """Where ``key`` is in ``table``, or the free slot where it would go."""
    keys, used = table.keys, table.used
    mask = np.uint64(len(keys) - 1)
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    i = np.int64((h >> np.uint64(29)) & mask)
    while used[i] and keys[i] != key:
        i = np.int64((np.uint64(i) + np.uint64(1)) & mask)
    return i


@numba.njit(cache=True, nogil=True)
def _claim(table, slot, key, val):
    """Put ``key`` (not in the table) in its free ``slot``, with ``val``."""
    table.used[slot] = 1
    table.keys[slot] = key
    table.vals[slot] = val
    table.count[0] += 1


@numba.njit(cache=True, nogil=True)
def _half_full(table):
    return table.count[0] * 2 >= len(table.keys)


@numba.njit(cache=True, nogil=True)
def _rehash(table, into):
    for i in range(len(table.keys)):
        if table.used[i]:
            _claim(into, _slot(into, table.keys[i]), table.keys[i], table.vals[i])


# One line, read.

_EVENT_FIELDS = (
    ("line", np.int64, -1),
    ("index", np.int64, NONE),
    ("time", np.float64, np.nan),
    ("process", np.int64, NONE),
    ("type", np.int64, -1),
    ("f", np.int64, -1),
    ("topic", np.int64, NONE),
    ("topic_at", np.int64, -1),
    ("has_value", np.bool_, False),
    ("value", np.int64, 0),
    ("value2", np.int64, 0),
    ("seg", np.int64, NONE),
    ("off", np.int64, NONE),
    ("node", np.int64, NONE),
    ("epoch", np.int64, NONE),
    ("has_tag", np.bool_, False),
)
EVENT = np.dtype([(name, kind) for name, kind, _ in _EVENT_FIELDS], align=True)
"""A client event as the kernel reads it: the byte offset of its line; ``type`` INVOKE, OK,
INFO or FAIL and ``f`` PUT or GET; the topic's first hash lane and the offset of its spelling in
the file (-1 for one not spelled there); the value's two hash lanes; the rest as in the
history."""
BLANK = np.array([tuple(absent for _, _, absent in _EVENT_FIELDS)], EVENT)
"""The event with every field absent: -1 for the line, type, f and topic offset, NONE for the
other integers, NaN for the time, no value, no tag."""
_ABSENT = [absent for _, _, absent in _EVENT_FIELDS]
_FIELD_AT = {name: k for k, (name, _, _) in enumerate(_EVENT_FIELDS)}


# The steps taken for every key (``_ws``, ``_line_end``, ``_word``, ``_key``, ``_field`` and its
# readers of strings) are inlined by numba (``inline="always"``), which LLVM does not always do
# and which makes the scan a tenth faster; the rest is left to LLVM, as inlining more costs a
# second or more of the first compile for a few percent.


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf, i, end):
    while i < end and (buf[i] == _SPACE or buf[i] == _TAB or buf[i] == _CR):
        i += 1
    return i


@numba.njit(cache=True, nogil=True, inline="always")
def _line_end(buf, i, end):
    """Where the line at ``i`` ends: its newline, or ``end``."""
    while i < end and buf[i] != _NL:
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _string_end(buf, i, end):
    """From just past an opening quote: (index just past the closing quote, escaped?), or -1."""
    escaped = False
    while i < end:
        c = buf[i]
        if c == _BACKSLASH:
            escaped = True
            i += 2
            continue
        if c == _QUOTE:
            return i + 1, escaped
        i += 1
    return -1, escaped


@numba.njit(cache=True, nogil=True)
def _int(buf, i, end):
    """An integer at ``i``: (value, index past it, ok). Not ok if it is not a plain integer."""
    neg = False
    if i < end and buf[i] == _MINUS:
        neg = True
        i += 1
    start = i
    v = 0
    while i < end and _ZERO <= buf[i] <= _NINE:
        v = v * 10 + (buf[i] - _ZERO)
        i += 1
    if i == start or i - start > 18 or (buf[start] == _ZERO and i - start > 1):
        return 0, i, False
    if i < end and (buf[i] == _DOT or buf[i] == _e or buf[i] == _E):
        return 0, i, False
    return (-v if neg else v), i, True


@numba.njit(cache=True, nogil=True)
def _skip(buf, i, end):
    """Past any JSON value at ``i`` (strings, nesting, literals, numbers), or -1."""
    depth = 0
    while i < end:
        c = buf[i]
        if c == _QUOTE:
            i, _ = _string_end(buf, i + 1, end)
            if i < 0:
                return -1
            if depth == 0:
                return i
            continue
        if c in (_LBRACE, _LBRACKET):
            depth += 1
        elif c in (_RBRACE, _RBRACKET):
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif depth == 0 and c == _COMMA:
            return i
        i += 1
    return i if depth == 0 else -1


@numba.njit(cache=True, nogil=True)
def _null(buf, j, end):
    """Whether ``null`` is at ``j``."""
    return (
        j + 4 <= end and buf[j] == _n and buf[j + 1] == _u and buf[j + 2] == _l and buf[j + 3] == _l
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _key(buf, j, end):
    """The key at ``j`` (a quoted word; -1 for one the kernel does not know) and the index of
    its value, past the colon; the index is -1 if there is no key there."""
    if buf[j] != _QUOTE:
        return -1, -1
    ke, escaped = _string_end(buf, j + 1, end)
    if ke < 0 or escaped:
        return -1, -1
    key = _word(buf, j + 1, ke - 1)
    j = _ws(buf, ke, end)
    if j >= end or buf[j] != _COLON:
        return -1, -1
    j = _ws(buf, j + 1, end)
    if j >= end:
        return -1, -1
    return key, j


@numba.njit(cache=True, nogil=True)
def _integer_field(buf, j, end, key, e):
    """``index``, ``process``, ``time``, ``node`` or ``epoch`` at ``j`` into ``e``: the index
    past it, or -1."""
    if key in (W_NODE, W_EPOCH) and buf[j] == _n:
        if not _null(buf, j, end):
            return -1
        if key == W_NODE:
            e.node = NONE
        else:
            e.epoch = NONE
        return j + 4
    v, j, good = _int(buf, j, end)
    if not good:
        return -1
    if key == W_INDEX:
        e.index = v
    elif key == W_PROCESS:
        e.process = v
    elif key == W_TIME:
        e.time = float(v)
    elif key == W_NODE:
        e.node = v
    else:
        e.epoch = v
    return j


@numba.njit(cache=True, nogil=True, inline="always")
def _word_field(buf, j, end, key, e):
    """``type`` or ``f`` at ``j`` into ``e``: the index past it, or -1."""
    if buf[j] != _QUOTE:
        return -1
    se, escaped = _string_end(buf, j + 1, end)
    if se < 0 or escaped:
        return -1
    word = _word(buf, j + 1, se - 1)
    if key == W_TYPE and word == W_INVOKE:
        e.type = INVOKE
    elif key == W_TYPE and word == W_OK:
        e.type = OK
    elif key == W_TYPE and word == W_INFO:
        e.type = INFO
    elif key == W_TYPE and word == W_FAIL:
        e.type = FAIL
    elif key == W_F and word == W_PUT:
        e.f = PUT
    elif key == W_F and word == W_GET:
        e.f = GET
    else:
        return -1
    return se


@numba.njit(cache=True, nogil=True, inline="always")
def _hashed_field(buf, j, end, key, e):
    """``topic`` or ``value`` at ``j`` (a plain string or null) into ``e``, hashed: the index
    past it, or -1."""
    if buf[j] == _n:
        if not _null(buf, j, end):
            return -1
        if key == W_TOPIC:
            e.topic = NONE
            e.topic_at = -1
        else:
            e.has_value = False
            e.value = 0
            e.value2 = 0
        return j + 4
    if buf[j] != _QUOTE:
        return -1
    se, escaped = _string_end(buf, j + 1, end)
    if se < 0 or escaped:
        return -1
    h1, h2 = _hash(buf, j + 1, se - 1)
    if key == W_TOPIC:
        e.topic = h1
        e.topic_at = j + 1
    else:
        e.has_value = True
        e.value = h1
        e.value2 = h2
    return se


@numba.njit(cache=True, nogil=True)
def _pos_field(buf, j, end, e):
    """``pos`` at ``j`` (``[segment, offset]`` or null) into ``e``: the index past it, or -1."""
    if buf[j] == _n:
        if not _null(buf, j, end):
            return -1
        e.seg = NONE
        e.off = NONE
        return j + 4
    if buf[j] != _LBRACKET:
        return -1
    j = _ws(buf, j + 1, end)
    seg, j, good = _int(buf, j, end)
    j = _ws(buf, j, end)
    if not good or j >= end or buf[j] != _COMMA:
        return -1
    j = _ws(buf, j + 1, end)
    off, j, good = _int(buf, j, end)
    j = _ws(buf, j, end)
    if not good or j >= end or buf[j] != _RBRACKET:
        return -1
    e.seg = seg
    e.off = off
    return j + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _field(buf, j, end, key, e):
    """The value of ``key`` at ``j`` into ``e`` (skipped for a key the kernel does not read):
    the index past it, or -1."""
    if key in (W_INDEX, W_PROCESS, W_TIME, W_NODE, W_EPOCH):
        return _integer_field(buf, j, end, key, e)
    if key in (W_TYPE, W_F):
        return _word_field(buf, j, end, key, e)
    if key in (W_TOPIC, W_VALUE):
        return _hashed_field(buf, j, end, key, e)
    if key == W_POS:
        return _pos_field(buf, j, end, e)
    if key == W_TAG:
        if buf[j] == _n:
            e.has_tag = False
            return j + 4 if _null(buf, j, end) else -1
        e.has_tag = True
    return _skip(buf, j, end)


@numba.njit(cache=True, nogil=True)
def parse_line(buf: np.ndarray, line: int, end: int, e: np.void) -> bool:
    """Read the line ``buf[line:end]`` (without its newline) into event record ``e`` (blank on
    entry); False if the kernel does not read it (not a flat object of plain values, or not a
    client event with every field an operation needs)."""
    e.line = line
    j = _ws(buf, line, end)
    if j >= end or buf[j] != _LBRACE:
        return False
    j = _ws(buf, j + 1, end)
    while j < end and buf[j] != _RBRACE:
        key, j = _key(buf, j, end)
        if j < 0:
            return False
        j = _field(buf, j, end, key, e)
        if j < 0:
            return False
        j = _ws(buf, j, end)
        if j < end and buf[j] == _COMMA:
            j = _ws(buf, j + 1, end)
            if j >= end or buf[j] == _RBRACE:
                return False  # a trailing comma
        elif j < end and buf[j] != _RBRACE:
            return False
    if j >= end or _ws(buf, j + 1, end) != end:
        return False
    if e.index == NONE or e.process == NONE or e.type < 0 or e.f < 0 or np.isnan(e.time):
        return False
    return e.type != INVOKE or e.topic != NONE


@numba.njit(cache=True, nogil=True)
def remember_topic(topics: Table, e: np.void) -> None:
    """Keep where the topic of event ``e``, an invocation, is first spelled in the file, by its
    hash (a completion's topic is not read)."""
    if e.type == INVOKE and e.topic_at >= 0:
        slot = _slot(topics, e.topic)
        if not topics.used[slot]:
            _claim(topics, slot, e.topic, e.topic_at)


# Pairing, into rows.

(
    C_PROCESS,
    C_F,
    C_TOPIC,
    C_VALUE,
    C_VALUE2,
    C_HAS_VALUE,
    C_TYPE,
    C_INVOKE_INDEX,
    C_COMPLETE_INDEX,
    C_NODE,
    C_SEG,
    C_OFF,
    C_EPOCH,
    C_HAS_TAG,
    C_INV_LINE,
    C_RET_LINE,
) = range(16)
COLUMN_NAMES = (
    "process",
    "f",
    "topic",
    "value",
    "value2",
    "has_value",
    "type",
    "invoke_index",
    "complete_index",
    "node",
    "seg",
    "off",
    "epoch",
    "has_tag",
    "inv_line",
    "ret_line",
)
"""The integer fields of an operation, by their ``C_*`` row in ``Rows.ints``."""
T_INV, T_RET = 0, 1
"""The rows of ``Rows.times``."""


class Rows(NamedTuple):
    """The operations the kernel has paired, one a column in invocation order: ``ints[C_*, r]``
    their integer fields and ``times[T_INV | T_RET, r]`` their times, each field contiguous (so
    the columns are views of it and pages past the last operation are never touched);
    ``count[0]`` operations so far."""

    ints: np.ndarray
    times: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, capacity: int) -> "Rows":
        """Room for ``capacity`` operations, none yet."""
        return cls(
            np.empty((len(COLUMN_NAMES), capacity), np.int64),
            np.empty((2, capacity), np.float64),
            np.zeros(1, np.int64),
        )


_OPEN_NONE, _RETIRED = -1, -2
"""A process's value in the table of processes: its open row, or one of these."""


@numba.njit(cache=True, nogil=True)
def _invoke(rows, e):
    """A new row for the operation event ``e`` invokes, with what the invocation gives: its
    row."""
    r = rows.count[0]
    rows.count[0] = r + 1
    ints = rows.ints
    put = e.f == PUT
    ints[C_PROCESS, r] = e.process
    ints[C_F, r] = e.f
    ints[C_TOPIC, r] = e.topic
    ints[C_HAS_VALUE, r] = 1 if e.has_value and put else 0
    ints[C_VALUE, r] = e.value if put else 0
    ints[C_VALUE2, r] = e.value2 if put else 0
    ints[C_TYPE, r] = INFO
    ints[C_INVOKE_INDEX, r] = e.index
    ints[C_COMPLETE_INDEX, r] = -1
    ints[C_NODE, r] = NONE
    ints[C_SEG, r] = NONE
    ints[C_OFF, r] = NONE
    ints[C_EPOCH, r] = NONE
    ints[C_HAS_TAG, r] = 1 if e.has_tag else 0
    ints[C_INV_LINE, r] = e.line
    ints[C_RET_LINE, r] = -1
    rows.times[T_INV, r] = e.time
    rows.times[T_RET, r] = np.inf
    return r


@numba.njit(cache=True, nogil=True)
def _complete(rows, r, e):
    """Row ``r`` completed by event ``e``: what the completion gives."""
    ints = rows.ints
    ints[C_COMPLETE_INDEX, r] = e.index
    ints[C_TYPE, r] = e.type
    ints[C_NODE, r] = e.node
    ints[C_RET_LINE, r] = e.line
    if e.type == INFO:
        return
    rows.times[T_RET, r] = e.time
    if e.type == OK:
        if e.f == GET:
            ints[C_HAS_VALUE, r] = 1 if e.has_value else 0
            ints[C_VALUE, r] = e.value if e.has_value else 0
            ints[C_VALUE2, r] = e.value2 if e.has_value else 0
        else:
            ints[C_SEG, r] = e.seg
            ints[C_OFF, r] = e.off
            ints[C_EPOCH, r] = e.epoch


@numba.njit(cache=True, nogil=True)
def feed(e: np.void, processes: Table, rows: Rows) -> bool:
    """Pair client event record ``e`` with the open operation of its process by the pairing
    rules (``harness.history``), writing the operation into ``rows``; False if it breaks them.
    ``processes`` maps each process to its open row, or to none open, or to retired."""
    slot = _slot(processes, e.process)
    known = processes.used[slot]
    if e.type == INVOKE:
        if known and processes.vals[slot] != _OPEN_NONE:
            return False  # open already, or retired
        r = _invoke(rows, e)
        if known:
            processes.vals[slot] = r
        else:
            _claim(processes, slot, e.process, r)
        return True
    if not known or processes.vals[slot] < 0:
        return False  # nothing open
    r = processes.vals[slot]
    if rows.ints[C_F, r] != e.f:
        return False  # completes another f
    _complete(rows, r, e)
    processes.vals[slot] = _RETIRED if e.type == INFO else _OPEN_NONE
    return True


# The scan.


class State(NamedTuple):
    """Everything the scan writes besides the file: the table of topics (a topic's hash to the
    offset of its first spelling), the table of processes (each one's open row), the rows, and
    a one-element ``EVENT`` array for the line being read, blank between lines (but for an
    event Python read, left for the next scan to pair: ``pair_next``)."""

    topics: Table
    processes: Table
    rows: Rows
    event: np.ndarray

    @classmethod
    def empty(cls, capacity: int) -> "State":
        """A scan's state before its first line, with room for ``capacity`` operations."""
        return cls(Table.empty(64), Table.empty(), Rows.empty(capacity), BLANK.copy())

    def pair_next(self, **fields: float) -> None:
        """Leave a client event Python read (these fields, the others absent) for the next scan
        to pair before its first line; the processes must have room for one more."""
        values = _ABSENT.copy()
        for name, value in fields.items():
            values[_FIELD_AT[name]] = value
        self.event[0] = tuple(values)

    def grown(self) -> "State":
        """The same state with each half full table twice the size."""
        return self._replace(
            topics=self.topics.grown() if self.topics.full() else self.topics,
            processes=self.processes.grown() if self.processes.full() else self.processes,
        )


# Without reference counting (numba's ``_nrt`` option): the kernel allocates nothing and every
# array it touches belongs to its caller for the whole call, so counting references to them is
# pure cost, and a fifth of the scan's time (an atomic increment and decrement per array a
# helper takes, per line). numba refuses to compile the kernel if it ever allocates an array.
@numba.njit(cache=True, nogil=True, _nrt=False)
def scan(buf: np.ndarray, start: int, end: int, state: State) -> tuple[int, int, int]:
    """Pair the event Python left in ``state`` if any (``State.pair_next``), then read and pair
    the lines of ``buf[start:end]`` (whole lines) until one needs Python: (what, start of that
    line, start of the next). Stops with GROW, before a line, when either table of ``state`` is
    half full, so that it grows."""
    topics, processes, rows, event = state
    e = event[0]
    if e.line >= 0:
        line = e.line
        paired = feed(e, processes, rows)
        event[0] = BLANK[0]
        if not paired:
            return BAD, line, start
    i = start
    while i < end:
        if _half_full(topics) or _half_full(processes):
            return GROW, i, i
        nl = _line_end(buf, i, end)
        if _ws(buf, i, nl) != nl:
            if not parse_line(buf, i, nl, e):
                event[0] = BLANK[0]
                return SLOW, i, nl + 1
            remember_topic(topics, e)
            paired = feed(e, processes, rows)
            event[0] = BLANK[0]
            if not paired:
                return BAD, i, nl + 1
        i = nl + 1
    return DONE, end, end
