"""A campaign's summary: the table by nemesis that the docs' campaign tables are copied from."""

from pathlib import Path

from harness.campaign import Row, by_nemesis


def _row(nemesis: str, seed: int, verdict, anomalies: dict[str, int], ops: int) -> Row:
    path = Path(f"runs/{nemesis}-{seed}")
    return Row(nemesis, seed, verdict, anomalies, ops, 10.0 * seed, 0.5 + 0.1 * seed, path)


def test_each_nemesis_is_one_row_with_its_anomaly_kinds_counted_and_the_runs_they_were_in():
    rows = [
        _row("kill", 1, True, {}, 100),
        _row("kill", 2, False, {"duplicated": 2, "VRepet": 2}, 200),
        _row("kill", 3, False, {"duplicated": 1}, 300),
        _row("partition", 1, "unknown", {"VWit": 1}, 50),
    ]
    header, _, kill, partition = by_nemesis(rows)
    assert header.startswith("| nemesis | runs | verdicts | anomalies found")
    assert kill == (
        "| `kill` | 3 | 1 valid, 2 invalid | VRepet 2 (1), duplicated 3 (2) | 600 | 20.0 | 70.0% |"
    )
    assert partition == "| `partition` | 1 | 1 unknown | VWit 1 (1) | 50 | 10.0 | 60.0% |"
