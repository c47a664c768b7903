"""Machines the harness runs commands on: this host, a container, a host over SSH
(``harness.remote.base.Remote``)."""
