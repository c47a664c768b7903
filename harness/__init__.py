"""The verifier: runs clusters, drives workloads through faults, checks histories, reports."""

from walrus import _jit  # noqa: F401 - numba's cache directory, settled before numba is imported
