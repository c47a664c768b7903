"""Benchmarks with OpenMessaging Benchmark's semantics, systems side by side (``bench compare``):
workloads (``workload``), the systems' clients (``adapters``) and servers (``servers``), the
driver (``driver``), the run (``compare``) and its plots (``plots``)."""
