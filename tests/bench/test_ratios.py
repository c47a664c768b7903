"""The targets `bench compare` reports, judged from results as `ratios` reads them."""

import pytest

from harness.bench.omb.compare import measure_order, ratios

STEPS = "rate-steps-1-topic-100b"


def _entry(system: str, variant: str, rate: float, p99: float, **extra) -> dict:
    return {
        "system": system,
        "variant": variant,
        "workload": STEPS,
        "target_rate": rate,
        "publish_rate": rate,
        "publish_errors": 0,
        "driver_bound": False,
        "publish_latency_ms": {"p99": p99},
        **extra,
    }


def _results(ours_at_their_rates: list[float], ours_at_fractions: list[float]) -> list[dict]:
    fractions = (0.1, 0.5, 1.0)
    theirs = [(f, 1000 * f, p99) for f, p99 in zip(fractions, (40.0, 9.0, 6.0), strict=True)]
    out = [_entry("walrus-rs", "sync=each", rate, p99, step=f) for f, rate, p99 in theirs]
    out += [
        _entry("walrus-py", "fsync=each", 6000 * f, p99, step=f)
        for f, p99 in zip(fractions, ours_at_fractions, strict=True)
    ]
    out += [
        _entry(
            "walrus-py",
            "fsync=each",
            rate,
            p99,
            at_rate_of={"system": "walrus-rs", "variant": "sync=each", "step": f},
        )
        for (f, rate, _), p99 in zip(theirs, ours_at_their_rates, strict=True)
    ]
    return out


def test_the_latency_target_is_judged_at_the_same_rates() -> None:
    judged = ratios(_results([3.0, 4.0, 5.0], [3.0, 20.0, 30.0]))
    same = next(r for r in judged if "same rate" in r["ratio"])
    fraction = next(r for r in judged if "own max" in r["ratio"])
    assert (same["value"], same["met"]) == ("3 of 3", True)
    assert (fraction["value"], fraction["met"], fraction["target"]) == ("1 of 3", None, None)
    assert "not a target" in fraction["why"]


@pytest.mark.parametrize("slower_at", [0, 1, 2])
def test_one_step_slower_at_the_same_rate_misses_the_target(slower_at: int) -> None:
    p99s = [3.0, 4.0, 5.0]
    p99s[slower_at] = 50.0
    same = next(r for r in ratios(_results(p99s, [3.0, 4.0, 5.0])) if "same rate" in r["ratio"])
    assert (same["value"], same["met"]) == ("2 of 3", False)


def test_a_step_not_sustained_is_not_judged() -> None:
    results = _results([3.0, 4.0, 50.0], [3.0, 4.0, 5.0])
    results[-1]["publish_errors"] = 7  # ours at walrus-rs's 100 % step failed some publishes
    same = next(r for r in ratios(results) if "same rate" in r["ratio"])
    assert (same["value"], same["met"]) == ("2 of 2", True)


def test_without_the_original_nothing_is_judged() -> None:
    results = [r for r in _results([3.0, 4.0, 5.0], [1, 2, 3]) if r["system"] != "walrus-rs"]
    same = next(r for r in ratios(results) if "same rate" in r["ratio"])
    assert same["met"] is None and same["why"] == "no rate step measured for both"


@pytest.mark.parametrize(
    ("asked", "measured"),
    [
        (["walrus-py", "walrus-rs", "redis"], ["walrus-rs", "walrus-py", "redis"]),
        (["redis", "walrus-py", "nats", "walrus-rs"], ["redis", "walrus-rs", "walrus-py", "nats"]),
        (["walrus-rs", "walrus-py"], ["walrus-rs", "walrus-py"]),
        (["walrus-py", "nats"], ["walrus-py", "nats"]),
        (["walrus-rs"], ["walrus-rs"]),
    ],
)
def test_the_original_is_measured_just_before_our_node(asked, measured) -> None:
    assert measure_order(asked) == measured
