"""Clock skew for programs libfaketime cannot be preloaded into: a small shim of our own.

libfaketime hangs Debian's redis-server as it starts (its jemalloc reads the clock while
libfaketime initialises: "unexpected recursive calls to clock_gettime()"). This shim does one
thing, with no allocation and no ``dlsym``, so it has nothing to recurse into: it answers
``clock_gettime`` for ``CLOCK_REALTIME`` (and its coarse form), ``gettimeofday`` and ``time`` with
the true wall clock moved by the offset and rate in the node's control file — the file
``harness.systems.faketime.control`` gives, in libfaketime's format, re-read at most every 0.1 s —
and every other clock (the monotonic clocks timers run on) untouched, read straight from the
kernel. A rate change keeps the drift accumulated so far, so the wall reading does not jump; an
offset change does, as an NTP step would.

It is C because it must be preloaded into a C program; ``cc`` builds it once per version of the
source into the harness's cache.
"""

import hashlib
import os
import subprocess
from pathlib import Path

from harness.systems.faketime import CONTROL_FILE
from harness.tools import require

SOURCE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double offset = 0, rate = 1, carried = 0, anchor = 0;
static long long next_read_ns = 0;

static int raw(clockid_t id, struct timespec *ts) {
    return (int)syscall(SYS_clock_gettime, id, ts);
}

static void refresh(double real) {
    struct timespec m;
    raw(CLOCK_MONOTONIC, &m);
    long long now = m.tv_sec * 1000000000LL + m.tv_nsec;
    if (now < next_read_ns) return;
    next_read_ns = now + 100000000LL;
    const char *path = getenv("HARNESS_CLOCK_FILE");
    if (!path) return;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    char *end;
    double o = strtod(buf, &end);
    if (end == buf) return;
    while (*end == ' ') end++;
    double r = *end == 'x' ? strtod(end + 1, NULL) : 1.0;
    if (r <= 0) return;
    if (r != rate) {
        carried += (rate - 1) * (real - anchor);
        anchor = real;
        rate = r;
    }
    offset = o;
}

static void skew(struct timespec *ts) {
    double real = ts->tv_sec + ts->tv_nsec / 1e9;
    refresh(real);
    double wall = real + offset + carried + (rate - 1) * (real - anchor);
    time_t sec = (time_t)wall;
    if ((double)sec > wall) sec -= 1;
    ts->tv_sec = sec;
    ts->tv_nsec = (long)((wall - (double)sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) ts->tv_nsec = 999999999L;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = raw(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) skew(ts);
    return rc;
}

int gettimeofday(struct timeval *__restrict tv, void *__restrict tz) {
    (void)tz;
    struct timespec ts;
    int rc = raw(CLOCK_REALTIME, &ts);
    if (rc) return rc;
    skew(&ts);
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    raw(CLOCK_REALTIME, &ts);
    skew(&ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
"""


def library() -> Path:
    """The shim's shared library, built with ``cc`` once per version of ``SOURCE``."""
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("WALRUS_HARNESS_CACHE", Path.home() / ".cache/walrus-harness"))
    out = cache / f"wallclock-{digest}"
    lib = out / "libwallclock.so"
    if not lib.exists():
        out.mkdir(parents=True, exist_ok=True)
        (out / "wallclock.c").write_text(SOURCE)
        partial = out / "libwallclock.so.partial"
        done = subprocess.run(
            [
                require("cc"),
                "-shared",
                "-fPIC",
                "-O2",
                "-o",
                str(partial),
                str(out / "wallclock.c"),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cc could not build the clock shim: {done.stderr.strip()[-500:]}")
        partial.replace(lib)
    return lib


def preload(data_dir: Path) -> dict[str, str]:
    """The environment that preloads the shim, steered by the control file in ``data_dir``."""
    return {
        "LD_PRELOAD": str(library()),
        "HARNESS_CLOCK_FILE": str(data_dir / CONTROL_FILE),
    }
