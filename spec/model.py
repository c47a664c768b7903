"""The executable model of ``WalrusLease.tla``: the fenced data plane as a pure state machine.

One topic on a few nodes. The metadata is a committed log that each node applies at its own
pace; time advances in ticks during which every node's clock advances by its own rate; nodes
crash (losing what they keep in memory) and are cut off from the metadata and from each other.
Every action of the TLA+ module is one function here with the same name, taking the model's
``Config``, a ``State`` and the action's parameters, and returning the next state, or None
where the action is not enabled. ``successors`` enumerates them all; ``INVARIANTS`` are the
module's invariants as functions that return None when they hold and a sentence when they do
not.

The model follows the code, not an idealised protocol: the metadata commands are those of
``walrus/metastate.py`` with the same conditions, the lease arithmetic that of
``walrus/lease.py``, the append guard, rollover and count report those of ``walrus/writes.py``,
and the cursor, END, EMPTY and ``unavailable`` rules those of ``walrus/reads.py``.
``Config.compat`` switches the same mechanisms off as ``--compat walrus`` does.

``Config.replicas`` (R) is issue 16's data-plane replication, specified before it is built: each
segment has a leader and R-1 followers chosen when it opens; the leader sends its entries to the
followers (``Replicate``), and a PUT is acknowledged once a majority of the replicas hold it. A
taken-over segment is sealed without its old leader once a majority of its replicas answer
(``SealFromReplicas``: each answering copy is sealed, which fences the old leader, and the count
is the longest of them: an acknowledged entry is on a majority, and two majorities meet). A
sealed segment is read from any replica with a whole copy, the read position is written to a
majority of the replicas before an entry is handed out, and a replica whose copy is short,
sealed too long or lost is repaired from another (``Repair``). ``Wipe`` loses a node's disk: its
copies are marked lost (the node knows it came back empty) and count for nothing until
repaired. The metadata (the Raft journal) is kept across a wipe here: losing a voter's log is a
Raft membership problem, outside this model. With R = 1 every one of these is the code of today.
"""

import itertools
from dataclasses import dataclass, replace
from typing import NamedTuple

OPEN = "open"
SEALED = "sealed"
PENDING = "sealed-pending-count"


@dataclass(frozen=True)
class Config:
    """The constants of the module: sizes, clock rates, lease timing and fault budgets.

    Clock readings are integers: a tick of true time advances a node's clock by its rate, one
    of ``rates``. ``hold`` is the lease a committed renew grants on the holder's clock and
    ``wait`` the takeover wait on the metadata leader's clock; the code's ``L*(1-rho)`` and
    ``L*(1+rho)`` with ``L = 3`` and ``rho = 1/3`` when the nominal rate is 1.5, so that the
    slowest clock's lease and the fastest clock's wait both last two ticks.
    """

    nodes: int = 2
    values: int = 2
    max_entries: int = 1
    max_segments: int = 2
    max_time: int = 2
    rates: tuple[int, ...] = (1, 2)
    hold: int = 2
    wait: int = 4
    max_crashes: int = 0
    max_cuts: int = 1
    compat: bool = False
    replicas: int = 1
    max_wipes: int = 0


def drift_bound_holds(cfg: Config) -> bool:
    """True if a lease always ends, in true time, before the takeover wait does.

    A lease lasts at most ``hold / min(rates)`` ticks, the wait at least ``wait / max(rates)``
    ticks: the lease argument of ``walrus/lease.py`` needs the first to be at most the second.
    """
    return cfg.hold * max(cfg.rates) <= cfg.wait * min(cfg.rates)


class Seg(NamedTuple):
    """A segment in the metadata: leader, epoch, state, count once sealed, and its replicas
    (the leader first)."""

    leader: int
    epoch: int
    state: str
    count: int | None
    replicas: tuple[int, ...] = ()


class Meta(NamedTuple):
    """One copy of the metadata: the topic's segments (id = index + 1), its cursor's segment,
    and which nodes are alive.

    The code's per-node renew counters are not kept: a takeover commits only if the counter it
    names is still current, i.e. only if no renew of that node committed after the ones the
    metadata leader had applied when it proposed — which ``Takeover`` checks on the log itself.
    """

    segs: tuple[Seg, ...]
    cursor: int
    alive: tuple[bool, ...]


class Stored(NamedTuple):
    """A node's copy of one segment: its entries (the values), whether it is sealed, and
    whether it was lost with the node's disk (and not yet repaired)."""

    entries: tuple[int, ...]
    sealed: bool
    lost: bool = False


class Put(NamedTuple):
    """A client's PUT of one value: ``seq`` (sequenced, not answered), ``acked`` or ``info``
    (its node crashed before answering), and where it was sequenced."""

    phase: str
    node: int
    seg: int
    offset: int


