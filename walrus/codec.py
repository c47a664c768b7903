"""CRC32C and the on-disk record format, as numba kernels.

Every record the storage engine writes is framed here, and every byte it reads back is checked
here, so these kernels sit on the hot path of both appends and recovery.

CRC32C (Castagnoli, RFC 3720) is computed with the SSE4.2 ``crc32`` instruction, reached from
numba through an LLVM intrinsic. One ``crc32`` has a latency of three cycles but a throughput of
one per cycle, so long buffers are cut into three streams checksummed in the same loop; the three
partial CRCs are joined with a precomputed "append n zero bytes" operator (CRC is linear over
GF(2), so ``crc(A+B) = shift(crc(A), len(B)) ^ crc(B)``). Where the CPU lacks SSE4.2 a
slicing-by-8 table kernel is used instead; ``WALRUS_CRC32C=software`` forces it.

Record layout (little-endian), ``HEADER_SIZE`` = 16 bytes then the payload::

    u32 crc      CRC32C over bytes 4..16 of the header and then the payload
    u32 length   payload length, or SEAL_MARK for a seal trailer (no payload)
    u64 offset   the record's position in its segment (0, 1, 2, ...); in a trailer, the count
"""

import os
from collections.abc import Callable, Sequence
from typing import Any, cast

import llvmlite.binding as llvm
import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.base import BaseContext
from numba.core.typing.context import BaseContext as TypingContext
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

HEADER_SIZE = 16
SEAL_MARK = 0xFFFFFFFF
MAX_PAYLOAD = 64 * 1024 * 1024

_POLY = 0x82F63B78
_LONG = 8192
_SHORT = 256

# Outcomes of scan_records.
SCAN_CLEAN = 0
SCAN_SHORT = 1
SCAN_CORRUPT = 2
SCAN_SEALED = 3


def _use_hardware() -> bool:
    """True when the SSE4.2 kernel is usable and not disabled by WALRUS_CRC32C."""
    choice = os.environ.get("WALRUS_CRC32C", "auto")
    if choice not in ("auto", "hardware", "software"):
        raise ValueError(f"WALRUS_CRC32C must be auto, hardware or software, not {choice!r}")
    has_sse42 = bool(llvm.get_host_cpu_features().get("sse4.2"))
    if choice == "hardware" and not has_sse42:
        raise RuntimeError("WALRUS_CRC32C=hardware but this CPU has no SSE4.2")
    return choice != "software" and has_sse42


HARDWARE = _use_hardware()
IMPLEMENTATION = "sse4.2, 3 streams" if HARDWARE else "slicing-by-8"

Bytes = npt.NDArray[np.uint8]
"""A uint8 array: what the kernels write into."""
Readable = Bytes | bytes
"""What the kernels read: a uint8 array, or bytes."""

Codegen = Callable[[BaseContext, ir.IRBuilder, Signature, Sequence[ir.Value]], ir.Value]
"""An intrinsic's code generator: LLVM IR for one call, from its arguments' values."""


# --- unaligned loads and stores on uint8 arrays --------------------------------------------


def _byte_pointer(
    context: BaseContext,
    builder: ir.IRBuilder,
    arrty: types.Type,
    arr: ir.Value,
    index: ir.Value,
    width: int,
) -> ir.Value:
    data = context.make_array(arrty)(context, builder, arr).data
    byte_ptr = builder.gep(builder.bitcast(data, ir.IntType(8).as_pointer()), [index])
    return builder.bitcast(byte_ptr, ir.IntType(width).as_pointer())


def _loader(width: int, result: types.Integer) -> object:
    @intrinsic
    def load(
        typingctx: TypingContext, arr: types.Type, index: types.Type
    ) -> tuple[Signature, Codegen]:
        def codegen(
            context: BaseContext, builder: ir.IRBuilder, sig: Signature, args: Sequence[ir.Value]
        ) -> ir.Value:
            ptr = _byte_pointer(context, builder, sig.args[0], args[0], args[1], width)
            return builder.load(ptr, align=1)

        return result(arr, types.intp), codegen

    return load


