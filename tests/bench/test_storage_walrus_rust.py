"""The original Walrus engine (crate walrus-rust) in `bench storage`: built, run, refusing."""

import shutil
import subprocess

import pytest

from harness.bench import storage
from harness.systems.rust_build import cache_root

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("cargo") is None and not (cache_root() / "walrus-rust-bench").exists(),
        reason="cargo is not installed (get it with rustup) and no built program is cached",
    ),
]


@pytest.mark.parametrize(("fsync", "writers"), [("none", 4), ("each", 1), ("1000ms", 2)])
def test_a_case_runs_on_the_crate_and_counts_its_writes(tmp_path, fsync, writers):
    row = storage.run_case(storage.Case("walrus-rust", fsync, writers, writers), 0.5, tmp_path)
    assert row["system"] == "walrus-rust" and row["fsync"] == fsync
    assert row["writes_per_s"] > 0 and row["p99_us"] > 0
    mean_payload = row["mb_per_s"] * 1e6 / row["writes_per_s"]
    assert storage.PAYLOAD_MIN <= mean_payload <= storage.PAYLOAD_MAX
    assert list(tmp_path.iterdir()) == [], "its data directory is removed after the case"


def test_the_program_refuses_bad_arguments_in_one_line(tmp_path):
    done = subprocess.run(
        [str(storage.walrus_rust_binary()), str(tmp_path), "sometimes", "1", "1", "1", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "bad arguments" in done.stderr
