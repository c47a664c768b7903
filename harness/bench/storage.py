"""The storage benchmark: Walrus's write benchmark reproduced here, with its baselines beside it.

Walrus measures writer threads appending payloads of 500-1024 random bytes, one topic each,
under three fsync modes. We run the same workload, in the same process run, against this
project's engine (one call per record, and in batches), RocksDB (rocksdict, WAL on), SQLite (WAL
mode), the original Walrus's storage engine (the crate ``walrus-rust`` 0.2.0, driven by the small
Rust program in ``rust/walrus-rust-bench``, built with cargo) and a plain sequential write of the
same bytes to one file, so every ratio compares numbers taken on the same machine minutes apart.
With fsync on every write, each system also runs with 64 concurrent writers sharing one log,
which is where group commit pays.
"""

import json
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SYSTEMS = ("walrus-py", "walrus-py-batch", "walrus-rust", "rocksdb", "sqlite", "raw-write")
WALRUS_RUST = Path(__file__).resolve().parents[2] / "rust" / "walrus-rust-bench"
"""The Rust program that runs a case on the walrus-rust crate."""
MODES = ("none", "each", "1000ms")
BATCH = 256
PAYLOAD_MIN, PAYLOAD_MAX = 500, 1024
CRC_SIZES = (4096, 65536, 16 * 1024 * 1024)
_POOL = 4096


@dataclass(frozen=True)
class Case:
    """One measurement: a system, an fsync mode, how many writers, over how many topics."""

    system: str
    fsync: str
    writers: int
    topics: int


def plan(systems: tuple[str, ...] = SYSTEMS, modes: tuple[str, ...] = MODES) -> list[Case]:
    """Every case in run order: 10 writers on 10 topics, or 1 and 64 writers on one log when
    every write is synced."""
    cases = []
    for mode in modes:
        shapes = [(1, 1), (64, 1)] if mode == "each" else [(10, 10)]
        for writers, topics in shapes:
            cases.extend(Case(s, mode, writers, topics) for s in systems)
    return cases


class _Periodic:
    """A thread that calls ``fn`` every ``interval`` seconds until stopped."""

    def __init__(self, fn: Callable[[], None], interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn, interval), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], None], interval: float) -> None:
        while not self._stop.wait(interval):
            fn()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- systems: each gives one write function per writer and cleans up after itself ------------


class _Walrus:
    def __init__(self, root: Path, case: Case) -> None:
        from walrus.storage import Store

        policy = {"none": "none", "each": "each", "1000ms": "interval:1000"}[case.fsync]
        self.store = Store(root, fsync=policy)
        for t in range(case.topics):
            self.store.create_segment(f"topic-{t}", 0)
        self.batch = case.system == "walrus-py-batch"

    def writer(self, writer: int, topic: int) -> Callable:
        name = f"topic-{topic}"
        if self.batch:
            append_batch = self.store.append_batch
            return lambda payloads: append_batch(name, 0, payloads)
        append = self.store.append
        return lambda payload: append(name, 0, payload)

    def close(self) -> None:
        self.store.close()


class _RocksDB:
    def __init__(self, root: Path, case: Case) -> None:
        import rocksdict

        self.db = rocksdict.Rdict(str(root), rocksdict.Options(raw_mode=True))
        self.options = rocksdict.WriteOptions()
        self.options.sync = case.fsync == "each"
        self.syncer = (
            _Periodic(lambda: self.db.flush_wal(True), 1.0) if case.fsync == "1000ms" else None
        )

    def writer(self, writer: int, topic: int) -> Callable:
        put, options = self.db.put, self.options
        prefix = f"{topic}/{writer}/".encode()
        counter = iter(range(1 << 62))
        return lambda payload: put(prefix + b"%d" % next(counter), payload, options)

    def close(self) -> None:
        if self.syncer:
            self.syncer.stop()
        self.db.close()


