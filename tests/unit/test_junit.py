"""``gate --junit`` and ``campaign --junit``: a JUnit XML file a JUnit parser reads, one test
case per run, the failing run's replay command in its failure text."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import junit
from harness.campaign import Row

junitparser = pytest.importorskip(
    "junitparser", reason="junitparser is not installed: make install"
)


def _row(nemesis: str, seed: int, verdict, anomalies: dict[str, int], seconds: float) -> Row:
    path = Path(f"results/runs/gate/{nemesis}-{seed}")
    return Row(nemesis, seed, verdict, anomalies, 100, 10.0, 0.9, path, 0, seconds)


def test_a_gate_with_one_unexpected_verdict_reads_as_one_failure(tmp_path):
    rows = [
        (_row("partition,kill", 11, True, {}, 30.0), True),
        (_row("pause,clock", 12, False, {"lost": 2}, 31.5), True),  # must be valid: a failure
        (_row("partition,kill (control)", 11, False, {"VOrd": 3}, 29.0), False),
    ]
    out = tmp_path / "gate.xml"
    junit.write(
        out, "walrus-harness gate local", [junit.case_of(r, "gate.local", m) for r, m in rows]
    )
    xml = junitparser.JUnitXml.fromfile(str(out))
    [suite] = list(xml)
    assert (suite.tests, suite.failures, suite.errors) == (3, 1, 0)
    cases = {c.name: c for c in suite}
    assert cases["partition,kill seed 11"].is_passed
    [failure] = cases["pause,clock seed 12"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "INVALID (must be valid)"
    assert "walrus-harness replay results/runs/gate/pause,clock-12" in failure.text
    assert "lost=2" in failure.text
    assert cases["partition,kill (control) seed 11"].is_passed  # invalid, as it must be
    assert float(ET.parse(out).getroot()[0].get("time")) == pytest.approx(90.5)


def test_a_campaign_run_that_could_not_decide_is_an_error(tmp_path):
    rows = [_row("kill", 1, True, {}, 5), _row("kill", 2, "unknown", {"lost": 1}, 6)]
    out = tmp_path / "campaign.xml"
    junit.write(out, "campaign", [junit.case_of(r, "campaign.kill") for r in rows])
    [suite] = list(junitparser.JUnitXml.fromfile(str(out)))
    assert (suite.tests, suite.failures, suite.errors) == (2, 0, 1)
    [error] = next(c for c in suite if c.name == "kill seed 2").result
    assert isinstance(error, junitparser.Error) and error.message.startswith("UNKNOWN")
