"""The protocol's specification: a TLA+ module and an executable Python model of it."""
