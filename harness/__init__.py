"""The verifier: runs clusters, drives workloads through faults, checks histories, reports."""
