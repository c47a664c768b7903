"""The explorer on the CI bounds: the safe model holds, the compat and drift models fail."""

import re
from dataclasses import replace
from pathlib import Path

import pytest

from spec import explore, model

TLA = Path(__file__).resolve().parents[2] / "spec" / "WalrusLease.tla"


@pytest.mark.slow
@pytest.mark.parametrize("bounds", [{"values": 1}, {"max_time": 1}], ids=str)
def test_the_safe_model_satisfies_every_invariant_and_liveness(bounds):
    # The safe bounds with one of them lowered: one value over both ticks (leases expire), or
    # both values (their order) within one tick. Together about a third of the full bounds'
    # time; `python -m spec.explore --config safe` explores the full bounds.
    outcome = explore.explore(replace(model.CONFIGS["safe"], **bounds))
    assert outcome.ok, (outcome.violated, outcome.reason, outcome.trace)
    assert outcome.states > 100_000


def test_compat_mode_loses_an_acknowledged_value():
    outcome = explore.explore(model.CONFIGS["compat"])
    assert outcome.violated in {"SealedCountExact", "AckedReadable", "SingleWriter"}
    assert not outcome.ok and len(outcome.trace) == len(outcome.actions) + 1


@pytest.mark.parametrize(
    "invariant", ["AckedReadable", "SealedCountExact", "SingleWriter", "CursorBounds"]
)
def test_each_invariant_catches_compat_mode(invariant):
    check = [i for i in model.INVARIANTS if i.__name__ == invariant]
    outcome = explore.explore(model.CONFIGS["compat"], check, liveness=False)
    assert outcome.violated == invariant


def test_a_drift_beyond_rho_breaks_single_writer():
    cfg = model.CONFIGS["drift"]
    assert model.drift_bound_holds(model.CONFIGS["safe"]) and not model.drift_bound_holds(cfg)
    outcome = explore.explore(cfg)
    assert outcome.violated == "SingleWriter"
    assert "Takeover" in outcome.actions


def test_the_command_line_exits_1_with_a_numbered_trace(capsys):
    assert explore.main(["--config", "drift"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATED SingleWriter" in out and "distinct states" in out
    assert re.search(r"^\s+1\. ", out, re.M)


def test_the_command_line_exits_0_when_everything_holds(capsys):
    assert explore.main(["--config", "safe", "--max-time", "1", "--values", "1"]) == 0
    assert "EventuallyAllRead holds" in capsys.readouterr().out


def test_bad_bounds_are_refused(capsys):
    assert explore.main(["--config", "safe", "--values", "-1"]) == 2
    with pytest.raises(SystemExit):
        explore.main(["--config", "nonsense"])


def test_spec_and_model_name_the_same_actions_and_invariants():
    text = TLA.read_text()
    next_block = text[text.index("FaultFree ==") : text.index("Spec ==")]
    tla_actions = set(re.findall(r"\b([A-Z][A-Za-z]+)\((?:n|n, v|n, g|n, f|g)\)", next_block))
    tla_actions |= {"Tick"} if "\\/ Tick" in next_block else set()
    model_actions = {
        name
        for name, fn in vars(model).items()
        if callable(fn)
        and name[0].isupper()
        and getattr(fn, "__module__", "") == model.__name__
        and name not in {"Config", "Seg", "Meta", "Stored", "Put", "State"}
        and fn not in model.INVARIANTS
    }
    assert tla_actions == model_actions
    for inv in model.INVARIANTS:
        assert re.search(rf"^{inv.__name__} ==", text, re.M), inv.__name__


def test_the_tla_module_parses():
    import tla

    assert tla.parse(TLA.read_text()) is not None
    with pytest.raises(ValueError):
        tla.parse(TLA.read_text().replace("now' = now + 1", "now' = = now + 1"))


def test_at_r1_one_disk_loss_loses_an_acknowledged_value_in_six_steps():
    outcome = explore.explore(model.CONFIGS["replicated-r1"])
    assert outcome.violated == "AckedReadable"
    assert outcome.actions == ["Elect", "Create", "CommitRenew", "BeginPut", "FinishPut", "Wipe"]


def test_at_r3_a_put_waits_for_a_majority_and_survives_its_leaders_disk():
    cfg = model.CONFIGS["replicated"]
    s = model.init_states(cfg)[0]
    for action in (model.Elect, model.Create, model.CommitRenew, model.BeginPut):
        s = action(cfg, s, 0)
    assert s.meta.segs[0].replicas == (0, 1, 2)
    assert model.FinishPut(cfg, s, 0, 1) is None, "acknowledged on the leader alone"
    s = model.FinishPut(cfg, model.Replicate(cfg, s, 0, 1), 0, 1)
    assert s.puts[0].phase == "acked"
    s = model.Wipe(cfg, s, 0)
    assert all(inv(cfg, s) is None for inv in model.INVARIANTS)
    s = model.Resign(cfg, model.Restart(cfg, s, 0), 0)
    s = model.SealFromReplicas(cfg, s, 1)
    assert s.meta.segs[0].state == model.SEALED and s.meta.segs[0].count == 1
    assert all(inv(cfg, s) is None for inv in model.INVARIANTS)
