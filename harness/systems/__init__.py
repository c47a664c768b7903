"""Systems under test (DESIGN §8): ``walrus-py`` (this repository's node, the default),
``walrus-rs`` (the original Walrus, built from a source tree the user gives) and ``external`` (a
Walrus-protocol cluster that is already running). See ``harness.systems.base`` for what a system
owns and what is left to the backends."""

from harness.systems.base import Boot, Command, Member, System, Unsupported
from harness.systems.walrus_py import NodeSpec, WalrusPy

SYSTEMS = ("walrus-py", "walrus-rs", "external")
"""Every system's name, for ``--system``."""

__all__ = [
    "SYSTEMS",
    "Boot",
    "Command",
    "Member",
    "NodeSpec",
    "System",
    "Unsupported",
    "WalrusPy",
]
