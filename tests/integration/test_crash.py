"""SIGKILL a writer at random moments; every acknowledged record must survive, intact."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from walrus.storage import Store

KILLS = 24


def payload(k: int, i: int) -> bytes:
    return f"{k}:{i}:".encode() + bytes([i % 251]) * (i % 700)


@pytest.mark.slow
def test_acknowledged_records_survive_sigkill(tmp_path):
    rng = random.Random(20261126)
    acked: dict[int, bytes] = {}
    writers_used = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for round_ in range(KILLS):
        writers = rng.choice([1, 4])
        writers_used.append(writers)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_writer", str(tmp_path), str(writers)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        lines = out.splitlines()
        if not out.endswith("\n") and lines:
            lines.pop()  # the kill cut this line short
        for line in lines:
            offset, k, i = map(int, line.split())
            acked[offset] = payload(k, i)
        with Store(tmp_path) as store:
            count = store.count("t", 0)
            stored = store.read("t", 0, 0, count)
        missing = [o for o in acked if o >= count]
        assert not missing, f"round {round_}: acknowledged offsets lost: {missing[:5]}"
        for offset, data in acked.items():
            assert stored[offset] == data, f"round {round_}: offset {offset} differs"
        # Records written but never acknowledged are allowed; they must be whole and well formed.
        for data in stored:
            k, i, _ = data.split(b":", 2)
            assert data == payload(int(k), int(i))
    assert len(acked) > 100
    assert {1, 4} <= set(writers_used)
