"""Walrus's own client scripts, run unchanged against `walrus cluster up`.

`local_smoke.py` and `local_rollover_read_test.py` (distributed-walrus/scripts in the Walrus
tree) talk to 127.0.0.1:10081-10083 and expect what Walrus gives: node 1 leading the metadata
group (they read `replication` from its METRICS), segments sealed at 10 entries with leaders
rotating over all three nodes, everything read back in order through node 2. They are read from
WALRUS_RS_SRC, not copied here; five fresh clusters in a row must pass both.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.nodes import start_cluster_up, stop_cluster_up

SRC = os.environ.get("WALRUS_RS_SRC")
SCRIPTS = Path(SRC or ".") / "distributed-walrus" / "scripts"


def _ports_free() -> bool:
    for port in (10081, 10082, 10083, 10181, 10182, 10183, 10281, 10282, 10283):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the nodes bind
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not SRC, reason="WALRUS_RS_SRC is not set: Walrus's scripts are not ours")
@pytest.mark.parametrize("start", range(5))
def test_walruss_scripts_pass_against_a_fresh_cluster(tmp_path, start):
    if not _ports_free():
        pytest.skip("ports 10081-10283 are taken: Walrus's scripts need exactly those")
    proc = start_cluster_up(tmp_path / "cluster", 10080, {"WALRUS_MAX_SEGMENT_ENTRIES": "10"})
    try:
        for script in ("local_smoke.py", "local_rollover_read_test.py"):
            done = subprocess.run(
                [sys.executable, str(SCRIPTS / script)], capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{script}: {done.stdout}{done.stderr}"
    finally:
        stop_cluster_up(proc)