class State(NamedTuple):
    """Every variable of the module."""

    now: int
    rate: tuple[int, ...]
    up: tuple[bool, ...]
    cut: tuple[bool, ...]
    crashes: int
    cuts: int
    wipes: int
    leader: int
    silence: tuple[int, ...]
    lease: tuple[int, ...]
    renew: tuple[tuple[str, int] | None, ...]
    incarnation: tuple[int, ...]
    meta: Meta
    log: tuple[tuple, ...]
    applied: tuple[int, ...]
    view: tuple[Meta, ...]
    store: tuple[tuple[Stored, ...], ...]
    slot: tuple[tuple[int, int], ...]
    rolling: tuple[frozenset[int], ...]
    compat_count: tuple[tuple[int, ...], ...]
    compat_cursor: tuple[tuple[int, int], ...]
    puts: tuple[Put | None, ...]
    before: tuple[frozenset[int], ...]
    delivered: tuple[int, ...]
    empty_unread: frozenset[int]


NO_LEADER = -1


def _set(t: tuple, i: int, v) -> tuple:
    return (*t[:i], v, *t[i + 1 :])


def init_states(cfg: Config) -> list[State]:
    """Every initial state: no topic, no leader, each node's clock rate any of ``rates``."""
    n = cfg.nodes
    empty = Meta((), 0, (True,) * n)
    blank = State(
        now=0,
        rate=(0,) * n,
        up=(True,) * n,
        cut=(False,) * n,
        crashes=0,
        cuts=0,
        wipes=0,
        leader=NO_LEADER,
        silence=(0,) * n,
        lease=(0,) * n,
        renew=(("sent", 0),) * n,
        incarnation=(0,) * n,
        meta=empty,
        log=(),
        applied=(0,) * n,
        view=(empty,) * n,
        store=((Stored((), False),) * cfg.max_segments,) * n,
        slot=((0, 0),) * n,
        rolling=(frozenset(),) * n,
        compat_count=((0,) * cfg.max_segments,) * n,
        compat_cursor=((1, 0),) * n,
        puts=(None,) * cfg.values,
        before=(frozenset(),) * cfg.values,
        delivered=(),
        empty_unread=frozenset(),
    )
    states = [blank]
    for i in range(n):
        states = [s._replace(rate=_set(s.rate, i, r)) for s in states for r in cfg.rates]
    return states


# --- the metadata machine (walrus/metastate.py) ---------------------------------------------


def _candidates(cfg: Config, meta: Meta) -> list[int]:
    if cfg.compat:
        return list(range(cfg.nodes))
    return [i for i in range(cfg.nodes) if meta.alive[i]] or list(range(cfg.nodes))


def _next_node(candidates: list[int], after: int) -> int:
    later = [c for c in candidates if c > after]
    return (later or candidates)[0]


def _open(cfg: Config, meta: Meta, leader: int, epoch: int) -> Seg:
    """A new open segment led by ``leader``: its followers are the next live nodes after it,
    then, if too few are live, the next others — always R replicas, so that an acknowledgement
    always needs a majority of R (with fewer live nodes, appends wait rather than weaken)."""
    live = set(_candidates(cfg, meta))
    order = sorted(range(cfg.nodes), key=lambda c: (c not in live, c <= leader, c))
    followers = [c for c in order if c != leader][: cfg.replicas - 1]
    return Seg(leader, epoch, OPEN, None, (leader, *followers))


def majority(seg: Seg) -> int:
    """How many of the segment's replicas make a majority."""
    return len(seg.replicas) // 2 + 1


def apply_command(cfg: Config, meta: Meta, cmd: tuple) -> Meta:
    """Apply one committed command to a copy of the metadata: the new copy (unchanged where the
    command's condition fails)."""
    kind = cmd[0]
    segs = meta.segs
    if kind == "create":
        if segs:
            return meta
        leader = _candidates(cfg, meta)[0]
        return meta._replace(segs=(_open(cfg, meta, leader, 1),), cursor=1)
    if kind == "renew":
        return meta._replace(alive=_set(meta.alive, cmd[1], True))
    if kind == "rollover":
        _, seg, epoch, count = cmd
        if not segs:
            return meta
        cur = segs[-1]
        if not cfg.compat and (len(segs) != seg or cur.epoch != epoch):
            return meta
        nxt = _open(cfg, meta, _next_node(_candidates(cfg, meta), cur.leader), cur.epoch + 1)
        return meta._replace(segs=(*segs[:-1], cur._replace(state=SEALED, count=count), nxt))
    if kind == "takeover":
        node = cmd[1]
        meta = meta._replace(alive=_set(meta.alive, node, False))
        if segs and segs[-1].leader == node:
            cur = segs[-1]
            nxt = _open(cfg, meta, _next_node(_candidates(cfg, meta), node), cur.epoch + 1)
            meta = meta._replace(segs=(*segs[:-1], cur._replace(state=PENDING), nxt))
        return meta
    if kind == "report":
        _, seg, count = cmd
        if not 1 <= seg <= len(segs) or segs[seg - 1].state != PENDING:
            return meta
        return meta._replace(
            segs=_set(segs, seg - 1, segs[seg - 1]._replace(state=SEALED, count=count))
        )
    if kind == "advance":
        seg = cmd[1]
        if meta.cursor != seg or segs[seg - 1].state != SEALED:
            return meta
        return meta._replace(cursor=seg + 1)
    raise ValueError(f"unknown command {cmd!r}")


# --- helpers ------------------------------------------------------------------------------------


