"""The timeline draws every anomaly's witnesses, outlined and linked, even past its limit."""

from harness.history.columns import from_ops
from harness.report import timeline
from tests.checker_support import get, put


def test_witnesses_are_outlined_listed_and_drawn_past_the_limit(tmp_path):
    ops = [put(f"v{i}", i * 1e8, i * 1e8 + 5e7) for i in range(10)]
    late = get("v9", 2e9, 2.1e9)
    ops.append(late)
    anomaly = {"kind": "VOrd", "ops": [ops[0].invoke_index, late.invoke_index], "text": "x < y"}
    path = tmp_path / "timeline.html"
    timeline.write(from_ops(ops), [], path, "t", [anomaly], limit=5)
    page = path.read_text()
    assert page.count("class='op w'") == 2
    assert f"id='o{late.invoke_index}'" in page, "a witness past the limit is drawn"
    assert f"href='#o{ops[0].invoke_index}'" in page and "VOrd: x &lt; y" in page
    assert page.count("class='op") == 6  # the first five and the late witness
    assert "witness of VOrd: x &lt; y" in page


def test_without_anomalies_nothing_is_outlined(tmp_path):
    ops = [put("a", 0, 1e8), get("a", 2e8, 3e8)]
    timeline.write(from_ops(ops), [], tmp_path / "t.html", "t")
    page = (tmp_path / "t.html").read_text()
    assert "class='op w'" not in page and "<ol id='a'>" not in page
