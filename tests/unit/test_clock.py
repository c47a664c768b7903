"""The node clock: rates bend time continuously, offsets move only the wall reading, bad control
files are ignored."""

import json
import time

import pytest
import trio
import trio.testing

from walrus.clock import ClockControlError, NodeClock, TrioClock, parse_control, write_control


class FakeTrue:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_no_control_file_is_true_time(tmp_path):
    true = FakeTrue()
    clock = NodeClock(tmp_path / "clock.ctl", true)
    assert clock.now() == 1000.0
    true.t += 5
    assert clock.now() == 1005.0


def test_offset_jumps_and_rate_is_continuous(tmp_path):
    ctl = tmp_path / "clock.ctl"
    true = FakeTrue()
    clock = NodeClock(ctl, true)
    write_control(ctl, offset=3.0)
    true.t += 1
    assert clock.wall() == pytest.approx(1004.0)
    write_control(ctl, offset=3.0, rate=2.0)
    true.t += 1
    first = clock.wall()
    assert first == pytest.approx(1005.0)  # the new rate applies from when it is seen
    true.t += 1
    assert clock.wall() == pytest.approx(first + 2.0)
    write_control(ctl, offset=0.0, rate=2.0)
    true.t += 0.06
    assert clock.wall() == pytest.approx(first + 2.0 + 0.12 - 3.0)


def test_offsets_never_move_node_time(tmp_path):
    ctl = tmp_path / "clock.ctl"
    true = FakeTrue()
    clock = NodeClock(ctl, true)
    before = clock.now()
    for offset in (60.0, -60.0, 0.5):
        write_control(ctl, offset=offset)
        true.t += 0.1
        assert clock.now() == pytest.approx(before + 0.1)
        assert clock.wall() == pytest.approx(before + 0.1 + offset)
        before = clock.now()


def test_control_is_reread_at_most_every_50ms(tmp_path):
    ctl = tmp_path / "clock.ctl"
    true = FakeTrue()
    clock = NodeClock(ctl, true)
    clock.wall()
    write_control(ctl, offset=10.0)
    true.t += 0.01
    assert clock.wall() == pytest.approx(1000.01)
    true.t += 0.05
    assert clock.wall() == pytest.approx(1010.06)


def test_bad_control_keeps_the_previous_setting(tmp_path):
    ctl = tmp_path / "clock.ctl"
    true = FakeTrue()
    clock = NodeClock(ctl, true)
    write_control(ctl, offset=1.0)
    true.t += 1
    assert clock.wall() == pytest.approx(1002.0)
    ctl.write_text('{"offset": "soon"}')
    true.t += 1
    assert clock.wall() == pytest.approx(1003.0)
    assert "finite numbers" in clock.error
    ctl.unlink()
    true.t += 1
    assert clock.wall() == pytest.approx(1003.0)
    assert clock.error is None


@pytest.mark.parametrize(
    "text",
    ['{"rate": 0}', '{"rate": -1}', '{"offset": 1, "drift": 2}', "[1, 2]", "nope", '{"rate": NaN}'],
)
def test_parse_control_rejects(text):
    with pytest.raises(ClockControlError):
        parse_control(text)


def test_parse_control_defaults():
    assert parse_control("") == (0.0, 1.0)
    assert parse_control(json.dumps({"rate": 1.05})) == (0.0, 1.05)


def test_trio_timers_run_on_node_time(tmp_path):
    ctl = tmp_path / "clock.ctl"
    write_control(ctl, rate=4.0)
    clock = NodeClock(ctl)
    trio_clock = TrioClock(clock)
    assert trio_clock.deadline_to_sleep_time(clock.now() + 0.04) == pytest.approx(0.01, abs=0.005)
    assert trio_clock.deadline_to_sleep_time(clock.now() + 100) == 0.05
    assert trio_clock.deadline_to_sleep_time(clock.now() - 1) == 0.0

    async def main() -> float:
        start = trio.current_time()
        await trio.sleep(0.4)  # node seconds: 0.1 true seconds at rate 4
        return trio.current_time() - start

    t0 = time.monotonic()
    elapsed_node = trio.run(main, clock=trio_clock)
    elapsed_true = time.monotonic() - t0
    assert elapsed_node >= 0.4
    assert elapsed_true < 0.35