def _storer(width: int) -> object:
    @intrinsic
    def store(
        typingctx: TypingContext, arr: types.Type, index: types.Type, value: types.Type
    ) -> tuple[Signature, Codegen]:
        def codegen(
            context: BaseContext, builder: ir.IRBuilder, sig: Signature, args: Sequence[ir.Value]
        ) -> ir.Value:
            ptr = _byte_pointer(context, builder, sig.args[0], args[0], args[1], width)
            builder.store(builder.trunc(args[2], ir.IntType(width)), ptr, align=1)
            return context.get_dummy_value()

        return types.void(arr, types.intp, types.uint64), codegen

    return store


@intrinsic
def _pwrite_intrinsic(
    typingctx: TypingContext,
    fd: types.Type,
    arr: types.Type,
    start: types.Type,
    n: types.Type,
    file_pos: types.Type,
) -> tuple[Signature, Codegen]:
    """libc pwrite(fd, &arr[start], n, file_pos), called without releasing the GIL."""

    def codegen(
        context: BaseContext, builder: ir.IRBuilder, sig: Signature, args: Sequence[ir.Value]
    ) -> ir.Value:
        data = context.make_array(sig.args[1])(context, builder, args[1]).data
        ptr = builder.gep(builder.bitcast(data, ir.IntType(8).as_pointer()), [args[2]])
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [ir.IntType(32), ir.IntType(8).as_pointer(), i64, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "pwrite")
        return builder.call(fn, [builder.trunc(args[0], ir.IntType(32)), ptr, args[3], args[4]])

    return types.int64(types.int64, arr, types.intp, types.intp, types.int64), codegen


@intrinsic
def _copy_intrinsic(
    typingctx: TypingContext,
    dst: types.Type,
    dst_start: types.Type,
    src: types.Type,
    src_start: types.Type,
    n: types.Type,
) -> tuple[Signature, Codegen]:
    """memcpy(&dst[dst_start], &src[src_start], n) between uint8 arrays or bytes."""

    def codegen(
        context: BaseContext, builder: ir.IRBuilder, sig: Signature, args: Sequence[ir.Value]
    ) -> ir.Value:
        i8p = ir.IntType(8).as_pointer()
        d = context.make_array(sig.args[0])(context, builder, args[0]).data
        s = context.make_array(sig.args[2])(context, builder, args[2]).data
        dptr = builder.gep(builder.bitcast(d, i8p), [args[1]])
        sptr = builder.gep(builder.bitcast(s, i8p), [args[3]])
        cgutils.raw_memcpy(builder, dptr, sptr, args[4], 1)
        return context.get_dummy_value()

    return types.void(dst, types.intp, src, types.intp, types.intp), codegen


def _sse42(name: str, width: int) -> object:
    @intrinsic
    def crc_step(
        typingctx: TypingContext, crc: types.Type, value: types.Type
    ) -> tuple[Signature, Codegen]:
        def codegen(
            context: BaseContext, builder: ir.IRBuilder, sig: Signature, args: Sequence[ir.Value]
        ) -> ir.Value:
            ret = ir.IntType(64 if width == 64 else 32)
            fnty = ir.FunctionType(ret, [ret, ir.IntType(width)])
            fn = cgutils.get_or_insert_function(builder.module, fnty, name)
            c = args[0] if width == 64 else builder.trunc(args[0], ir.IntType(32))
            out = builder.call(fn, [c, builder.trunc(args[1], ir.IntType(width))])
            return out if width == 64 else builder.zext(out, ir.IntType(64))

        return types.uint64(types.uint64, types.uint64), codegen

    return crc_step


# Each intrinsic as a kernel calls it. numba's types declare only the definition (which takes the
# typing context first, and raises when called from Python), so each is cast to its signature
# inside a kernel.
_load_u64 = cast(Callable[[Readable, int], np.uint64], _loader(64, types.uint64))
_load_u32 = cast(Callable[[Readable, int], np.uint32], _loader(32, types.uint32))
_store_u64 = cast(Callable[[Readable, int, np.uint64], None], _storer(64))
_store_u32 = cast(Callable[[Readable, int, np.uint64], None], _storer(32))
_pwrite = cast(Callable[[int, Bytes, int, int, int], int], _pwrite_intrinsic)
_copy = cast(Callable[[Bytes, int, Readable, int, int], None], _copy_intrinsic)
_hw_u64 = cast(
    Callable[[np.uint64, np.uint64], np.uint64], _sse42("llvm.x86.sse42.crc32.64.64", 64)
)
_hw_u8 = cast(Callable[[np.uint64, np.uint64], np.uint64], _sse42("llvm.x86.sse42.crc32.32.8", 8))