class _SQLite:
    def __init__(self, root: Path, case: Case) -> None:
        root.mkdir(parents=True, exist_ok=True)
        sync = "FULL" if case.fsync == "each" else "OFF"
        self.dbs = []
        for t in range(case.topics):
            path = root / f"topic-{t}.db"
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
            self.dbs.append((conn, threading.Lock(), path))
        self.syncer = _Periodic(self._sync_wals, 1.0) if case.fsync == "1000ms" else None

    def _sync_wals(self) -> None:
        for _, _, path in self.dbs:
            fd = os.open(f"{path}-wal", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def writer(self, writer: int, topic: int) -> Callable:
        conn, lock, _ = self.dbs[topic]
        sql = "INSERT INTO log (payload) VALUES (?)"

        def write(payload: bytes) -> None:
            with lock:
                conn.execute(sql, (payload,))

        return write

    def close(self) -> None:
        if self.syncer:
            self.syncer.stop()
        for conn, _, _ in self.dbs:
            conn.close()


class _RawWrite:
    def __init__(self, root: Path, case: Case) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(root / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.each = case.fsync == "each"
        self.syncer = (
            _Periodic(lambda: os.fdatasync(self.fd), 1.0) if case.fsync == "1000ms" else None
        )

    def writer(self, writer: int, topic: int) -> Callable:
        fd, write, sync = self.fd, os.write, os.fdatasync
        if self.each:

            def write_synced(payload: bytes) -> None:
                write(fd, payload)
                sync(fd)

            return write_synced
        return lambda chunk: write(fd, chunk)

    def close(self) -> None:
        if self.syncer:
            self.syncer.stop()
        os.close(self.fd)


_SYSTEMS = {
    "walrus-py": _Walrus,
    "walrus-py-batch": _Walrus,
    "rocksdb": _RocksDB,
    "sqlite": _SQLite,
    "raw-write": _RawWrite,
}


def _records_per_call(case: Case) -> int:
    """walrus-py-batch appends BATCH records a call; raw-write, unless syncing every write,
    writes the same BATCH records as one chunk (the disk's ceiling); the rest, one record."""
    if case.system == "walrus-py-batch" or (case.system == "raw-write" and case.fsync != "each"):
        return BATCH
    return 1


def _items(rng: np.random.Generator, per_call: int, system: str) -> tuple[list, list[int]]:
    """A pool of call arguments for one writer, and the payload bytes in each."""
    sizes = rng.integers(PAYLOAD_MIN, PAYLOAD_MAX + 1, size=_POOL)
    blob = rng.integers(0, 256, size=int(sizes.sum()), dtype=np.uint8).tobytes()
    cuts = np.concatenate(([0], np.cumsum(sizes)))
    payloads = [blob[cuts[i] : cuts[i + 1]] for i in range(_POOL)]
    if per_call == 1:
        return payloads, sizes.tolist()
    groups = [payloads[i : i + per_call] for i in range(0, _POOL, per_call)]
    items = [b"".join(g) if system == "raw-write" else g for g in groups]
    return items, [sum(map(len, g)) for g in groups]


def walrus_rust_binary(log=print) -> Path:
    """The walrus-rust benchmark program, built with cargo unless this source's build is cached
    (BuildError or ToolMissing, one line, when it cannot be)."""
    from harness.systems import rust_build

    key = rust_build.tree_hash(WALRUS_RUST)
    manifest = WALRUS_RUST / "Cargo.toml"
    return rust_build.cargo_binary(manifest, "walrus-rust-bench", key, "walrus-rust-bench", log)


def _run_walrus_rust(case: Case, duration: float, workdir: Path, seed: int) -> dict:
    done = subprocess.run(
        [
            str(walrus_rust_binary()),
            str(workdir / "data"),
            case.fsync,
            str(case.writers),
            str(case.topics),
            str(duration),
            str(seed),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"walrus-rust ({case.fsync}, {case.writers} writers): {why}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "system": case.system,
        "fsync": case.fsync,
        "writers": case.writers,
        "writes_per_s": row["writes"] / row["seconds"],
        "mb_per_s": row["bytes"] / row["seconds"] / 1e6,
        "p99_us": row["p99_us"],
    }


def run_case(case: Case, duration: float, root: Path, seed: int = 1) -> dict:
    """Run one case for ``duration`` seconds in a fresh directory under ``root``."""
    os.sync()  # start every case with no other case's dirty pages still being written back
    if case.system == "walrus-rust":
        workdir = Path(tempfile.mkdtemp(prefix=f"{case.system}-{case.fsync}-", dir=root))
        try:
            return _run_walrus_rust(case, duration, workdir, seed)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    per_call = _records_per_call(case)
    pools = [
        _items(np.random.default_rng([seed, w]), per_call, case.system) for w in range(case.writers)
    ]
    workdir = Path(tempfile.mkdtemp(prefix=f"{case.system}-{case.fsync}-", dir=root))
    system = _SYSTEMS[case.system](workdir / "data", case)
    writes = [system.writer(w, w % case.topics) for w in range(case.writers)]
    calls = [0] * case.writers
    nbytes = [0] * case.writers
    latencies: list[list[int]] = [[] for _ in range(case.writers)]
    start = threading.Barrier(case.writers + 1)
    deadline = [0]
    failures: list[BaseException] = []

    def work(w: int) -> None:
        write, (items, sizes), lat = writes[w], pools[w], latencies[w]
        now, record, m = time.perf_counter_ns, lat.append, len(items)
        i = done = total = 0
        start.wait()
        end = deadline[0]
        try:
            while True:
                t0 = now()
                if t0 >= end:
                    break
                write(items[i])
                record(now() - t0)
                total += sizes[i]
                done += 1
                i = i + 1 if i + 1 < m else 0
        except Exception as exc:
            failures.append(exc)
        calls[w], nbytes[w] = done, total

    threads = [threading.Thread(target=work, args=(w,)) for w in range(case.writers)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter_ns() + int(duration * 1e9)
    began = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    system.close()
    shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        raise RuntimeError(f"{case.system} ({case.fsync}, {case.writers} writers): {failures[0]!r}")
    all_lat = np.concatenate([np.asarray(lat, dtype=np.int64) for lat in latencies])
    return {
        "system": case.system,
        "fsync": case.fsync,
        "writers": case.writers,
        "writes_per_s": sum(calls) * per_call / elapsed,
        "mb_per_s": sum(nbytes) / elapsed / 1e6,
        "p99_us": float(np.percentile(all_lat, 99) / 1e3) if len(all_lat) else None,
    }


def crc_throughput(min_seconds: float = 0.3) -> Iterator[dict]:
    """CRC32C speed of the numba kernel, the crc32c package and zlib's CRC-32, per buffer size."""
    import crc32c as crc32c_pkg

    from walrus import codec

    rng = np.random.default_rng(0)
    for size in CRC_SIZES:
        arr = rng.integers(0, 256, size=size, dtype=np.uint8)
        data = arr.tobytes()
        impls = {
            "numba": lambda arr=arr: codec.crc32c_array(arr, 0),
            "crc32c-pkg": lambda data=data: crc32c_pkg.crc32c(data),
            "zlib": lambda data=data: zlib.crc32(data),
        }
        for name, fn in impls.items():
            fn()
            best = 0.0
            for _ in range(3):
                n, t0 = 0, time.perf_counter()
                while (elapsed := time.perf_counter() - t0) < min_seconds / 3:
                    fn()
                    n += 1
                best = max(best, n * size / elapsed / 1e9)
            yield {"impl": name, "size": size, "gb_per_s": best}


def _filesystem(path: Path) -> str:
    best, fs = "", "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, mountpoint, fstype, *_ = line.split()
            if str(path.resolve()).startswith(mountpoint) and len(mountpoint) > len(best):
                best, fs = mountpoint, f"{fstype} on {mountpoint}"
    return fs


def machine(root: Path) -> dict:
    """Where the numbers were taken."""
    import numba

    from walrus import codec

    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "crc32c_kernel": codec.IMPLEMENTATION,
        "filesystem": _filesystem(root),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
