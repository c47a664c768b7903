"""Every anomaly kind the checkers are shown to catch reaches the run page of ``serve`` with a
witness window of at most 20 operations that contains what was planted."""

import re

import pytest

from harness.serve.app import App
from harness.serve.pages import MAX_WINDOW
from harness.serve.store import Store
from tests.run_support import write_run
from tests.sensitivity.test_checkers_catch import BUGS, simulate

ANOMALY = re.compile(
    r"<div class='anomaly[^']*' id='a\d+' data-checker='(?P<checker>[^']*)' "
    r"data-kind='(?P<kind>[^']*)' data-ops='(?P<ops>[^']*)' data-positions='(?P<pos>[^']*)'>"
    r"(?P<body>.*?)</div>",
    re.S,
)


def windows(page: str) -> list[dict]:
    """Each anomaly of a run page: its checker, kind, listed witnesses and drawn operations."""
    return [
        {
            "checker": m["checker"],
            "kind": m["kind"],
            "ops": {int(i) for i in m["ops"].split()},
            "positions": {tuple(map(int, p.split(":"))) for p in m["pos"].split()},
            "drawn": {int(i) for i in re.findall(r"<g class='op' data-index='(\d+)'>", m["body"])},
        }
        for m in ANOMALY.finditer(page)
    ]


@pytest.mark.parametrize(("bug", "catches"), BUGS)
def test_the_run_page_shows_each_planted_anomaly_in_a_small_window(tmp_path, bug, catches):
    ops, events, audit = simulate()
    planted = bug(ops, events, audit)
    _, moved = write_run(tmp_path / "sim" / "run", ops, events, audit)
    want_ops = {moved[i] for i in planted.get("ops", set())}
    want_positions = planted.get("positions", set())
    shown = windows(App(Store(tmp_path)).run("sim/run"))
    for checker in catches:
        mine = [w for w in shown if w["checker"] == checker]
        assert mine, f"the run page shows no {checker} anomaly for {bug.__name__}"
        hits = [w for w in mine if want_ops <= w["ops"] and want_positions <= w["positions"]]
        assert hits, f"no {checker} window holds {want_ops or want_positions}: {mine}"
        for w in hits:
            assert len(w["ops"]) <= MAX_WINDOW
            assert w["drawn"] == w["ops"], "every listed witness is drawn in the window"
