"""The client layer: how the workload reaches any system (``base``), and the clients of each
system that speaks its own protocol (``walrus``)."""
