"""losefs: a pass-through FUSE file system that can lose what was never made durable.

A SIGKILL leaves the page cache intact, so a node that acknowledges writes before fsync passes
every kill. A power loss does not: what was written but not fsynced, and directory entries
(creations, renames, unlinks) not made durable by an fsync of their directory, are gone. Jepsen
tests this with lazyfs, a FUSE file system that buffers unsynced writes in memory and drops them
on command. losefs models the same loss differently: every operation passes straight through to
a backing directory (reads are the backing file's own), and losefs keeps, per file, the size at
its last fsync and the old bytes of any synced range an unsynced write or truncation
overwrote, and, per directory, the name operations since its last fsync. ``lose_unsynced`` then
undoes exactly that — names back in reverse order, files cut back to their synced size with
their synced bytes restored — leaving the backing directory as a power loss would.

``losefs.disk`` is that bookkeeping over a plain directory (testable without FUSE);
``losefs.fuse`` is the pyfuse3 shell that routes the kernel's requests to it; ``python -m
losefs BACKING MOUNT`` mounts one and, on SIGUSR1, loses the unsynced state and unmounts (on
SIGTERM it unmounts keeping everything, as a clean shutdown does).
"""
