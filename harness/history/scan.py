"""The history scanner: a numba kernel that parses ``history.jsonl`` lines and pairs operations.

``harness.history.columns`` drives it. The kernel reads the history's own lines — flat JSON
objects of integers, plain strings and ``null`` — byte by byte: keys and the ``type`` and ``f``
words are matched exactly (``WORDS``), topics and values are hashed (``hash_value``: two 64-bit
lanes, the same for a value read here and one hashed in Python), and each event is fed to the
pairing (``feed``: one open operation per process, as ``history._Pairing``), which writes the
operation's fields into the caller's arrays. It stops at any line it does not parse (``SLOW``),
at one that breaks the pairing rules (``BAD``) and when one of its hash tables is half full
(``GROW``), and says where.
"""

import numba
import numpy as np
import orjson

PUT, GET = 0, 1
OK, INFO, FAIL = 0, 1, 2
"""Outcome codes, in the queue checker's order."""
INVOKE = 3
TYPES = {"ok": OK, "info": INFO, "fail": FAIL}
TYPE_NAMES = ("ok", "info", "fail")
F_NAMES = ("put", "get")


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


def hash_values(values: list) -> np.ndarray:
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
    "error",
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
    W_ERROR,
    W_INVOKE,
    W_OK,
    W_FAIL,
    W_INFO,
    W_PUT,
    W_GET,
) = range(len(WORDS))
WORD_BYTES = np.frombuffer("".join(WORDS).encode(), np.uint8).copy()
WORD_STARTS = np.cumsum([0, *(len(w) for w in WORDS)]).astype(np.int64)


def _word_code(first: int, second: int, n: int) -> int:
    return (first + 3 * second + 17 * n) & 255


WORD_LUT = np.full(256, -1, np.int64)
for _k, _w in enumerate(WORDS):
    _code = _word_code(ord(_w[0]), ord(_w[1]) if len(_w) > 1 else 0, len(_w))
    assert WORD_LUT[_code] == -1, "two words share a code: change _word_code"
    WORD_LUT[_code] = _k


@numba.njit(cache=True, nogil=True, inline="always")
def _word(buf, a, b, wb, ws, lut):
    """Which of WORDS ``buf[a:b]`` (not empty) is, or -1: one candidate from the first two bytes
    and the length, then compared byte for byte."""
    n = b - a
    k = lut[(buf[a] + 3 * (buf[a + 1] if n > 1 else 0) + 17 * n) & 255]
    if k < 0 or ws[k + 1] - ws[k] != n:
        return -1
    for m in range(n):
        if wb[ws[k] + m] != buf[a + m]:
            return -1
    return k


C_PROCESS = 0
C_F = 1
C_TOPIC = 2
C_VALUE = 3
C_VALUE2 = 4
C_HAS_VALUE = 5
C_TYPE = 6
C_INVOKE_INDEX = 7
C_COMPLETE_INDEX = 8
C_NODE = 9
C_SEG = 10
C_OFF = 11
C_EPOCH = 12
C_HAS_TAG = 13
C_HAS_ERROR = 14
C_INV_LINE = 15
C_RET_LINE = 16
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
    "has_error",
    "inv_line",
    "ret_line",
)
N_COLS = 17
"""Rows of the kernel's integer output (``oi[C_*, operation]``): each field contiguous, so the
columns are views of it and pages past the last operation are never touched."""

# What the kernel says of a line.
DONE, SLOW, BAD, GROW = 0, 1, 2, 3
NONE = -(1 << 62)
"""The kernel's 'absent' for integer fields."""


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _string_end(buf, i, end):
    """From just past an opening quote: (index just past the closing quote, escaped?), or -1."""
    escaped = False
    while i < end:
        c = buf[i]
        if c == 92:
            escaped = True
            i += 2
            continue
        if c == 34:
            return i + 1, escaped
        i += 1
    return -1, escaped


@numba.njit(cache=True, nogil=True)
def _int(buf, i, end):
    """An integer at ``i``: (value, index past it, ok). Not ok if it is not a plain integer."""
    neg = False
    if i < end and buf[i] == 45:
        neg = True
        i += 1
    start = i
    v = 0
    while i < end and 48 <= buf[i] <= 57:
        v = v * 10 + (buf[i] - 48)
        i += 1
    if i == start or i - start > 18:
        return 0, i, False
    if i < end and (buf[i] == 46 or buf[i] == 101 or buf[i] == 69):
        return 0, i, False
    return (-v if neg else v), i, True


@numba.njit(cache=True, nogil=True)
def _skip(buf, i, end):
    """Past any JSON value at ``i`` (strings, nesting, literals, numbers), or -1."""
    depth = 0
    while i < end:
        c = buf[i]
        if c == 34:
            i, _ = _string_end(buf, i + 1, end)
            if i < 0:
                return -1
            if depth == 0:
                return i
            continue
        if c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif depth == 0 and c == 44:
            return i
        i += 1
    return i if depth == 0 else -1


