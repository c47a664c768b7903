"""Cluster backends behind one interface: local processes (default) and, later, containers."""

from harness.cluster.base import Cluster, Grudge, NodeSpec
from harness.cluster.local import LocalCluster

__all__ = ["Cluster", "Grudge", "LocalCluster", "NodeSpec"]