def connected(s: State, n: int) -> bool:
    """Node ``n`` can reach the metadata: it is up, not cut off, and a leader is up and not cut."""
    return (
        s.up[n]
        and not s.cut[n]
        and s.leader != NO_LEADER
        and s.up[s.leader]
        and not s.cut[s.leader]
    )


def _commit(cfg: Config, s: State, cmd: tuple) -> State:
    """Commit ``cmd``; the metadata leader applies it as it commits."""
    meta = apply_command(cfg, s.meta, cmd)
    return ApplyLog(cfg, s._replace(meta=meta, log=(*s.log, cmd)), s.leader)


def _acked(s: State) -> frozenset[int]:
    return frozenset(v for v, p in enumerate(s.puts, 1) if p is not None and p.phase == "acked")


def accepts_appends(cfg: Config, s: State, n: int) -> bool:
    """Node ``n`` would sequence an append now: the guard of ``BeginPut``."""
    if not s.up[n] or not s.view[n].segs:
        return False
    segs = s.view[n].segs
    cur = segs[-1]
    seg = len(segs)
    if cur.leader != n or cur.state != OPEN or seg in s.rolling[n]:
        return False
    stored = s.store[n][seg - 1]
    if stored.sealed or stored.lost:
        return False
    return cfg.compat or (len(stored.entries) < cfg.max_entries and s.lease[n] > 0)


def _holding(s: State, seg: Seg, g: int, v: int, offset: int) -> int:
    """How many of segment ``g``'s replicas hold value ``v`` at ``offset`` (lost copies hold
    nothing)."""
    count = 0
    for r in seg.replicas:
        copy = s.store[r][g - 1]
        if not copy.lost and len(copy.entries) > offset and copy.entries[offset] == v:
            count += 1
    return count


# --- actions ----------------------------------------------------------------------------------


