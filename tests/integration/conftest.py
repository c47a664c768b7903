"""Fixtures that start real node processes."""

import pytest

from tests.integration.nodes import LocalNodes


@pytest.fixture
def make_cluster(tmp_path):
    """make_cluster(nodes=3, args=[...], env={...}) -> a started LocalNodes, torn down after."""
    made = []

    def make(nodes: int = 3, args=None, env=None, start: bool = True) -> LocalNodes:
        cluster = LocalNodes(tmp_path / f"cluster-{len(made)}", nodes, args, env)
        made.append(cluster)
        if start:
            cluster.start_all()
        return cluster

    yield make
    for cluster in made:
        cluster.close()


def _docker_reason() -> str | None:
    from harness.images import DockerUnavailable, preflight
    from harness.tools import ToolMissing

    try:
        preflight()
    except DockerUnavailable as exc:
        return f"no Docker engine: {exc}"
    except ToolMissing as exc:
        return str(exc)
    return None


_DOCKER = _docker_reason()
DOCKER = pytest.param(
    "docker",
    marks=[pytest.mark.slow, pytest.mark.skipif(_DOCKER is not None, reason=str(_DOCKER))],
)
"""The docker backend as a test parameter: slow, and skipped (with the reason) without an engine
or the tools to build its images."""
BACKEND_PARAMS = ["local", DOCKER]
"""Backends to run a test under."""
