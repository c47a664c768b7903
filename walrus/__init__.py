"""A Walrus node in Python: storage engine, metadata, leases, server, client.

Importing the package first settles where numba caches its kernels (see ``walrus._jit``),
before any submodule imports numba.
"""

from walrus import _jit  # noqa: F401
