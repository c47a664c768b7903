"""Partition shapes, as properties of the grudges they produce."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nemesis import partition

clusters = st.integers(2, 9).map(lambda n: list(range(1, n + 1)))


def symmetric(grudge):
    return all(a in grudge.get(b, set()) for a, heard in grudge.items() for b in heard)


@given(clusters, st.integers(0, 1000))
def test_components_shapes_are_symmetric_and_split(nodes, seed):
    rng = random.Random(seed)
    for name in ("one", "halves", "random-halves", "majority"):
        grudge = partition.SHAPES[name](nodes, rng)
        assert symmetric(grudge)
        assert any(grudge.values())
        assert all(n not in heard for n, heard in grudge.items())


@given(st.integers(3, 9).map(lambda n: list(range(1, n + 1))), st.integers(0, 1000))
def test_majority_leaves_a_majority_together(nodes, seed):
    grudge = partition.majority(nodes, random.Random(seed))
    biggest = max(len(nodes) - len(h) for h in grudge.values())
    assert biggest > len(nodes) // 2


@given(st.integers(4, 9).map(lambda n: list(range(1, n + 1))), st.integers(0, 1000))
def test_majorities_ring_every_node_sees_a_distinct_majority(nodes, seed):
    grudge = partition.majorities_ring(nodes, random.Random(seed))
    seen = [frozenset(set(nodes) - grudge[n]) for n in nodes]
    assert all(len(s) > len(nodes) // 2 for s in seen)
    assert len(set(seen)) == len(nodes)
    assert symmetric(grudge)


@given(st.integers(3, 9).map(lambda n: list(range(1, n + 1))), st.integers(0, 1000))
def test_bridge_joins_two_sides_through_one_node(nodes, seed):
    grudge = partition.bridge(nodes, random.Random(seed))
    bridges = [n for n, heard in grudge.items() if not heard]
    assert len(bridges) == 1
    sides = {frozenset(h) for n, h in grudge.items() if h}
    assert len(sides) == 2


def test_isolate_and_describe():
    grudge = partition.isolate([1, 2, 3], 2)
    assert partition.describe(grudge) == {"1": [2], "2": [1, 3], "3": [2]}


@pytest.mark.parametrize("shape", partition.shapes_for([1, 2, 3]))
@pytest.mark.parametrize("seed", range(5))
def test_every_shape_chosen_on_three_nodes_is_a_real_symmetric_cut(shape, seed):
    grudge = partition.SHAPES[shape]([1, 2, 3], random.Random(seed))
    assert set(grudge) <= {1, 2, 3} and all(heard <= {1, 2, 3} for heard in grudge.values())
    assert all(n not in heard for n, heard in grudge.items())
    assert symmetric(grudge)
    assert any(grudge.values()), f"{shape} cut nothing"


@given(clusters, st.integers(0, 1000))
def test_every_shape_chosen_for_a_cluster_cuts_a_link(nodes, seed):
    for shape in partition.shapes_for(nodes):
        grudge = partition.SHAPES[shape](nodes, random.Random(seed))
        assert any(grudge.values()), f"{shape} on {len(nodes)} nodes cut nothing"