def Create(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` registers the topic (REGISTER): a ``create`` command commits."""
    if s.meta.segs or s.view[n].segs or not connected(s, n):
        return None
    return _commit(cfg, s, ("create",))


def Elect(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` becomes metadata leader when there is none that can lead. It applies every
    committed command first (as it will every command it commits), and its takeover timers
    start from its election."""
    if not s.up[n] or s.cut[n] or s.leader == n:
        return None
    if s.leader != NO_LEADER and s.up[s.leader] and not s.cut[s.leader]:
        return None
    s = s._replace(leader=n)
    s = ApplyLog(cfg, s, n) or s
    return s._replace(silence=(0,) * cfg.nodes)


def CommitRenew(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n``'s renew commits."""
    r = s.renew[n]
    if r is None or r[0] != "sent" or not connected(s, n):
        return None
    s = s._replace(renew=_set(s.renew, n, ("committed", r[1])))
    return _commit(cfg, s, ("renew", n, s.incarnation[n]))


def ApplyLog(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` applies, in order, every command committed since it last applied.

    Its own renew grants its lease, from the renew's send time: ``hold`` minus the renew's
    age. The metadata leader restarts its takeover timer for a node whose renew it applies.
    A rollover or takeover that moves the segment it was rolling ends the rollover.
    """
    if not s.up[n] or s.cut[n] or s.applied[n] >= len(s.log):
        return None
    view, lease, renew, silence = s.view[n], s.lease[n], s.renew[n], s.silence
    for cmd in s.log[s.applied[n] :]:
        view = apply_command(cfg, view, cmd)
        if cmd[0] != "renew":
            continue
        if cmd[1] == n and cmd[2] == s.incarnation[n] and renew and renew[0] == "committed":
            lease, renew = max(lease, cfg.hold - renew[1]), None
        if s.leader == n:
            silence = _set(silence, cmd[1], 0)
    rolling = frozenset(g for g in s.rolling[n] if view.segs[g - 1].state == OPEN)
    return _trim(
        s._replace(
            view=_set(s.view, n, view),
            applied=_set(s.applied, n, len(s.log)),
            lease=_set(s.lease, n, lease),
            renew=_set(s.renew, n, renew),
            silence=silence,
            rolling=_set(s.rolling, n, rolling),
        )
    )


def _trim(s: State) -> State:
    """Drop the log prefix every node has applied (it can no longer matter)."""
    low = min(s.applied)
    if not low:
        return s
    return s._replace(log=s.log[low:], applied=tuple(a - low for a in s.applied))


def Tick(cfg: Config, s: State) -> State | None:
    """One tick of true time: each clock advances by its rate; leases run down, renew ages and
    the leader's takeover timers run up (both capped where they stop mattering). Every node
    that is up and has no renew under way sends one, as the code's renew timer does."""
    if s.now >= cfg.max_time:
        return None
    lease = tuple(max(0, left - r) for left, r in zip(s.lease, s.rate, strict=True))
    renew = tuple(
        ("sent", 0)
        if r is None and up
        else None
        if r is None
        else (r[0], min(cfg.hold, r[1] + rate))
        for r, rate, up in zip(s.renew, s.rate, s.up, strict=True)
    )
    silence = s.silence
    if s.leader != NO_LEADER:
        step = s.rate[s.leader]
        silence = tuple(
            0 if m == s.leader else min(cfg.wait, t + step) for m, t in enumerate(s.silence)
        )
    return s._replace(
        now=s.now + 1,
        lease=lease,
        renew=renew,
        silence=silence,
    )


def BeginPut(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` sequences the next value into its open segment, if the guard passes: the
    segment is open, led by ``n`` and not being rolled over or sealed here, and (not in compat
    mode) it has room and ``n``'s lease holds — checked atomically with the sequencing."""
    v = next((v for v, p in enumerate(s.puts, 1) if p is None), None)
    if v is None or not accepts_appends(cfg, s, n):
        return None
    seg = len(s.view[n].segs)
    stored = s.store[n][seg - 1]
    offset = len(stored.entries)
    row = _set(s.store[n], seg - 1, stored._replace(entries=(*stored.entries, v)))
    return s._replace(
        store=_set(s.store, n, row),
        puts=_set(s.puts, v - 1, Put("seq", n, seg, offset)),
        before=_set(s.before, v - 1, _acked(s)),
    )


def FinishPut(cfg: Config, s: State, n: int, v: int) -> State | None:
    """The append of ``v`` at node ``n`` is durable: the client is answered OK.

    In compat mode the node first counts it in memory and, at the limit, proposes a rollover
    with that count (unfenced: appends keep landing); a failed proposal is only logged.
    """
    p = s.puts[v - 1]
    if p is None or p.phase != "seq" or p.node != n or not s.up[n]:
        return None
    seg = s.view[n].segs[p.seg - 1]
    if not cfg.compat and _holding(s, seg, p.seg, v, p.offset) < majority(seg):
        return None
    s = s._replace(puts=_set(s.puts, v - 1, p._replace(phase="acked")))
    if cfg.compat:
        count = s.compat_count[n][p.seg - 1] + 1
        s = s._replace(
            compat_count=_set(s.compat_count, n, _set(s.compat_count[n], p.seg - 1, count))
        )
        if count >= cfg.max_entries and connected(s, n):
            s = _commit(cfg, s, ("rollover", p.seg, s.view[n].segs[p.seg - 1].epoch, count))
    return s


def SealForRollover(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` seals its full open segment locally before proposing the rollover (also a
    segment sealed here whose rollover did not commit before a crash)."""
    if cfg.compat or not s.up[n] or not s.view[n].segs:
        return None
    segs = s.view[n].segs
    seg = len(segs)
    if segs[-1].leader != n or segs[-1].state != OPEN or seg in s.rolling[n]:
        return None
    stored = s.store[n][seg - 1]
    if len(stored.entries) < cfg.max_entries and not stored.sealed:
        return None
    row = _set(s.store[n], seg - 1, stored._replace(sealed=True))
    return s._replace(store=_set(s.store, n, row), rolling=_set(s.rolling, n, s.rolling[n] | {seg}))


def ProposeRollover(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n``'s rollover commits: the count it sealed at (compat: its in-memory count, from
    the monitor, for whatever segment is current), once a majority of the replicas hold that
    many entries."""
    if not connected(s, n) or not s.view[n].segs:
        return None
    segs = s.view[n].segs
    if cfg.compat:
        seg = len(segs)
        count = s.compat_count[n][seg - 1]
        if segs[-1].leader != n or count < cfg.max_entries:
            return None
    else:
        seg = min(s.rolling[n], default=None)
        if seg is None or segs[seg - 1].state != OPEN:
            return None
        count = len(s.store[n][seg - 1].entries)
        if cfg.replicas > 1 and _high_water(s, segs[seg - 1], seg) < count:
            return None  # the count must be held by a majority before it commits
    cmd = ("rollover", seg, segs[seg - 1].epoch, count)
    if cmd in s.log[s.applied[n] :]:
        return None
    return _commit(cfg, s, cmd)


def Takeover(cfg: Config, s: State, m: int) -> State | None:
    """The metadata leader declares silent node ``m`` dead, once ``wait`` has passed on its
    clock since it applied ``m``'s last renew or was elected. The code's command names the
    renew counter the leader saw and is a no-op if a renew of ``m`` committed since; here the
    takeover commits only if no renew of ``m`` lies in the log beyond what the leader applied."""
    ldr = s.leader
    if cfg.compat or ldr in (NO_LEADER, m) or not connected(s, ldr):
        return None
    if s.silence[m] < cfg.wait:
        return None
    view = s.view[ldr]
    leads = bool(view.segs) and view.segs[-1].leader == m and view.segs[-1].state == OPEN
    if not view.alive[m] and not leads:
        return None
    unapplied = s.log[s.applied[ldr] :]
    if ("takeover", m) in unapplied or any(c[0] == "renew" and c[1] == m for c in unapplied):
        return None
    return _commit(cfg, s, ("takeover", m))


def ReportCount(cfg: Config, s: State, n: int, seg: int) -> State | None:
    """Node ``n``, back after its segment ``seg`` was taken over, seals it locally and reports
    the count it holds (with replicas, ``SealFromReplicas`` does this instead: the old leader's
    tail may be on its copy alone, and a count must be held by a majority)."""
    segs = s.view[n].segs
    if cfg.replicas > 1 or not connected(s, n) or not 1 <= seg <= len(segs):
        return None
    if segs[seg - 1].leader != n or segs[seg - 1].state != PENDING:
        return None
    stored = s.store[n][seg - 1]
    if stored.lost:
        return None
    cmd = ("report", seg, len(stored.entries))
    if cmd in s.log[s.applied[n] :]:
        return None
    row = _set(s.store[n], seg - 1, stored._replace(sealed=True))
    return _commit(cfg, s._replace(store=_set(s.store, n, row)), cmd)


def SealHere(cfg: Config, s: State, n: int, seg: int) -> State | None:
    """Node ``n`` seals locally a segment it led that the metadata shows sealed."""
    segs = s.view[n].segs
    if not s.up[n] or not 1 <= seg <= len(segs):
        return None
    stored = s.store[n][seg - 1]
    if segs[seg - 1].leader != n or segs[seg - 1].state != SEALED or stored.sealed or stored.lost:
        return None
    row = _set(s.store[n], seg - 1, stored._replace(sealed=True))
    return s._replace(store=_set(s.store, n, row))


def Replicate(cfg: Config, s: State, n: int, f: int) -> State | None:
    """Node ``n``, leading its open segment, sends follower ``f`` the next entry ``f`` lacks; a
    follower whose copy is sealed (fenced by ``SealFromReplicas``) or lost refuses it."""
    if cfg.compat or not _reachable(s, n, f) or not s.up[n] or n == f or not s.view[n].segs:
        return None
    segs = s.view[n].segs
    g = len(segs)
    seg = segs[-1]
    if seg.leader != n or seg.state != OPEN or f not in seg.replicas:
        return None
    mine, theirs = s.store[n][g - 1], s.store[f][g - 1]
    if mine.lost or theirs.sealed or theirs.lost or len(theirs.entries) >= len(mine.entries):
        return None
    if mine.entries[: len(theirs.entries)] != theirs.entries:
        return None
    copy = theirs._replace(entries=mine.entries[: len(theirs.entries) + 1])
    return s._replace(store=_set(s.store, f, _set(s.store[f], g - 1, copy)))


def Resign(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n``, back with its disk lost, still leads the open segment: it gives it up (a
    takeover of itself, so that ``SealFromReplicas`` seals it from the other copies) — else its
    renewals would keep the segment, which it can no longer append to, open for ever."""
    if cfg.compat or cfg.replicas < 2 or not connected(s, n) or not s.view[n].segs:
        return None
    segs = s.view[n].segs
    if segs[-1].leader != n or segs[-1].state != OPEN or not s.store[n][len(segs) - 1].lost:
        return None
    if ("takeover", n) in s.log[s.applied[n] :]:
        return None
    return _commit(cfg, s, ("takeover", n))


def SealFromReplicas(cfg: Config, s: State, g: int) -> State | None:
    """The metadata leader seals taken-over segment ``g`` without its old leader: once a
    majority of its replicas answer (up, reachable, copy not lost), each of those copies is
    sealed — no append lands on it after — the count is the longest of them, and each is
    brought to that copy before the count commits, so that the count is held by a majority
    (a tail held by one copy alone would be lost with that copy's disk)."""
    ldr = s.leader
    if cfg.compat or cfg.replicas < 2 or ldr == NO_LEADER or not connected(s, ldr):
        return None
    segs = s.view[ldr].segs
    if not 1 <= g <= len(segs) or segs[g - 1].state != PENDING:
        return None
    seg = segs[g - 1]
    answering = [r for r in seg.replicas if _reachable(s, ldr, r) and not s.store[r][g - 1].lost]
    if len(answering) < majority(seg):
        return None
    longest = max((s.store[r][g - 1].entries for r in answering), key=len)
    cmd = ("report", g, len(longest))
    if cmd in s.log[s.applied[ldr] :]:
        return None
    store = s.store
    for r in answering:
        store = _set(store, r, _set(store[r], g - 1, Stored(longest, True)))
    return _commit(cfg, s._replace(store=store), cmd)


def Repair(cfg: Config, s: State, n: int, g: int) -> State | None:
    """Node ``n``, a replica of segment ``g``, copies it from another replica: a sealed
    segment's first ``count`` entries (its copy short, lost, unsealed or longer — an old
    leader's unacknowledged tail), or an open segment's entries from its leader (its copy lost
    with its disk)."""
    if cfg.compat or cfg.replicas < 2 or not s.up[n]:
        return None
    segs = s.view[n].segs
    if not 1 <= g <= len(segs) or n not in segs[g - 1].replicas:
        return None
    seg = segs[g - 1]
    mine = s.store[n][g - 1]
    if seg.state == SEALED:
        if not mine.lost and mine.sealed and len(mine.entries) == seg.count:
            return None
        sources = [
            r
            for r in seg.replicas
            if r != n
            and _reachable(s, n, r)
            and not s.store[r][g - 1].lost
            and len(s.store[r][g - 1].entries) >= seg.count
        ]
        if not sources:
            return None
        copy = Stored(s.store[sources[0]][g - 1].entries[: seg.count], True)
    elif seg.state == OPEN and mine.lost and seg.leader != n:
        source = s.store[seg.leader][g - 1]
        if not _reachable(s, n, seg.leader) or source.lost:
            return None
        copy = Stored(source.entries, False)
    else:
        return None
    return s._replace(store=_set(s.store, n, _set(s.store[n], g - 1, copy)))


def _pop(cfg: Config, s: State, h: int, seg: int) -> tuple[str, int]:
    """What holder ``h`` answers a POP of ``seg``: ("entry", offset), ("end", 0), ("empty", 0)
    or ("unavailable", 0)."""
    view = s.view[h]
    if not 1 <= seg <= len(view.segs):
        return "unavailable", 0
    meta = view.segs[seg - 1]
    stored = s.store[h][seg - 1]
    whole = stored.sealed and len(stored.entries) == meta.count
    if cfg.replicas > 1 and meta.state == SEALED:
        if h not in meta.replicas or stored.lost or not whole:
            return "unavailable", 0
    elif meta.leader != h or stored.lost:
        return "unavailable", 0
    where = _position(cfg, s, h, meta, seg)
    if where is None:
        return "unavailable", 0
    slot_seg, slot_off = where
    if slot_seg > seg:
        return "end", 0
    position = slot_off if slot_seg == seg else 0
    if cfg.compat or meta.state == OPEN:
        available = _high_water(s, meta, seg) if cfg.replicas > 1 else len(stored.entries)
    elif meta.state == SEALED:
        available = meta.count
    else:
        available = position
    if position < available:
        return "entry", position
    if cfg.compat:
        return "empty", 0
    if meta.state == PENDING:
        return "unavailable", 0
    if meta.state == SEALED:
        return "end", 0
    if seg in s.rolling[h] or s.lease[h] <= 0 or stored.sealed:
        return "unavailable", 0
    if position < len(stored.entries):
        return "unavailable", 0  # entries not yet on a majority: it cannot tell
    return "empty", 0


def _reachable(s: State, n: int, h: int) -> bool:
    return h == n or (s.up[h] and not s.cut[h] and not s.cut[n])


def _high_water(s: State, meta: Seg, g: int) -> int:
    """How many entries of open segment ``g`` a majority of its replicas hold: only those may
    be read (an entry on fewer copies is not acknowledged and could still be lost)."""
    lengths = sorted(
        (len(s.store[r][g - 1].entries) for r in meta.replicas if not s.store[r][g - 1].lost),
        reverse=True,
    )
    return lengths[majority(meta) - 1] if len(lengths) >= majority(meta) else 0


def _position(cfg: Config, s: State, h: int, meta: Seg, g: int) -> tuple[int, int] | None:
    """The read position holder ``h`` serves segment ``g`` from: its own (R = 1), or the
    furthest of those a majority of the replicas it reaches hold (None: no majority)."""
    if cfg.replicas < 2:
        return s.slot[h]
    seen = [r for r in meta.replicas if _reachable(s, h, r) and not s.store[r][g - 1].lost]
    if len(seen) < majority(meta):
        return None
    return max(s.slot[r] for r in seen)


def _hand_out(cfg: Config, s: State, h: int, seg: int, offset: int) -> State:
    """Holder ``h`` hands out the entry at ``offset``: the next position is written first — to
    ``h`` (R = 1), or to every replica it reaches (a majority, or ``_position`` said no)."""
    v = s.store[h][seg - 1].entries[offset]
    slot = s.slot
    if cfg.replicas < 2:
        slot = _set(slot, h, (seg, offset + 1))
    else:
        meta = s.view[h].segs[seg - 1]
        for r in meta.replicas:
            if _reachable(s, h, r) and not s.store[r][seg - 1].lost:
                slot = _set(slot, r, max(slot[r], (seg, offset + 1)))
    return s._replace(slot=slot, delivered=(*s.delivered, v))


def Get(cfg: Config, s: State, n: int) -> State | None:
    """A client's GET at node ``n``: the holder of the cursor's segment hands out the next
    entry, or answers END (``n`` then proposes ``advance_cursor``), EMPTY, or unavailable
    (no step). In compat mode ``n`` follows its own in-memory cursor instead."""
    if not s.up[n] or not s.view[n].segs:
        return None
    segs = s.view[n].segs
    if cfg.compat:
        seg, got = s.compat_cursor[n]
        while seg <= len(segs):
            meta = segs[seg - 1]
            if meta.state == SEALED and got >= meta.count:
                seg, got = seg + 1, 0
                continue
            if not _reachable(s, n, meta.leader):
                return None
            answer, offset = _pop(cfg, s, meta.leader, seg)
            if answer == "entry":
                s = _hand_out(cfg, s, meta.leader, seg, offset)
                return s._replace(compat_cursor=_set(s.compat_cursor, n, (seg, got + 1)))
            if answer == "empty" and meta.state == SEALED:
                seg, got = seg + 1, 0
                continue
            if answer == "empty":
                s = s._replace(empty_unread=_acked(s) - set(s.delivered))
                return s._replace(compat_cursor=_set(s.compat_cursor, n, (seg, got)))
            return None
        return None
    seg = s.view[n].cursor
    meta = segs[seg - 1]
    holders = [meta.leader]
    if cfg.replicas > 1 and meta.state == SEALED:
        holders += [r for r in meta.replicas if r != meta.leader]
    for holder in holders:
        if _reachable(s, n, holder):
            answer, offset = _pop(cfg, s, holder, seg)
            if answer != "unavailable":
                break
    else:
        return None
    if answer == "entry":
        return _hand_out(cfg, s, holder, seg, offset)
    if answer == "empty":
        return s._replace(empty_unread=_acked(s) - set(s.delivered))
    if answer == "end" and connected(s, n) and ("advance", seg) not in s.log[s.applied[n] :]:
        return _commit(cfg, s, ("advance", seg))
    return None


def Crash(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` is killed: what it keeps in memory is gone (lease, pending renew, rollovers
    under way, compat counts and cursors); its store, cursor file and metadata copy remain;
    PUTs it had not answered end with unknown outcome."""
    if not s.up[n] or s.crashes >= cfg.max_crashes:
        return None
    return _down(cfg, s._replace(crashes=s.crashes + 1), n)


def Wipe(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` is killed and its disk lost: it comes back with every copy it held marked
    lost and no read position (its metadata copy is kept: see the module's note)."""
    if not s.up[n] or s.wipes >= cfg.max_wipes:
        return None
    s = _down(cfg, s._replace(wipes=s.wipes + 1), n)
    lost = (Stored((), False, True),) * cfg.max_segments
    return s._replace(store=_set(s.store, n, lost), slot=_set(s.slot, n, (0, 0)))


def _down(cfg: Config, s: State, n: int) -> State:
    puts = tuple(
        p._replace(phase="info") if p is not None and p.phase == "seq" and p.node == n else p
        for p in s.puts
    )
    return s._replace(
        up=_set(s.up, n, False),
        lease=_set(s.lease, n, 0),
        renew=_set(s.renew, n, None),
        incarnation=_set(s.incarnation, n, s.incarnation[n] + 1),
        rolling=_set(s.rolling, n, frozenset()),
        compat_count=_set(s.compat_count, n, (0,) * cfg.max_segments),
        compat_cursor=_set(s.compat_cursor, n, (1, 0)),
        puts=puts,
    )


def Restart(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` starts again from its durable state."""
    if s.up[n]:
        return None
    return s._replace(up=_set(s.up, n, True))


def Isolate(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n`` is cut off from the metadata and from the other nodes (clients still reach
    it)."""
    if s.cut[n] or s.cuts >= cfg.max_cuts:
        return None
    return s._replace(cut=_set(s.cut, n, True), cuts=s.cuts + 1)


def Heal(cfg: Config, s: State, n: int) -> State | None:
    """Node ``n``'s partition heals."""
    if not s.cut[n]:
        return None
    return s._replace(cut=_set(s.cut, n, False))


FAULTS = frozenset({"Crash", "Isolate", "Wipe"})
"""The actions that inject faults; the liveness check runs without them."""


def successors(cfg: Config, s: State):
    """Every (action label, next state) from ``s``, in a fixed order."""
    nodes = range(cfg.nodes)
    per_node = (
        Create,
        Elect,
        CommitRenew,
        ApplyLog,
        BeginPut,
        SealForRollover,
        ProposeRollover,
        Takeover,
        Resign,
        Get,
        Crash,
        Wipe,
        Restart,
        Isolate,
        Heal,
    )
    nxt = Tick(cfg, s)
    if nxt is not None:
        yield ("Tick", ()), nxt
    for action in per_node:
        for n in nodes:
            nxt = action(cfg, s, n)
            if nxt is not None:
                yield (action.__name__, (n,)), nxt
    for v, p in enumerate(s.puts, 1):
        if p is not None and p.phase == "seq":
            nxt = FinishPut(cfg, s, p.node, v)
            if nxt is not None:
                yield ("FinishPut", (p.node, v)), nxt
    for n in nodes:
        for seg in range(1, len(s.view[n].segs) + 1):
            for action in (ReportCount, SealHere, Repair):
                nxt = action(cfg, s, n, seg)
                if nxt is not None:
                    yield (action.__name__, (n, seg)), nxt
    if cfg.replicas > 1:
        for n in nodes:
            for f in nodes:
                nxt = Replicate(cfg, s, n, f)
                if nxt is not None:
                    yield ("Replicate", (n, f)), nxt
        for seg in range(1, len(s.meta.segs) + 1):
            nxt = SealFromReplicas(cfg, s, seg)
            if nxt is not None:
                yield ("SealFromReplicas", (seg,)), nxt


def within_bounds(cfg: Config, s: State) -> bool:
    """The state constraint: no more segments than ``max_segments``."""
    return len(s.meta.segs) <= cfg.max_segments


# --- invariants ---------------------------------------------------------------------------------


def SingleWriter(cfg: Config, s: State) -> str | None:
    """At most one node accepts appends for the topic at any instant."""
    writers = [n for n in range(cfg.nodes) if accepts_appends(cfg, s, n)]
    if len(writers) > 1:
        return "nodes " + " and ".join(str(n + 1) for n in writers) + " both accept appends"
    return None


def AckedReadable(cfg: Config, s: State) -> str | None:
    """Every acknowledged value is still stored where it was acknowledged, by that segment's
    leader, and is either delivered or still ahead of the cursor within any sealed count."""
    delivered = set(s.delivered)
    for v, p in enumerate(s.puts, 1):
        if p is None or p.phase != "acked":
            continue
        seg = s.meta.segs[p.seg - 1]
        where = (
            f"value {v} (acknowledged at segment {p.seg} offset {p.offset} by node {p.node + 1})"
        )
        if seg.leader != p.node:
            return f"{where} was acknowledged by a node that does not lead the segment"
        if not _holding(s, seg, p.seg, v, p.offset):
            return f"{where} is no longer stored"
        if v in delivered:
            continue
        if seg.state == SEALED and p.offset >= seg.count:
            return f"{where} lies beyond the segment's sealed count {seg.count}: never readable"
        slot_seg, slot_off = max(s.slot[r] for r in seg.replicas)
        if s.meta.cursor > p.seg or slot_seg > p.seg or (slot_seg == p.seg and slot_off > p.offset):
            return f"{where} was passed by the cursor without being delivered"
    return None


def ReadOnceInOrder(cfg: Config, s: State) -> str | None:
    """No value is delivered twice, and a value acknowledged before another was sequenced is
    delivered before it."""
    seen: set[int] = set()
    for v in s.delivered:
        if v in seen:
            return f"value {v} was delivered twice"
        missing = s.before[v - 1] - seen
        if missing:
            return (
                f"value {v} was delivered before value {min(missing)}, which was acknowledged "
                f"before {v} was written"
            )
        seen.add(v)
    return None


def SealedCountExact(cfg: Config, s: State) -> str | None:
    """A sealed segment's count is the number of entries its leader stores for it; with
    replicas, the count is held whole by some copy, and no two copies differ below it."""
    for i, seg in enumerate(s.meta.segs, 1):
        if seg.state != SEALED:
            continue
        if cfg.replicas < 2:
            stored = len(s.store[seg.leader][i - 1].entries)
            if stored != seg.count:
                node = seg.leader + 1
                return f"segment {i} is sealed at count {seg.count}; node {node} stores {stored}"
            continue
        copies = [s.store[r][i - 1].entries for r in seg.replicas if not s.store[r][i - 1].lost]
        if not any(len(c) >= seg.count for c in copies):
            return f"segment {i} is sealed at count {seg.count}, which no copy holds whole"
        for a, b in itertools.combinations(copies, 2):
            k = min(len(a), len(b), seg.count)
            if a[:k] != b[:k]:
                return f"the copies of segment {i} differ below its sealed count {seg.count}"
    return None


def NoLostOnEmpty(cfg: Config, s: State) -> str | None:
    """EMPTY is answered only when no acknowledged value remains unread."""
    if s.empty_unread:
        return f"EMPTY was answered while value {min(s.empty_unread)} was acknowledged and unread"
    return None


def CursorBounds(cfg: Config, s: State) -> str | None:
    """The cursor names an existing segment and each holder's read position lies within what
    it stores and within a sealed count."""
    if s.meta.segs and not 1 <= s.meta.cursor <= len(s.meta.segs):
        return f"the cursor names segment {s.meta.cursor}, which does not exist"
    for n, (seg, off) in enumerate(s.slot):
        if seg == 0:
            continue
        meta = s.meta.segs[seg - 1]
        held = [s.store[r][seg - 1] for r in (meta.replicas if cfg.replicas > 1 else (n,))]
        longest = max((len(c.entries) for c in held if not c.lost), default=off)
        if off > longest or (meta.state == SEALED and off > meta.count):
            return f"node {n + 1}'s read position {off} in segment {seg} is out of bounds"
    return None


INVARIANTS = (
    SingleWriter,
    AckedReadable,
    ReadOnceInOrder,
    SealedCountExact,
    NoLostOnEmpty,
    CursorBounds,
)
"""The module's invariants, checked in every state."""


def all_read(s: State) -> bool:
    """The liveness goal: every acknowledged value has been delivered."""
    return _acked(s) <= set(s.delivered)


def healed(s: State) -> bool:
    """No fault is in effect: every node up and connected."""
    return all(s.up) and not any(s.cut)


_REPLICATED = Config(
    nodes=3, values=1, max_time=0, rates=(1,), max_cuts=0, max_crashes=0, replicas=3, max_wipes=1
)

CONFIGS = {
    "safe": Config(),
    "compat": Config(values=3, max_entries=2, max_segments=3, max_crashes=1, compat=True),
    "drift": Config(rates=(1, 4)),
    "replicated": _REPLICATED,
    "replicated-r1": replace(_REPLICATED, replicas=1),
}
"""The named configurations: the code's design, ``--compat walrus``, a clock drift beyond
``rho`` (one clock at a quarter of another's speed), and replicated segments (issue 16) on three
nodes with one disk loss, at R = 3 and at R = 1 (where the disk loss loses an acknowledged
value). The replicated ones let no time pass (``max_time=0``: the wiped leader's own
``Resign`` is then the only takeover) to stay within minutes; with time they grow past
millions of states."""
