"""Benchmarks: this project's numbers beside RocksDB's, SQLite's, the disk's and Walrus's."""