_i64 = cast(Callable[[np.unsignedinteger[Any]], int], np.int64)
"""np.int64, as the kernels convert a loaded word to a signed one: numba's int64 is what the
kernels' plain ints are too, so the type checker sees an int."""


# --- tables ----------------------------------------------------------------------------------


def _slicing_tables() -> np.ndarray:
    tables = np.zeros((8, 256), dtype=np.uint64)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (_POLY if c & 1 else 0)
        tables[0, b] = c
    for k in range(1, 8):
        for b in range(256):
            prev = int(tables[k - 1, b])
            tables[k, b] = (prev >> 8) ^ int(tables[0, prev & 0xFF])
    return tables


_TABLES = _slicing_tables()


@numba.njit(cache=True, nogil=True)
def _sw_update(
    crc: np.uint64, buf: Readable, start: int, n: int, tables: npt.NDArray[np.uint64]
) -> np.uint64:
    """Advance a raw CRC register over buf[start:start+n], slicing-by-8."""
    i = start
    end = start + n
    while end - i >= 8:
        w = _load_u64(buf, i) ^ crc
        crc = (
            tables[7, w & 0xFF]
            ^ tables[6, (w >> 8) & 0xFF]
            ^ tables[5, (w >> 16) & 0xFF]
            ^ tables[4, (w >> 24) & 0xFF]
            ^ tables[3, (w >> 32) & 0xFF]
            ^ tables[2, (w >> 40) & 0xFF]
            ^ tables[1, (w >> 48) & 0xFF]
            ^ tables[0, w >> 56]
        )
        i += 8
    while i < end:
        crc = (crc >> 8) ^ tables[0, (crc ^ buf[i]) & 0xFF]
        i += 1
    return crc


def _zeros_operator(nbytes: int) -> np.ndarray:
    """Tables for the linear map 'feed nbytes zero bytes into the CRC register'."""
    zeros = np.zeros(nbytes, dtype=np.uint8)
    basis = [int(_sw_update(np.uint64(1 << bit), zeros, 0, nbytes, _TABLES)) for bit in range(32)]
    op = np.zeros((4, 256), dtype=np.uint64)
    for k in range(4):
        for b in range(256):
            v = 0
            for bit in range(8):
                if b >> bit & 1:
                    v ^= basis[8 * k + bit]
            op[k, b] = v
    return op


_SHIFT_LONG = _zeros_operator(_LONG)
_SHIFT_SHORT = _zeros_operator(_SHORT)


@numba.njit(cache=True, nogil=True, inline="always")
def _shift(op: npt.NDArray[np.uint64], crc: np.uint64) -> np.uint64:
    shifted: np.uint64 = (
        op[0, crc & 0xFF] ^ op[1, (crc >> 8) & 0xFF] ^ op[2, (crc >> 16) & 0xFF] ^ op[3, crc >> 24]
    )
    return shifted


@numba.njit(cache=True, nogil=True, inline="always")
def _hw_streams(
    crc: np.uint64,
    buf: Readable,
    i: int,
    end: int,
    block: int,
    op: npt.NDArray[np.uint64],
    dst: Readable,
    delta: int,
    copy: bool,
) -> tuple[np.uint64, int]:
    """Consume 3*block-byte chunks as three interleaved streams; returns (crc, i).

    With ``copy``, every word read is also stored at ``dst[index + delta]``.
    """
    while end - i >= 3 * block:
        c0 = crc
        c1 = np.uint64(0)
        c2 = np.uint64(0)
        for j in range(i, i + block, 8):
            w0 = _load_u64(buf, j)
            w1 = _load_u64(buf, j + block)
            w2 = _load_u64(buf, j + 2 * block)
            c0 = _hw_u64(c0, w0)
            c1 = _hw_u64(c1, w1)
            c2 = _hw_u64(c2, w2)
            if copy:
                _store_u64(dst, j + delta, w0)
                _store_u64(dst, j + block + delta, w1)
                _store_u64(dst, j + 2 * block + delta, w2)
        crc = _shift(op, _shift(op, c0) ^ c1) ^ c2
        i += 3 * block
    return crc, i


