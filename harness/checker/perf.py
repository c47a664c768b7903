"""Performance: latency quantiles, throughput and availability, overall and per nemesis window.

Never judges (``valid`` is always true, as Jepsen's perf checker): it describes. A window is the
time between a fault's ``start-X`` and ``stop-X``; "quiet" is the time under no fault at all.
"""

import numpy as np

from harness.checker.result import CheckResult
from harness.history import INF, Op

QUANTILES = (0.5, 0.95, 0.99, 1.0)


def _stats(ops: list[Op], seconds: float) -> dict:
    out: dict = {}
    for f in ("put", "get"):
        mine = [o for o in ops if o.f == f]
        ok = [o for o in mine if o.ok]
        lat = np.array([(o.ret - o.inv) / 1e6 for o in ok]) if ok else np.array([])
        out[f] = {
            "ok": len(ok),
            "fail": sum(1 for o in mine if o.type == "fail"),
            "info": sum(1 for o in mine if o.type == "info"),
            "ok_per_s": len(ok) / seconds if seconds > 0 else 0.0,
            "availability": len(ok) / len(mine) if mine else None,
            "latency_ms": {
                f"p{int(q * 100)}" if q < 1 else "max": float(np.quantile(lat, q))
                for q in QUANTILES
            }
            if len(lat)
            else None,
        }
    return out


def _inside(op: Op, windows: list[tuple[float, float]]) -> bool:
    return any(start <= op.inv < stop for start, stop in windows)


def check(
    ops: list[Op], windows: list[tuple[str, float, float, object]], end: float
) -> CheckResult:
    """Perf statistics (always valid: it measures, it does not judge); ``windows`` as
    ``history.nemesis_windows`` gives them, ``end`` the ns the workload stopped."""
    clipped = [(name, start, min(stop, end)) for name, start, stop, _ in windows]
    result = {"all": _stats(ops, end / 1e9)}
    for name in sorted({w[0] for w in clipped}):
        spans = [(s, e) for n, s, e in clipped if n == name]
        seconds = sum(e - s for s, e in spans) / 1e9
        result[name] = _stats([o for o in ops if _inside(o, spans)], seconds)
    faults = [(s, e) for _, s, e in clipped]
    quiet = [o for o in ops if not _inside(o, faults) and o.inv < end]
    busy = _merged_length(faults) / 1e9
    result["quiet"] = _stats(quiet, end / 1e9 - busy)
    return CheckResult(True, details=result)


def _merged_length(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -INF
    for start, stop in sorted(spans):
        if stop <= reach:
            continue
        total += stop - max(start, reach)
        reach = stop
    return total
