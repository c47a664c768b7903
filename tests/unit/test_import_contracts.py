"""The import contracts of ``make lint`` (``[tool.importlinter]`` in pyproject.toml) hold on the
tree, and break when a layer reaches up: the faults importing the harness, a system importing the
backends that run it, a checker the node's client, the fault interface the catalogue of
faults (a cycle)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("walrus", "harness", "nemesis", "spec", "losefs")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--no-cache", "--config", "pyproject.toml"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_tree_keeps_every_contract():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("nemesis/aim.py", "from harness import tools", "the faults know the cluster only"),
        (
            "harness/systems/base.py",
            "from harness.cluster import base as cluster_base",
            "the harness in layers",
        ),
        ("harness/checker/totals.py", "from walrus import client", "checkers read histories"),
        ("nemesis/fault.py", "from nemesis import catalogue", "no import cycle"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(tmp_path, module, line, contract):
    tree = _copy(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    out = _lint(tree)
    assert out.returncode != 0
    broken = [row for row in out.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(contract) for row in broken), out.stdout
