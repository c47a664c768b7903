"""A benchmark whose packages (the ``bench`` extra) are not installed says which extra to
install, in one line, before it starts anything."""

import importlib.util

import pytest

from harness.bench.cli import COMMANDS
from harness.cli import main


def test_every_package_a_benchmark_needs_is_in_the_bench_extra():
    needs = {m for c in COMMANDS for m in c.needs}
    assert needs == {"rocksdict", "yaml", "hdrh", "redis"}
    assert all(importlib.util.find_spec(m) is not None for m in needs)  # make test installs it


@pytest.mark.parametrize(
    ("command", "hidden", "out"),
    [("compare", "redis", "--out"), ("storage", "rocksdict", "--json")],
)
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys, command, hidden, out):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(  # as if the package were not installed
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == hidden else find_spec(name, *a),
    )
    status = main(["bench", command, out, str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err == [
        f"walrus-harness: bench {command} needs the bench extra ({hidden} missing): "
        "pip install 'walrus-verifier[bench]' (make install does)"
    ]
    assert not list(tmp_path.iterdir())