@numba.njit(cache=True, nogil=True, inline="always")
def _hw_update(
    crc: np.uint64,
    buf: Readable,
    start: int,
    n: int,
    long_op: npt.NDArray[np.uint64],
    short_op: npt.NDArray[np.uint64],
    dst: Readable,
    delta: int,
    copy: bool,
) -> np.uint64:
    """Advance a raw CRC register over buf[start:start+n] with the crc32 instruction; with
    ``copy``, also copy those bytes to ``dst[start + delta:]`` in the same pass."""
    end = start + n
    crc, i = _hw_streams(crc, buf, start, end, _LONG, long_op, dst, delta, copy)
    crc, i = _hw_streams(crc, buf, i, end, _SHORT, short_op, dst, delta, copy)
    while end - i >= 8:
        w = _load_u64(buf, i)
        crc = _hw_u64(crc, w)
        if copy:
            _store_u64(dst, i + delta, w)
        i += 8
    while i < end:
        b = buf[i]
        crc = _hw_u8(crc, np.uint64(b))
        if copy:
            dst[i + delta] = b  # type: ignore[index]  # dst is an array whenever copy is set
        i += 1
    return crc


if HARDWARE:

    @numba.njit(cache=True, nogil=True)
    def _update(crc: np.uint64, buf: Readable, start: int, n: int) -> np.uint64:
        return _hw_update(crc, buf, start, n, _SHIFT_LONG, _SHIFT_SHORT, buf, 0, False)

    @numba.njit(cache=True, nogil=True)
    def _update_copy(
        crc: np.uint64, src: Readable, start: int, n: int, dst: Bytes, dst_start: int
    ) -> np.uint64:
        return _hw_update(
            crc, src, start, n, _SHIFT_LONG, _SHIFT_SHORT, dst, dst_start - start, True
        )

else:

    @numba.njit(cache=True, nogil=True)
    def _update(crc: np.uint64, buf: Readable, start: int, n: int) -> np.uint64:
        return _sw_update(crc, buf, start, n, _TABLES)

    @numba.njit(cache=True, nogil=True)
    def _update_copy(
        crc: np.uint64, src: Readable, start: int, n: int, dst: Bytes, dst_start: int
    ) -> np.uint64:
        _copy(dst, dst_start, src, start, n)
        return _sw_update(crc, src, start, n, _TABLES)