class Table:
    """An int64 -> int64 hash table the kernel can use (open addressing, linear probing): keys,
    values, used flags, and the count of used slots. numba's typed dict would do, but it is
    compiled anew in every process, which costs a second; these arrays cost nothing."""

    def __init__(self, size: int = 1 << 12) -> None:
        self.keys = np.zeros(size, np.int64)
        self.vals = np.zeros(size, np.int64)
        self.used = np.zeros(size, np.int8)
        self.count = np.zeros(1, np.int64)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the kernel is given."""
        return self.keys, self.vals, self.used, self.count

    def full(self) -> bool:
        """Whether it should grow before more keys go in."""
        return int(self.count[0]) * 2 >= len(self.keys)

    def grown(self) -> "Table":
        """A table twice the size with the same entries."""
        bigger = Table(len(self.keys) * 2)
        _rehash(*self.arrays(), *bigger.arrays())
        return bigger

    def items(self) -> list[tuple[int, int]]:
        """Every (key, value)."""
        at = np.flatnonzero(self.used)
        return list(zip(self.keys[at].tolist(), self.vals[at].tolist(), strict=True))


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(keys, used, key):
    """Where ``key`` is, or the free slot where it would go."""
    mask = np.uint64(len(keys) - 1)
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    i = np.int64((h >> np.uint64(29)) & mask)
    while used[i] and keys[i] != key:
        i = np.int64((np.uint64(i) + np.uint64(1)) & mask)
    return i


@numba.njit(cache=True, nogil=True)
def _rehash(keys, vals, used, count, new_keys, new_vals, new_used, new_count):
    for i in range(len(keys)):
        if used[i]:
            j = _slot(new_keys, new_used, keys[i])
            new_keys[j], new_vals[j], new_used[j] = keys[i], vals[i], 1
    new_count[0] = count[0]


_OPEN_NONE, _RETIRED = -1, -2
"""A process's value in the table of open operations: its open row, or one of these."""


@numba.njit(cache=True, nogil=True, inline="always")
def feed(
    line_start,
    index,
    time,
    process,
    kind,
    f,
    topic,
    has_value,
    value1,
    value2,
    seg,
    off,
    node,
    epoch,
    has_tag,
    has_error,
    pk,
    pv,
    pu,
    pn,
    n_ops,
    oi,
    of,
):
    """Pair one client event with the open operation of its process by the pairing rules
    (``harness.history``); False if it breaks them.
    ``oi[C_*, row]`` holds an operation's integer fields, ``of[0|1, row]`` its times."""
    if kind == INVOKE:
        slot = _slot(pk, pu, process)
        if pu[slot] and pv[slot] != _OPEN_NONE:
            return False
        if not pu[slot]:
            pu[slot] = 1
            pk[slot] = process
            pn[0] += 1
        r = n_ops[0]
        n_ops[0] = r + 1
        pv[slot] = r
        oi[C_PROCESS, r] = process
        oi[C_F, r] = f
        oi[C_TOPIC, r] = topic
        oi[C_HAS_VALUE, r] = 1 if has_value and f == PUT else 0
        oi[C_VALUE, r] = value1 if f == PUT else 0
        oi[C_VALUE2, r] = value2 if f == PUT else 0
        of[0, r] = time
        of[1, r] = np.inf
        oi[C_TYPE, r] = INFO
        oi[C_INVOKE_INDEX, r] = index
        oi[C_COMPLETE_INDEX, r] = -1
        oi[C_NODE, r] = NONE
        oi[C_SEG, r] = NONE
        oi[C_OFF, r] = NONE
        oi[C_EPOCH, r] = NONE
        oi[C_HAS_TAG, r] = 1 if has_tag else 0
        oi[C_HAS_ERROR, r] = 0
        oi[C_INV_LINE, r] = line_start
        oi[C_RET_LINE, r] = -1
        return True
    slot = _slot(pk, pu, process)
    if not pu[slot] or pv[slot] < 0:
        return False
    r = pv[slot]
    if oi[C_F, r] != f:
        return False
    pv[slot] = _OPEN_NONE
    oi[C_COMPLETE_INDEX, r] = index
    oi[C_TYPE, r] = kind
    oi[C_NODE, r] = node
    oi[C_HAS_ERROR, r] = 1 if has_error else 0
    oi[C_RET_LINE, r] = line_start
    if kind == INFO:
        pv[slot] = _RETIRED
        return True
    of[1, r] = time
    if kind == OK:
        if oi[C_F, r] == GET:
            oi[C_HAS_VALUE, r] = 1 if has_value else 0
            oi[C_VALUE, r] = value1 if has_value else 0
            oi[C_VALUE2, r] = value2 if has_value else 0
        else:
            oi[C_SEG, r] = seg
            oi[C_OFF, r] = off
            oi[C_EPOCH, r] = epoch
    return True


