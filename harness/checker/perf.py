"""Performance: latency quantiles, throughput and availability, overall and per nemesis window.

Never judges (``valid`` is always true, as Jepsen's perf checker): it describes. A window is the
time between a fault's ``start-X`` and ``stop-X``; "quiet" is the time under no fault at all.
"""

import numpy as np

from harness.checker.result import CheckResult
from harness.history.columns import FAIL, GET, INFO, OK, PUT, Columns

INF = np.inf
QUANTILES = (0.5, 0.95, 0.99, 1.0)


def _stats(c: Columns, rows: np.ndarray, seconds: float) -> dict[str, object]:
    out: dict[str, object] = {}
    for f, code in (("put", PUT), ("get", GET)):
        mine = rows[c.f[rows] == code]
        kind = c.type[mine]
        ok = mine[kind == OK]
        lat = (c.ret[ok] - c.inv[ok]) / 1e6
        out[f] = {
            "ok": len(ok),
            "fail": int(np.count_nonzero(kind == FAIL)),
            "info": int(np.count_nonzero(kind == INFO)),
            "ok_per_s": len(ok) / seconds if seconds > 0 else 0.0,
            "availability": len(ok) / len(mine) if len(mine) else None,
            "latency_ms": {
                f"p{int(q * 100)}" if q < 1 else "max": float(q_)
                for q, q_ in zip(QUANTILES, np.quantile(lat, QUANTILES), strict=True)
            }
            if len(lat)
            else None,
        }
    return out


def _inside(c: Columns, spans: list[tuple[float, float]]) -> np.ndarray:
    """Which operations were invoked inside any of the spans."""
    hit = np.zeros(len(c), bool)
    for start, stop in spans:
        hit |= (c.inv >= start) & (c.inv < stop)
    return hit


def check(c: Columns, windows: list[tuple[str, float, float, object]], end: float) -> CheckResult:
    """Perf statistics (always valid: it measures, it does not judge); ``windows`` as
    ``history.nemesis_windows`` gives them, ``end`` the ns the workload stopped."""
    clipped = [(name, start, min(stop, end)) for name, start, stop, _ in windows]
    every = np.arange(len(c))
    result = {"all": _stats(c, every, end / 1e9)}
    for name in sorted({w[0] for w in clipped}):
        spans = [(s, e) for n, s, e in clipped if n == name]
        seconds = sum(e - s for s, e in spans) / 1e9
        result[name] = _stats(c, every[_inside(c, spans)], seconds)
    faults = [(s, e) for _, s, e in clipped]
    quiet = every[~_inside(c, faults) & (c.inv < end)]
    busy = _merged_length(faults) / 1e9
    result["quiet"] = _stats(c, quiet, end / 1e9 - busy)
    return CheckResult(True, details=result)


def _merged_length(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -INF
    for start, stop in sorted(spans):
        if stop <= reach:
            continue
        total += stop - max(start, reach)
        reach = stop
    return total