@numba.njit(cache=True, nogil=True)
def crc32c_array(buf: Readable, value: int = 0) -> np.uint64:
    """CRC32C of a contiguous uint8 array, continuing from a previous CRC ``value``."""
    crc = np.uint64(value) ^ np.uint64(0xFFFFFFFF)
    return _update(crc, buf, 0, len(buf)) ^ np.uint64(0xFFFFFFFF)


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC32C (RFC 3720) of a bytes-like object, continuing from ``value`` as crc32c.crc32c does."""
    return int(crc32c_array(np.frombuffer(data, dtype=np.uint8), value))


# --- records ---------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _record_crc(buf: Readable, pos: int, length: int) -> np.uint64:
    crc = _update(np.uint64(0xFFFFFFFF), buf, pos + 4, 12)
    return _update(crc, buf, pos + HEADER_SIZE, length) ^ np.uint64(0xFFFFFFFF)


@numba.njit(cache=True, inline="always")
def _frame(
    payloads: Readable,
    ends: npt.NDArray[np.int64],
    first_offset: int,
    out: Bytes,
    file_pos: int,
    positions: npt.NDArray[np.int64],
    index: int,
) -> int:
    pos = 0
    start = 0
    for k in range(ends.shape[0]):
        length = ends[k] - start
        _store_u32(out, pos + 4, np.uint64(length))
        _store_u64(out, pos + 8, np.uint64(first_offset + k))
        crc = _update(np.uint64(0xFFFFFFFF), out, pos + 4, 12)
        crc = _update_copy(crc, payloads, start, length, out, pos + HEADER_SIZE)
        _store_u32(out, pos, crc ^ np.uint64(0xFFFFFFFF))
        positions[index + k] = file_pos + pos
        pos += HEADER_SIZE + length
        start = ends[k]
    return pos


@numba.njit(cache=True, inline="always")
def _frame_and_write(
    fd: int,
    payloads: Readable,
    ends: npt.NDArray[np.int64],
    first_offset: int,
    out: Bytes,
    file_pos: int,
    positions: npt.NDArray[np.int64],
    index: int,
) -> tuple[int, int]:
    n = _frame(payloads, ends, first_offset, out, file_pos, positions, index)
    done = 0
    while done < n:
        w = _pwrite(fd, out, done, n - done, file_pos + done)
        if w <= 0:
            break
        done += w
    return done, n


@numba.njit(cache=True)
def encode_batch(
    payloads: Readable,
    ends: npt.NDArray[np.int64],
    first_offset: int,
    out: Bytes,
    file_pos: int,
    positions: npt.NDArray[np.int64],
    index: int,
) -> int:
    """Frame records into ``out`` from its start; returns the number of bytes framed.

    ``payloads`` holds the payloads back to back and ``ends[k]`` is where payload k ends in it;
    record k gets offset ``first_offset + k``, and ``positions[index + k]`` receives its position
    in the file when ``out`` is written at ``file_pos``. ``out`` needs ``16 * len(ends) + ends[-1]``
    bytes. Each payload is checksummed as it is copied, in one pass.
    """
    return _frame(payloads, ends, first_offset, out, file_pos, positions, index)


@numba.njit(cache=True)
def write_batch(
    fd: int,
    payloads: Readable,
    ends: npt.NDArray[np.int64],
    first_offset: int,
    out: Bytes,
    file_pos: int,
    positions: npt.NDArray[np.int64],
    index: int,
) -> tuple[int, int]:
    """encode_batch, then pwrite the frames to ``fd`` at ``file_pos``, holding the GIL.

    Returns ``(written, framed)``; ``written < framed`` means a write failed part way (the
    caller finishes with ``os.pwrite`` to learn the error). Holding the GIL through a short
    page-cache write is cheaper than handing it to another thread and waiting to get it back.
    """
    return _frame_and_write(fd, payloads, ends, first_offset, out, file_pos, positions, index)


@numba.njit(cache=True, nogil=True)
def write_batch_nogil(
    fd: int,
    payloads: Readable,
    ends: npt.NDArray[np.int64],
    first_offset: int,
    out: Bytes,
    file_pos: int,
    positions: npt.NDArray[np.int64],
    index: int,
) -> tuple[int, int]:
    """write_batch that releases the GIL, for batches large enough to keep the disk busy."""
    return _frame_and_write(fd, payloads, ends, first_offset, out, file_pos, positions, index)


@numba.njit(cache=True, nogil=True)
def encode_seal(count: int, out: Bytes) -> None:
    """Write the 16-byte seal trailer recording ``count`` records into ``out``."""
    _store_u32(out, 4, np.uint64(SEAL_MARK))
    _store_u64(out, 8, np.uint64(count))
    _store_u32(out, 0, _record_crc(out, 0, 0))


@numba.njit(cache=True, nogil=True, inline="always")
def _valid_at(buf: Readable, pos: int, end: int, expected: int) -> int:
    """Length of the valid record at pos whose offset is ``expected``, -1 if none, -2 if torn."""
    if end - pos < HEADER_SIZE:
        return -2
    length = _i64(_load_u32(buf, pos + 4))
    offset = _i64(_load_u64(buf, pos + 8))
    if offset != expected:
        return -1
    if length == SEAL_MARK:
        length = 0
    elif length > MAX_PAYLOAD:
        return -1
    elif end - pos - HEADER_SIZE < length:
        return -2
    if np.uint64(_load_u32(buf, pos)) != _record_crc(buf, pos, length):
        return -1
    return length


@numba.njit(cache=True, nogil=True)
def scan_records(buf: Readable, first_offset: int) -> tuple[npt.NDArray[np.int64], int, int]:
    """Walk the records in ``buf`` whose first record has offset ``first_offset``.

    Returns ``(positions, end, status)``: the byte position of every valid record in order, the
    position just after the last valid one (or after the seal trailer), and one of
    ``SCAN_CLEAN`` (buffer ends exactly there), ``SCAN_SHORT`` (a partial record follows),
    ``SCAN_CORRUPT`` (an invalid record follows) or ``SCAN_SEALED`` (a valid seal trailer,
    whose count is the offset after the last record, follows).
    """
    positions = np.empty(1024, dtype=np.int64)
    n = 0
    pos = 0
    end = len(buf)
    while pos < end:
        length = _valid_at(buf, pos, end, first_offset + n)
        if length == -2:
            return positions[:n], pos, SCAN_SHORT
        if length == -1:
            return positions[:n], pos, SCAN_CORRUPT
        if _i64(_load_u32(buf, pos + 4)) == SEAL_MARK:
            return positions[:n], pos + HEADER_SIZE, SCAN_SEALED
        if n == positions.shape[0]:
            grown = np.empty(2 * n, dtype=np.int64)
            grown[:n] = positions
            positions = grown
        positions[n] = pos
        n += 1
        pos += HEADER_SIZE + length
    return positions[:n], pos, SCAN_CLEAN


@numba.njit(cache=True, nogil=True)
def find_later_record(buf: Readable, start: int, min_offset: int) -> int:
    """Position of the first valid record at or after ``start`` with offset >= ``min_offset``.

    Used after a bad record: finding one proves the damage is not a torn tail. -1 if none.
    """
    end = len(buf)
    limit = min_offset + (end - start) // HEADER_SIZE
    for pos in range(start, end - HEADER_SIZE + 1):
        offset = _i64(_load_u64(buf, pos + 8))
        if offset < min_offset or offset > limit:
            continue
        if _valid_at(buf, pos, end, offset) >= 0:
            return pos
    return -1


@numba.njit(cache=True, nogil=True)
def decode_batch(buf: Readable, first_offset: int) -> tuple[Bytes, npt.NDArray[np.int64], int, int]:
    """Check and unframe every record in ``buf``, in one call.

    Returns ``(payloads, ends, end, status)``: the payloads back to back, where each ends, and
    ``end``/``status`` as in ``scan_records``.
    """
    positions, end, status = scan_records(buf, first_offset)
    n = positions.shape[0]
    ends = np.empty(n, dtype=np.int64)
    total = 0
    for k in range(n):
        total += _i64(_load_u32(buf, positions[k] + 4))
        ends[k] = total
    payloads = np.empty(total, dtype=np.uint8)
    start = 0
    for k in range(n):
        _copy(payloads, start, buf, positions[k] + HEADER_SIZE, ends[k] - start)
        start = ends[k]
    return payloads, ends, end, status


def warm_up() -> None:
    """Compile (or load from the cache) every kernel with the argument types the store uses, so
    that the first append or read after start-up does not pay for compilation."""
    payload = b"warm-up"
    ends = np.array([len(payload)], dtype=np.int64)
    out = np.empty(HEADER_SIZE + len(payload), dtype=np.uint8)
    positions = np.empty(1, dtype=np.int64)
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        write_batch(fd, payload, ends, 0, out, 0, positions, 0)
        write_batch_nogil(fd, payload, ends, 0, out, 0, positions, 0)
    finally:
        os.close(fd)
    framed = out.tobytes()
    encode_batch(payload, ends, 0, out, 0, positions, 0)
    encode_seal(1, np.empty(HEADER_SIZE, dtype=np.uint8))
    for buf in (framed, out):
        scan_records(buf, 0)
        find_later_record(buf, 0, 0)
    decode_batch(framed, 0)
    crc32c(payload)
