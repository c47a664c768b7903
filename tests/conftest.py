"""Fixtures that start real node processes, for every test package."""

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
