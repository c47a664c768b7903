"""Where numba keeps its compiled kernels, settled before numba is first imported.

numba reads ``NUMBA_CACHE_DIR`` once, when it is imported, so every module that uses numba
imports this one first. ``WALRUS_NUMBA_CACHE`` chooses the directory; without it the cache
goes under the user's cache directory, never next to the installed sources.
"""

import os
from pathlib import Path


def cache_dir() -> Path:
    """The directory numba's on-disk kernel cache uses for this process.

    ``WALRUS_NUMBA_CACHE`` wins, then numba's own ``NUMBA_CACHE_DIR``, then
    ``$XDG_CACHE_HOME/walrus-py/numba`` (``~/.cache`` when XDG is unset).
    """
    chosen = os.environ.get("WALRUS_NUMBA_CACHE") or os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "walrus-py" / "numba"


os.environ["NUMBA_CACHE_DIR"] = str(cache_dir())
