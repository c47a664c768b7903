"""Fault injection: partitions, clocks, processes, disks; acting through the cluster interface."""