@numba.njit(cache=True, nogil=True)
def scan(
    buf,
    i,
    end,
    wb,
    ws,
    lut,
    tk,
    tv,
    tu,
    tn,
    pk,
    pv,
    pu,
    pn,
    n_ops,
    oi,
    of,
):
    """Parse and pair lines of ``buf[i:end]`` (whole lines) until a line needs Python; returns
    (what, start of that line, start of the next). ``t*`` is the table of topics (a topic's
    hash to the offset of its first spelling in ``buf``), ``p*`` the table of processes (the
    row of the operation each has open); when either is half full the scan stops to let it
    grow."""
    while i < end:
        line = i
        if tn[0] * 2 >= len(tk) or pn[0] * 2 >= len(pk):
            return GROW, line, line
        nl = i
        while nl < end and buf[nl] != 10:
            nl += 1
        nxt = nl + 1
        j = _ws(buf, i, nl)
        if j == nl:
            i = nxt
            continue
        if buf[j] != 123:
            return SLOW, line, nxt
        j = _ws(buf, j + 1, nl)
        index = NONE
        time = np.nan
        process = NONE
        kind = -1
        f = -1
        topic = NONE
        has_value = False
        value1 = 0
        value2 = 0
        seg = NONE
        off = NONE
        node = NONE
        epoch = NONE
        has_tag = False
        has_error = False
        ok = True
        while ok and j < nl and buf[j] != 125:
            if buf[j] != 34:
                ok = False
                break
            ke, esc = _string_end(buf, j + 1, nl)
            if ke < 0 or esc:
                ok = False
                break
            key = _word(buf, j + 1, ke - 1, wb, ws, lut) if ke - 1 > j + 1 else -1
            j = _ws(buf, ke, nl)
            if j >= nl or buf[j] != 58:
                ok = False
                break
            j = _ws(buf, j + 1, nl)
            if j >= nl:
                ok = False
                break
            c = buf[j]
            is_null = c == 110
            if key in (W_INDEX, W_PROCESS, W_TIME, W_NODE, W_EPOCH):
                if is_null and (key in (W_NODE, W_EPOCH)):
                    j += 4
                else:
                    v, j, good = _int(buf, j, nl)
                    if not good:
                        ok = False
                        break
                    if key == W_INDEX:
                        index = v
                    elif key == W_PROCESS:
                        process = v
                    elif key == W_TIME:
                        time = float(v)
                    elif key == W_NODE:
                        node = v
                    else:
                        epoch = v
            elif key in (W_TYPE, W_F, W_TOPIC, W_VALUE):
                if is_null and (key in (W_TOPIC, W_VALUE)):
                    j += 4
                elif c != 34:
                    ok = False
                    break
                else:
                    se, esc = _string_end(buf, j + 1, nl)
                    if se < 0 or esc:
                        ok = False
                        break
                    if key in (W_TYPE, W_F):
                        word = _word(buf, j + 1, se - 1, wb, ws, lut) if se - 1 > j + 1 else -1
                        if key == W_TYPE and word == W_INVOKE:
                            kind = INVOKE
                        elif key == W_TYPE and word == W_OK:
                            kind = OK
                        elif key == W_TYPE and word == W_INFO:
                            kind = INFO
                        elif key == W_TYPE and word == W_FAIL:
                            kind = FAIL
                        elif key == W_F and word == W_PUT:
                            f = PUT
                        elif key == W_F and word == W_GET:
                            f = GET
                        else:
                            ok = False
                    else:
                        h1, h2 = _hash(buf, j + 1, se - 1)
                        if key == W_TOPIC:
                            topic = h1
                            slot = _slot(tk, tu, h1)
                            if not tu[slot]:
                                tu[slot], tk[slot], tv[slot] = 1, h1, j + 1
                                tn[0] += 1
                        else:
                            has_value = True
                            value1 = h1
                            value2 = h2
                    j = se
            elif key == W_POS:
                if is_null:
                    j += 4
                else:
                    if c != 91:
                        ok = False
                        break
                    j = _ws(buf, j + 1, nl)
                    seg, j, g1 = _int(buf, j, nl)
                    j = _ws(buf, j, nl)
                    if not g1 or j >= nl or buf[j] != 44:
                        ok = False
                        break
                    j = _ws(buf, j + 1, nl)
                    off, j, g2 = _int(buf, j, nl)
                    j = _ws(buf, j, nl)
                    if not g2 or j >= nl or buf[j] != 93:
                        ok = False
                        break
                    j += 1
            else:
                if key == W_TAG:
                    has_tag = c != 110
                elif key == W_ERROR:
                    has_error = c != 110
                j = _skip(buf, j, nl)
                if j < 0:
                    ok = False
                    break
            j = _ws(buf, j, nl)
            if j < nl and buf[j] == 44:
                j = _ws(buf, j + 1, nl)
            elif j < nl and buf[j] != 125:
                ok = False
        if not ok or j >= nl or _ws(buf, j + 1, nl) != nl:
            return SLOW, line, nxt
        if index == NONE or process == NONE or kind < 0 or f < 0 or np.isnan(time):
            return SLOW, line, nxt
        if kind == INVOKE and topic == NONE:
            return SLOW, line, nxt
        if not feed(
            line,
            index,
            time,
            process,
            kind,
            f,
            topic,
            has_value,
            value1,
            value2,
            seg,
            off,
            node,
            epoch,
            has_tag,
            has_error,
            pk,
            pv,
            pu,
            pn,
            n_ops,
            oi,
            of,
        ):
            return BAD, line, nxt
        i = nxt
    return DONE, end, end
