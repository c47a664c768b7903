"""Checkers: each takes a history (and evidence) and returns a plain map with ``valid``.

``valid`` is ``True``, ``False`` or ``"unknown"`` (never ``True`` when undecided). Exit codes of
``walrus-harness check``: 0 valid, 1 invalid, 2 unknown.
"""
