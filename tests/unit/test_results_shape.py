"""One results.json shape, read through one family of accessors (``harness.checker.result``),
which still read the runs older code wrote: ``tests/fixtures/results-v1/`` holds the results.json
and test.json of a run written before results.json had a version (the gate's ``--compat
walrus`` control, 2026-12-07)."""

import json
import shutil
from pathlib import Path

from harness.checker.result import (
    RESULTS_VERSION,
    anomalies_of,
    checker_results,
    counts_of,
    details_of,
    fault_windows,
    result_of,
)
from harness.runner import TEST_VERSION, TestConfig
from harness.serve.app import App
from harness.serve.store import Store
from tests.run_support import write_store

V1 = Path(__file__).parent.parent / "fixtures" / "results-v1"


def test_a_version_1_results_json_is_read_by_the_accessors():
    results = json.loads((V1 / "results.json").read_text())
    assert "version" not in results
    assert list(checker_results(results)) == ["queue", "totals", "lease", "perf", "storage"]
    assert counts_of(results) == {"beyond_sealed_count": 17, "acknowledged_beyond_count": 14}
    assert {name for name, _ in anomalies_of(results)} == {"lease", "storage"}
    assert result_of(results, "metadata") == {} and details_of(results, "perf")["all"]
    assert all(stop > start for _, start, stop, _ in fault_windows(results))


def test_a_version_1_run_still_opens_in_serve(tmp_path):
    run = tmp_path / "old" / "20261207T125252"
    shutil.copytree(V1, run)
    [info], _ = Store(tmp_path).scan()
    assert info.verdict == "INVALID" and info.anomalies["beyond_sealed_count"] == 17
    page = App(Store(tmp_path)).run(info.rel)
    assert "id='checkers'" in page and page.count("class='anomaly") == 10
    assert "data-kind='acknowledged_beyond_count'" in page


def test_a_run_written_now_has_the_current_version_and_its_checkers_under_one_key(tmp_path):
    paths = write_store(tmp_path)
    results = json.loads((tmp_path / paths["invalid"] / "results.json").read_text())
    assert results["version"] == RESULTS_VERSION
    assert set(results["checkers"]) == set(checker_results(results))
    assert not set(checker_results(results)) & set(results)  # none left at the top level
    written = TestConfig(store=tmp_path).to_json()
    assert written["version"] == TEST_VERSION
    assert TestConfig.from_json(written) == TestConfig(store=tmp_path)
