---------------------------- MODULE WalrusLease ----------------------------
(***************************************************************************)
(* The fenced data plane of the Walrus node in this repository (DESIGN    *)
(* section 3): one topic, a few nodes, metadata replicated as a committed *)
(* log that each node applies at its own pace, per-node clocks whose      *)
(* rates differ, time-bounded leases with takeover, rollover with a local *)
(* seal, the shared cursor, crashes and partitions; and (issue 16)       *)
(* segments replicated on Replicas nodes with majority acknowledgement,   *)
(* sealing from the replicas after a takeover, repair, and disk loss.     *)
(* With Replicas = 1 every replication step is disabled or the identity.  *)
(*                                                                         *)
(* spec/model.py is the same state machine in Python, one function per    *)
(* action below with the same name; spec/explore.py checks it.  Nodes are *)
(* 1..Nodes here and 0..Nodes-1 there; an unknown count is -1 here and    *)
(* None there; "none" phases here are None there.                         *)
(***************************************************************************)
EXTENDS Naturals, Integers, Sequences, FiniteSets

CONSTANTS
    Nodes,        \* how many nodes
    Values,       \* how many distinct values clients put
    MaxEntries,   \* entries per segment before a rollover
    MaxSegments,  \* state constraint: segments in the metadata
    MaxTime,      \* ticks of true time explored
    Rates,        \* clock units a node's clock advances per tick (one rate per node, fixed)
    Hold,         \* lease held after a renew's send time, on the holder's clock: L(1-rho)
    Wait,         \* takeover wait on the metadata leader's clock: L(1+rho)
    MaxCrashes,   \* fault budgets
    MaxCuts,
    Compat,       \* TRUE: --compat walrus (no lease expiry, unconditional rollover, ...)
    Replicas,     \* copies of each segment (the leader's included)
    MaxWipes      \* disk losses

Node  == 1..Nodes
Value == 1..Values
SegId == 1..MaxSegments
NoLeader == 0
OPEN    == "open"
SEALED  == "sealed"
PENDING == "sealed-pending-count"
NoRenew == [phase |-> "none", age |-> 0]
NoPut   == [phase |-> "none", node |-> 0, seg |-> 0, offset |-> 0]

Min(S) == CHOOSE x \in S : \A y \in S : x <= y
Max(S) == CHOOSE x \in S : \A y \in S : x >= y
Max2(a, b) == IF a >= b THEN a ELSE b
Range(s) == {s[i] : i \in DOMAIN s}
SetAt(s, i, x) == [s EXCEPT ![i] = x]

VARIABLES
    now,          \* true time, in ticks
    rate,         \* rate[n]: node n's clock units per tick
    up, cut,      \* up[n]: running; cut[n]: partitioned from metadata and peers
    crashes, cuts, wipes,
    leader,       \* the metadata (Raft) leader, or NoLeader
    silence,      \* silence[m]: leader-clock units since it applied m's renew or was elected
    lease,        \* lease[n]: units of lease left on n's clock
    renew,        \* renew[n]: the renew under way: phase none | sent | committed, its age
    incarnation,  \* incarnation[n]: restarts of n (tells its renews apart)
    meta,         \* the committed metadata
    log,          \* committed commands not yet applied by every node
    applied,      \* applied[n]: how many commands of log node n has applied
    view,         \* view[n]: node n's copy of the metadata
    store,        \* store[n][g]: node n's copy of segment g: [entries, sealed, lost]
    slot,         \* slot[n]: node n's durable read position <<segment, offset>>
    rolling,      \* rolling[n]: segments node n has sealed for a rollover not yet applied
    ccount,       \* ccount[n][g]: compat mode's in-memory count
    ccursor,      \* ccursor[n]: compat mode's in-memory cursor <<segment, delivered>>
    puts,         \* puts[v]: the PUT of v: phase none | seq | acked | info, where
    before,       \* before[v]: the values acknowledged when v was sequenced
    delivered,    \* the values GETs returned, in order
    emptyUnread   \* the acknowledged unread values when EMPTY was last answered

vars == <<now, rate, up, cut, crashes, cuts, wipes, leader, silence, lease, renew, incarnation,
          meta, log, applied, view, store, slot, rolling, ccount, ccursor, puts, before,
          delivered, emptyUnread>>

(***************************************************************************)
(* The metadata machine (walrus/metastate.py).                            *)
(***************************************************************************)
Candidates(m) ==
    IF Compat THEN Node
    ELSE IF \E n \in Node : m.alive[n] THEN {n \in Node : m.alive[n]} ELSE Node

NextNode(cands, after) ==
    IF \E c \in cands : c > after THEN Min({c \in cands : c > after}) ELSE Min(cands)

(* A new open segment: its followers are the next live nodes after its leader, then the *)
(* next others if too few are live: always Replicas copies (appends wait, never weaken). *)
RECURSIVE Followers(_, _, _)
Followers(cands, after, k) ==
    IF k = 0 \/ cands = {} THEN <<>>
    ELSE LET nx == NextNode(cands, after) IN <<nx>> \o Followers(cands \ {nx}, nx, k - 1)

OpenSeg(m, l, e) ==
    LET live == Candidates(m) \ {l}
        fs   == Followers(live, l, Replicas - 1)
        rest == Followers((Node \ live) \ {l}, l, Replicas - 1 - Len(fs))
    IN [leader |-> l, epoch |-> e, state |-> OPEN, count |-> -1, replicas |-> <<l>> \o fs \o rest]

Apply(m, cmd) ==
    LET segs == m.segs
        cur  == segs[Len(segs)]
    IN CASE cmd[1] = "create" ->
              IF segs # <<>> THEN m
              ELSE [m EXCEPT !.segs = <<OpenSeg(m, Min(Candidates(m)), 1)>>, !.cursor = 1]
         [] cmd[1] = "renew" ->
              [m EXCEPT !.alive[cmd[2]] = TRUE]
         [] cmd[1] = "rollover" ->
              IF segs = <<>> \/ (~Compat /\ (Len(segs) # cmd[2] \/ cur.epoch # cmd[3])) THEN m
              ELSE [m EXCEPT !.segs =
                       Append(SetAt(segs, Len(segs), [cur EXCEPT !.state = SEALED, !.count = cmd[4]]),
                              OpenSeg(m, NextNode(Candidates(m), cur.leader), cur.epoch + 1))]
         [] cmd[1] = "takeover" ->
              LET m2 == [m EXCEPT !.alive[cmd[2]] = FALSE]
              IN IF segs # <<>> /\ cur.leader = cmd[2]
                 THEN [m2 EXCEPT !.segs =
                          Append(SetAt(segs, Len(segs), [cur EXCEPT !.state = PENDING]),
                                 OpenSeg(m2, NextNode(Candidates(m2), cmd[2]), cur.epoch + 1))]
                 ELSE m2
         [] cmd[1] = "report" ->
              IF cmd[2] \in 1..Len(segs) /\ segs[cmd[2]].state = PENDING
              THEN [m EXCEPT !.segs[cmd[2]] = [segs[cmd[2]] EXCEPT !.state = SEALED,
                                                                   !.count = cmd[3]]]
              ELSE m
         [] cmd[1] = "advance" ->
              IF m.cursor = cmd[2] /\ segs[cmd[2]].state = SEALED
              THEN [m EXCEPT !.cursor = cmd[2] + 1] ELSE m

RECURSIVE ApplyAll(_, _)
ApplyAll(m, cmds) == IF cmds = <<>> THEN m ELSE ApplyAll(Apply(m, Head(cmds)), Tail(cmds))

(***************************************************************************)
(* Helpers.                                                               *)
(***************************************************************************)
Connected(n) ==
    up[n] /\ ~cut[n] /\ leader # NoLeader /\ up[leader] /\ ~cut[leader]

Acked == {v \in Value : puts[v].phase = "acked"}

Unapplied(n) == SubSeq(log, applied[n] + 1, Len(log))

CurSeg(n) == Len(view[n].segs)

AcceptsAppends(n) ==
    /\ up[n]
    /\ view[n].segs # <<>>
    /\ LET g == CurSeg(n) IN
         /\ view[n].segs[g].leader = n
         /\ view[n].segs[g].state = OPEN
         /\ g \notin rolling[n]
         /\ ~store[n][g].sealed /\ ~store[n][g].lost
         /\ Compat \/ (Len(store[n][g].entries) < MaxEntries /\ lease[n] > 0)

Majority(sm) == Len(sm.replicas) \div 2 + 1

(* The replicas of sm whose copy of segment g is not lost. *)
Kept(sm, g) == {r \in Range(sm.replicas) : ~store[r][g].lost}

(* How many replicas of segment g hold value v at offset off. *)
Holding(sm, g, v, off) ==
    Cardinality({r \in Kept(sm, g) : Len(store[r][g].entries) > off
                                     /\ store[r][g].entries[off + 1] = v})

(* How many entries of open segment g a majority of its replicas hold: only those are read. *)
HighWater(sm, g) ==
    LET ks == {k \in 0..MaxEntries :
                 Cardinality({r \in Kept(sm, g) : Len(store[r][g].entries) >= k}) >= Majority(sm)}
    IN IF ks = {} THEN 0 ELSE Max(ks)

Later(a, b) == a[1] > b[1] \/ (a[1] = b[1] /\ a[2] >= b[2])
MaxSlot(S) == CHOOSE x \in S : \A y \in S : Later(x, y)

(* What node n's copy becomes when it applies every command of lg past applied[n], *)
(* given the renews rn under way: its own renew grants its lease from its send time. *)
Caught(n, lg, rn) ==
    LET cmds  == SubSeq(lg, applied[n] + 1, Len(lg))
        v     == ApplyAll(view[n], cmds)
        mine  == \E i \in DOMAIN cmds : cmds[i][1] = "renew" /\ cmds[i][2] = n
                                         /\ cmds[i][3] = incarnation[n]
        grant == mine /\ rn[n].phase = "committed"
    IN [view    |-> v,
        lease   |-> IF grant THEN Max2(lease[n], Hold - rn[n].age) ELSE lease[n],
        renew   |-> IF grant THEN NoRenew ELSE rn[n],
        renewed |-> {cmds[i][2] : i \in {j \in DOMAIN cmds : cmds[j][1] = "renew"}},
        rolling |-> {g \in rolling[n] : v.segs[g].state = OPEN}]

(* Node n applies lg; the prefix every node has applied is dropped. *)
CatchUp(n, lg, rn) ==
    LET c   == Caught(n, lg, rn)
        ap  == [applied EXCEPT ![n] = Len(lg)]
        low == Min({ap[m] : m \in Node})
    IN /\ view' = [view EXCEPT ![n] = c.view]
       /\ applied' = [m \in Node |-> ap[m] - low]
       /\ log' = SubSeq(lg, low + 1, Len(lg))
       /\ lease' = [lease EXCEPT ![n] = c.lease]
       /\ renew' = [rn EXCEPT ![n] = c.renew]
       /\ silence' = IF leader = n
                     THEN [m \in Node |-> IF m \in c.renewed THEN 0 ELSE silence[m]]
                     ELSE silence
       /\ rolling' = [rolling EXCEPT ![n] = c.rolling]

(* cmd commits; the leader applies it as it commits. rn: renews after the action's own change. *)
Commit(cmd, rn) ==
    /\ meta' = Apply(meta, cmd)
    /\ CatchUp(leader, Append(log, cmd), rn)

(***************************************************************************)
(* Initial states.                                                        *)
(***************************************************************************)
EmptyMeta == [segs |-> <<>>, cursor |-> 0, alive |-> [n \in Node |-> TRUE]]

Init ==
    /\ now = 0
    /\ rate \in [Node -> Rates]
    /\ up = [n \in Node |-> TRUE]
    /\ cut = [n \in Node |-> FALSE]
    /\ crashes = 0 /\ cuts = 0 /\ wipes = 0
    /\ leader = NoLeader
    /\ silence = [n \in Node |-> 0]
    /\ lease = [n \in Node |-> 0]
    /\ renew = [n \in Node |-> [phase |-> "sent", age |-> 0]]
    /\ incarnation = [n \in Node |-> 0]
    /\ meta = EmptyMeta
    /\ log = <<>>
    /\ applied = [n \in Node |-> 0]
    /\ view = [n \in Node |-> EmptyMeta]
    /\ store = [n \in Node |->
                 [g \in SegId |-> [entries |-> <<>>, sealed |-> FALSE, lost |-> FALSE]]]
    /\ slot = [n \in Node |-> <<0, 0>>]
    /\ rolling = [n \in Node |-> {}]
    /\ ccount = [n \in Node |-> [g \in SegId |-> 0]]
    /\ ccursor = [n \in Node |-> <<1, 0>>]
    /\ puts = [v \in Value |-> NoPut]
    /\ before = [v \in Value |-> {}]
    /\ delivered = <<>>
    /\ emptyUnread = {}

(***************************************************************************)
(* Actions.                                                               *)
(***************************************************************************)
Create(n) ==
    /\ meta.segs = <<>> /\ view[n].segs = <<>> /\ Connected(n)
    /\ Commit(<<"create">>, renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, slot,
                   ccount, ccursor, puts, before, delivered, emptyUnread>>

Elect(n) ==
    /\ up[n] /\ ~cut[n] /\ leader # n
    /\ leader = NoLeader \/ ~up[leader] \/ cut[leader]
    /\ LET c   == Caught(n, log, renew)
           ap  == [applied EXCEPT ![n] = Len(log)]
           low == Min({ap[m] : m \in Node})
       IN /\ view' = [view EXCEPT ![n] = c.view]
          /\ applied' = [m \in Node |-> ap[m] - low]
          /\ log' = SubSeq(log, low + 1, Len(log))
          /\ lease' = [lease EXCEPT ![n] = c.lease]
          /\ renew' = [renew EXCEPT ![n] = c.renew]
          /\ rolling' = [rolling EXCEPT ![n] = c.rolling]
    /\ leader' = n
    /\ silence' = [m \in Node |-> 0]
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, incarnation, meta, store, slot, ccount,
                   ccursor, puts, before, delivered, emptyUnread>>

CommitRenew(n) ==
    /\ renew[n].phase = "sent" /\ Connected(n)
    /\ Commit(<<"renew", n, incarnation[n]>>,
              [renew EXCEPT ![n] = [phase |-> "committed", age |-> renew[n].age]])
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, slot,
                   ccount, ccursor, puts, before, delivered, emptyUnread>>

ApplyLog(n) ==
    /\ up[n] /\ ~cut[n] /\ applied[n] < Len(log)
    /\ CatchUp(n, log, renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, meta, store, slot,
                   ccount, ccursor, puts, before, delivered, emptyUnread>>

Tick ==
    /\ now < MaxTime
    /\ now' = now + 1
    /\ lease' = [n \in Node |-> Max2(0, lease[n] - rate[n])]
    /\ renew' = [n \in Node |->
                   IF renew[n].phase = "none"
                   THEN IF up[n] THEN [phase |-> "sent", age |-> 0] ELSE NoRenew
                   ELSE [renew[n] EXCEPT !.age = IF @ + rate[n] < Hold THEN @ + rate[n] ELSE Hold]]
    /\ silence' = IF leader = NoLeader THEN silence
                  ELSE [m \in Node |-> IF m = leader THEN 0
                                       ELSE IF silence[m] + rate[leader] < Wait
                                       THEN silence[m] + rate[leader] ELSE Wait]
    /\ UNCHANGED <<rate, up, cut, crashes, cuts, wipes, leader, incarnation, meta, log, applied, view,
                   store, slot, rolling, ccount, ccursor, puts, before, delivered, emptyUnread>>

NextValue == Min({v \in Value : puts[v].phase = "none"})

BeginPut(n) ==
    /\ \E v \in Value : puts[v].phase = "none"
    /\ AcceptsAppends(n)
    /\ LET g == CurSeg(n)
           v == NextValue
       IN /\ store' = [store EXCEPT ![n][g].entries = Append(@, v)]
          /\ puts' = [puts EXCEPT ![v] = [phase |-> "seq", node |-> n, seg |-> g,
                                          offset |-> Len(store[n][g].entries)]]
          /\ before' = [before EXCEPT ![v] = Acked]
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, silence, lease, renew, incarnation,
                   meta, log, applied, view, slot, rolling, ccount, ccursor, delivered,
                   emptyUnread>>

FinishPut(n, v) ==
    /\ puts[v].phase = "seq" /\ puts[v].node = n /\ up[n]
    /\ LET sm == view[n].segs[puts[v].seg]
       IN Compat \/ Holding(sm, puts[v].seg, v, puts[v].offset) >= Majority(sm)
    /\ puts' = [puts EXCEPT ![v].phase = "acked"]
    /\ IF Compat
       THEN LET g     == puts[v].seg
                count == ccount[n][g] + 1
            IN /\ ccount' = [ccount EXCEPT ![n][g] = count]
               /\ IF count >= MaxEntries /\ Connected(n)
                  THEN Commit(<<"rollover", g, view[n].segs[g].epoch, count>>, renew)
                  ELSE UNCHANGED <<meta, log, applied, view, lease, renew, silence, rolling>>
       ELSE UNCHANGED <<ccount, meta, log, applied, view, lease, renew, silence, rolling>>
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, slot, ccursor,
                   before, delivered, emptyUnread>>

SealForRollover(n) ==
    /\ ~Compat /\ up[n] /\ view[n].segs # <<>>
    /\ LET g == CurSeg(n) IN
         /\ view[n].segs[g].leader = n /\ view[n].segs[g].state = OPEN /\ g \notin rolling[n]
         /\ Len(store[n][g].entries) >= MaxEntries \/ store[n][g].sealed
         /\ store' = [store EXCEPT ![n][g].sealed = TRUE]
         /\ rolling' = [rolling EXCEPT ![n] = @ \cup {g}]
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, silence, lease, renew, incarnation,
                   meta, log, applied, view, slot, ccount, ccursor, puts, before, delivered,
                   emptyUnread>>

RolloverCmd(n) ==
    IF Compat
    THEN <<"rollover", CurSeg(n), view[n].segs[CurSeg(n)].epoch, ccount[n][CurSeg(n)]>>
    ELSE LET g == Min(rolling[n])
         IN <<"rollover", g, view[n].segs[g].epoch, Len(store[n][g].entries)>>

ProposeRollover(n) ==
    /\ Connected(n) /\ view[n].segs # <<>>
    /\ IF Compat
       THEN view[n].segs[CurSeg(n)].leader = n /\ ccount[n][CurSeg(n)] >= MaxEntries
       ELSE /\ rolling[n] # {} /\ view[n].segs[Min(rolling[n])].state = OPEN
            /\ Replicas > 1 =>
                 HighWater(view[n].segs[Min(rolling[n])], Min(rolling[n])) >= RolloverCmd(n)[4]
    /\ RolloverCmd(n) \notin Range(Unapplied(n))
    /\ Commit(RolloverCmd(n), renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, slot, ccount,
                   ccursor, puts, before, delivered, emptyUnread>>

(* The code's takeover names the renew counter the leader saw, and is a no-op if a renew *)
(* of m committed since; here it commits only if no renew of m is still unapplied by it.  *)
Takeover(m) ==
    /\ ~Compat /\ leader # NoLeader /\ leader # m /\ Connected(leader)
    /\ silence[m] >= Wait
    /\ LET v == view[leader] IN
         v.alive[m] \/ (v.segs # <<>> /\ v.segs[Len(v.segs)].leader = m
                                      /\ v.segs[Len(v.segs)].state = OPEN)
    /\ <<"takeover", m>> \notin Range(Unapplied(leader))
    /\ ~\E i \in DOMAIN Unapplied(leader) : Unapplied(leader)[i][1] = "renew"
                                            /\ Unapplied(leader)[i][2] = m
    /\ Commit(<<"takeover", m>>, renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, slot, ccount,
                   ccursor, puts, before, delivered, emptyUnread>>

(* With replicas, SealFromReplicas does this instead: the old leader's tail may be on its *)
(* copy alone, and a sealed count must be held by a majority.                             *)
ReportCount(n, g) ==
    /\ Replicas = 1 /\ Connected(n) /\ g \in 1..Len(view[n].segs)
    /\ view[n].segs[g].leader = n /\ view[n].segs[g].state = PENDING /\ ~store[n][g].lost
    /\ <<"report", g, Len(store[n][g].entries)>> \notin Range(Unapplied(n))
    /\ store' = [store EXCEPT ![n][g].sealed = TRUE]
    /\ Commit(<<"report", g, Len(store[n][g].entries)>>, renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, slot, ccount,
                   ccursor, puts, before, delivered, emptyUnread>>

SealHere(n, g) ==
    /\ up[n] /\ g \in 1..Len(view[n].segs)
    /\ view[n].segs[g].leader = n /\ view[n].segs[g].state = SEALED
    /\ ~store[n][g].sealed /\ ~store[n][g].lost
    /\ store' = [store EXCEPT ![n][g].sealed = TRUE]
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, silence, lease, renew, incarnation,
                   meta, log, applied, view, slot, rolling, ccount, ccursor, puts, before,
                   delivered, emptyUnread>>

Reachable(n, h) == h = n \/ (up[h] /\ ~cut[h] /\ ~cut[n])

(* n, leading its open segment, sends follower f the next entry f lacks; a sealed (fenced) *)
(* or lost copy refuses it.                                                                 *)
Replicate(n, f) ==
    /\ ~Compat /\ n # f /\ up[n] /\ Reachable(n, f) /\ view[n].segs # <<>>
    /\ LET g  == CurSeg(n)
           sm == view[n].segs[g]
           mine == store[n][g]
           them == store[f][g]
       IN /\ sm.leader = n /\ sm.state = OPEN /\ f \in Range(sm.replicas)
          /\ ~mine.lost /\ ~them.sealed /\ ~them.lost
          /\ Len(them.entries) < Len(mine.entries)
          /\ SubSeq(mine.entries, 1, Len(them.entries)) = them.entries
          /\ store' = [store EXCEPT ![f][g].entries = SubSeq(mine.entries, 1, Len(them.entries) + 1)]
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, silence, lease, renew,
                   incarnation, meta, log, applied, view, slot, rolling, ccount, ccursor, puts,
                   before, delivered, emptyUnread>>

(* n, back with its disk lost, still leads the open segment: it takes itself over, so that *)
(* SealFromReplicas seals the segment from the other copies (its renewals would otherwise  *)
(* keep open for ever a segment it can no longer append to).                              *)
Resign(n) ==
    /\ ~Compat /\ Replicas > 1 /\ Connected(n) /\ view[n].segs # <<>>
    /\ view[n].segs[CurSeg(n)].leader = n /\ view[n].segs[CurSeg(n)].state = OPEN
    /\ store[n][CurSeg(n)].lost
    /\ <<"takeover", n>> \notin Range(Unapplied(n))
    /\ Commit(<<"takeover", n>>, renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, slot,
                   ccount, ccursor, puts, before, delivered, emptyUnread>>

(* The metadata leader seals taken-over segment g without its old leader: a majority of its *)
(* replicas answer, each answering copy is sealed and brought to the longest of them, and   *)
(* that length is the count committed (held by a majority; an acknowledged entry is on one). *)
SealFromReplicas(g) ==
    /\ ~Compat /\ Replicas > 1 /\ leader # NoLeader /\ Connected(leader)
    /\ g \in 1..Len(view[leader].segs) /\ view[leader].segs[g].state = PENDING
    /\ LET sm  == view[leader].segs[g]
           ans == {r \in Kept(sm, g) : Reachable(leader, r)}
           top == CHOOSE r \in ans : \A q \in ans : Len(store[r][g].entries) >= Len(store[q][g].entries)
           cmd == <<"report", g, Len(store[top][g].entries)>>
       IN /\ Cardinality(ans) >= Majority(sm)
          /\ cmd \notin Range(Unapplied(leader))
          /\ store' = [r \in Node |->
                          IF r \in ans
                          THEN [store[r] EXCEPT ![g] = [entries |-> store[top][g].entries,
                                                        sealed |-> TRUE, lost |-> FALSE]]
                          ELSE store[r]]
          /\ Commit(cmd, renew)
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, slot, ccount,
                   ccursor, puts, before, delivered, emptyUnread>>

(* Replica n copies segment g from another: a sealed segment's first count entries, or an *)
(* open segment's entries from its leader (n's copy lost with its disk).                  *)
Repair(n, g) ==
    /\ ~Compat /\ Replicas > 1 /\ up[n] /\ g \in 1..Len(view[n].segs)
    /\ LET sm   == view[n].segs[g]
           mine == store[n][g]
           srcs == {r \in Kept(sm, g) \ {n} : Reachable(n, r) /\ Len(store[r][g].entries) >= sm.count}
       IN /\ n \in Range(sm.replicas)
          /\ \/ /\ sm.state = SEALED
                /\ ~(~mine.lost /\ mine.sealed /\ Len(mine.entries) = sm.count)
                /\ srcs # {}
                /\ store' = [store EXCEPT ![n][g] =
                               [entries |-> SubSeq(store[Min(srcs)][g].entries, 1, sm.count),
                                sealed |-> TRUE, lost |-> FALSE]]
             \/ /\ sm.state = OPEN /\ mine.lost /\ sm.leader # n
                /\ Reachable(n, sm.leader) /\ ~store[sm.leader][g].lost
                /\ store' = [store EXCEPT ![n][g] = [entries |-> store[sm.leader][g].entries,
                                                     sealed |-> FALSE, lost |-> FALSE]]
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, silence, lease, renew,
                   incarnation, meta, log, applied, view, slot, rolling, ccount, ccursor, puts,
                   before, delivered, emptyUnread>>

(* The read position h serves segment g from: its own (Replicas = 1), or the furthest of   *)
(* those held by the replicas it reaches, if they are a majority (else <<-1, -1>>: none).  *)
Position(h, sm, g) ==
    IF Replicas < 2 THEN slot[h]
    ELSE LET seen == {r \in Kept(sm, g) : Reachable(h, r)}
         IN IF Cardinality(seen) < Majority(sm) THEN <<-1, -1>>
            ELSE MaxSlot({slot[r] : r \in seen})

(* What holder h answers a POP of segment g (walrus/reads.py): a sealed segment is served *)
(* by any replica with its whole copy, others by their leader; an open segment only up to  *)
(* its high-water mark, and EMPTY only with nothing beyond it.                            *)
Pop(h, g) ==
    LET v     == view[h]
        sm    == v.segs[g]
        st    == store[h][g]
        whole == st.sealed /\ Len(st.entries) = sm.count
        byAny == Replicas > 1 /\ sm.state = SEALED
        where == Position(h, sm, g)
        pos   == IF where[1] = g THEN where[2] ELSE 0
        avail == IF Compat \/ sm.state = OPEN
                 THEN IF Replicas > 1 THEN HighWater(sm, g) ELSE Len(st.entries)
                 ELSE IF sm.state = SEALED THEN sm.count ELSE pos
    IN IF g \notin 1..Len(v.segs) THEN [answer |-> "unavailable", offset |-> 0]
       ELSE IF byAny /\ (h \notin Range(sm.replicas) \/ st.lost \/ ~whole)
            THEN [answer |-> "unavailable", offset |-> 0]
       ELSE IF ~byAny /\ (sm.leader # h \/ st.lost)
            THEN [answer |-> "unavailable", offset |-> 0]
       ELSE IF where[1] = -1 THEN [answer |-> "unavailable", offset |-> 0]
       ELSE IF where[1] > g THEN [answer |-> "end", offset |-> 0]
       ELSE IF pos < avail THEN [answer |-> "entry", offset |-> pos]
       ELSE IF Compat THEN [answer |-> "empty", offset |-> 0]
       ELSE IF sm.state = PENDING THEN [answer |-> "unavailable", offset |-> 0]
       ELSE IF sm.state = SEALED THEN [answer |-> "end", offset |-> 0]
       ELSE IF g \in rolling[h] \/ lease[h] <= 0 \/ st.sealed \/ pos < Len(st.entries)
            THEN [answer |-> "unavailable", offset |-> 0]
       ELSE [answer |-> "empty", offset |-> 0]

(* Compat mode: node n follows its own cursor <<g, got>>, skipping sealed segments it has *)
(* read to their count and sealed segments whose holder answers EMPTY.                    *)
RECURSIVE CompatWalk(_, _, _)
CompatWalk(n, g, got) ==
    IF g > Len(view[n].segs) THEN [answer |-> "none"]
    ELSE LET sm == view[n].segs[g] IN
         IF sm.state = SEALED /\ got >= sm.count THEN CompatWalk(n, g + 1, 0)
         ELSE IF ~Reachable(n, sm.leader) THEN [answer |-> "none"]
         ELSE LET p == Pop(sm.leader, g) IN
              IF p.answer = "entry"
              THEN [answer |-> "entry", holder |-> sm.leader, seg |-> g, got |-> got + 1,
                    offset |-> p.offset]
              ELSE IF p.answer = "empty" /\ sm.state = SEALED THEN CompatWalk(n, g + 1, 0)
              ELSE IF p.answer = "empty" THEN [answer |-> "empty", seg |-> g, got |-> got]
              ELSE [answer |-> "none"]

(* The next position is written before the entry goes out: to h (Replicas = 1), or to *)
(* every replica h reaches (a majority, or Position said none).                      *)
HandOut(h, g, off) ==
    /\ slot' = IF Replicas < 2 THEN [slot EXCEPT ![h] = <<g, off + 1>>]
               ELSE LET sm == view[h].segs[g]
                    IN [r \in Node |->
                          IF r \in Kept(sm, g) /\ Reachable(h, r)
                          THEN IF Later(slot[r], <<g, off + 1>>) THEN slot[r] ELSE <<g, off + 1>>
                          ELSE slot[r]]
    /\ delivered' = Append(delivered, store[h][g].entries[off + 1])

Get(n) ==
    /\ up[n] /\ view[n].segs # <<>>
    /\ IF Compat
       THEN LET w == CompatWalk(n, ccursor[n][1], ccursor[n][2]) IN
            /\ w.answer \in {"entry", "empty"}
            /\ ccursor' = [ccursor EXCEPT ![n] = <<w.seg, w.got>>]
            /\ IF w.answer = "entry"
               THEN HandOut(w.holder, w.seg, w.offset) /\ UNCHANGED emptyUnread
               ELSE emptyUnread' = Acked \ Range(delivered) /\ UNCHANGED <<slot, delivered>>
            /\ UNCHANGED <<meta, log, applied, view, lease, renew, silence, rolling>>
       ELSE LET g  == view[n].cursor
                sm == view[n].segs[g]
                hs == IF Replicas > 1 /\ sm.state = SEALED THEN Range(sm.replicas)
                      ELSE {sm.leader}
            IN \E h \in hs :  \* the model asks the leader first, then the others in order
               LET p == Pop(h, g) IN
               /\ Reachable(n, h)
               /\ CASE p.answer = "entry" ->
                         HandOut(h, g, p.offset)
                         /\ UNCHANGED <<emptyUnread, meta, log, applied, view, lease, renew,
                                        silence, rolling>>
                    [] p.answer = "empty" ->
                         emptyUnread' = Acked \ Range(delivered)
                         /\ UNCHANGED <<slot, delivered, meta, log, applied, view, lease, renew,
                                        silence, rolling>>
                    [] p.answer = "end" ->
                         /\ Connected(n)
                         /\ <<"advance", g>> \notin Range(Unapplied(n))
                         /\ Commit(<<"advance", g>>, renew)
                         /\ UNCHANGED <<slot, delivered, emptyUnread>>
                    [] OTHER -> FALSE
               /\ UNCHANGED ccursor
    /\ UNCHANGED <<now, rate, up, cut, crashes, cuts, wipes, leader, incarnation, store, ccount, puts,
                   before>>

Crash(n) ==
    /\ up[n] /\ crashes < MaxCrashes
    /\ up' = [up EXCEPT ![n] = FALSE]
    /\ crashes' = crashes + 1
    /\ lease' = [lease EXCEPT ![n] = 0]
    /\ renew' = [renew EXCEPT ![n] = NoRenew]
    /\ incarnation' = [incarnation EXCEPT ![n] = @ + 1]
    /\ rolling' = [rolling EXCEPT ![n] = {}]
    /\ ccount' = [ccount EXCEPT ![n] = [g \in SegId |-> 0]]
    /\ ccursor' = [ccursor EXCEPT ![n] = <<1, 0>>]
    /\ puts' = [v \in Value |-> IF puts[v].phase = "seq" /\ puts[v].node = n
                                THEN [puts[v] EXCEPT !.phase = "info"] ELSE puts[v]]
    /\ UNCHANGED <<now, rate, cut, cuts, wipes, leader, silence, meta, log, applied, view, store, slot,
                   before, delivered, emptyUnread>>

(* n is killed and its disk lost: every copy it held is marked lost, its read position *)
(* gone; its metadata copy (the Raft journal) is kept: losing a voter's log is a Raft      *)
(* membership problem, outside this module.                                             *)
Wipe(n) ==
    /\ up[n] /\ wipes < MaxWipes
    /\ up' = [up EXCEPT ![n] = FALSE]
    /\ wipes' = wipes + 1
    /\ lease' = [lease EXCEPT ![n] = 0]
    /\ renew' = [renew EXCEPT ![n] = NoRenew]
    /\ incarnation' = [incarnation EXCEPT ![n] = @ + 1]
    /\ rolling' = [rolling EXCEPT ![n] = {}]
    /\ ccount' = [ccount EXCEPT ![n] = [g \in SegId |-> 0]]
    /\ ccursor' = [ccursor EXCEPT ![n] = <<1, 0>>]
    /\ puts' = [v \in Value |-> IF puts[v].phase = "seq" /\ puts[v].node = n
                                THEN [puts[v] EXCEPT !.phase = "info"] ELSE puts[v]]
    /\ store' = [store EXCEPT ![n] =
                    [g \in SegId |-> [entries |-> <<>>, sealed |-> FALSE, lost |-> TRUE]]]
    /\ slot' = [slot EXCEPT ![n] = <<0, 0>>]
    /\ UNCHANGED <<now, rate, cut, crashes, cuts, leader, silence, meta, log, applied, view,
                   before, delivered, emptyUnread>>

Restart(n) ==
    /\ ~up[n]
    /\ up' = [up EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<now, rate, cut, crashes, cuts, wipes, leader, silence, lease, renew, incarnation,
                   meta, log, applied, view, store, slot, rolling, ccount, ccursor, puts, before,
                   delivered, emptyUnread>>

Isolate(n) ==
    /\ ~cut[n] /\ cuts < MaxCuts
    /\ cut' = [cut EXCEPT ![n] = TRUE]
    /\ cuts' = cuts + 1
    /\ UNCHANGED <<now, rate, up, crashes, wipes, leader, silence, lease, renew, incarnation, meta, log,
                   applied, view, store, slot, rolling, ccount, ccursor, puts, before,
                   delivered, emptyUnread>>

Heal(n) ==
    /\ cut[n]
    /\ cut' = [cut EXCEPT ![n] = FALSE]
    /\ UNCHANGED <<now, rate, up, crashes, cuts, wipes, leader, silence, lease, renew, incarnation,
                   meta, log, applied, view, store, slot, rolling, ccount, ccursor, puts, before,
                   delivered, emptyUnread>>

FaultFree ==
    \/ Tick
    \/ \E n \in Node : \/ Create(n) \/ Elect(n) \/ CommitRenew(n) \/ ApplyLog(n)
                       \/ BeginPut(n) \/ SealForRollover(n) \/ ProposeRollover(n)
                       \/ Takeover(n) \/ Resign(n) \/ Get(n) \/ Restart(n) \/ Heal(n)
                       \/ \E v \in Value : FinishPut(n, v)
                       \/ \E g \in SegId : ReportCount(n, g) \/ SealHere(n, g) \/ Repair(n, g)
                       \/ \E f \in Node : Replicate(n, f)
    \/ \E g \in SegId : SealFromReplicas(g)

Next == FaultFree \/ \E n \in Node : Crash(n) \/ Wipe(n) \/ Isolate(n)

Spec == Init /\ [][Next]_vars

(* For the liveness property: every fault-free step, once enabled for good, is taken. *)
FairSpec == Spec /\ SF_vars(FaultFree)

StateConstraint == Len(meta.segs) <= MaxSegments

(***************************************************************************)
(* Invariants.                                                            *)
(***************************************************************************)
SingleWriter == \A a, b \in Node : AcceptsAppends(a) /\ AcceptsAppends(b) => a = b

AckedReadable ==
    \A v \in Acked :
        LET p  == puts[v]
            sm == meta.segs[p.seg]
            at == MaxSlot({slot[r] : r \in Range(sm.replicas)})
        IN /\ sm.leader = p.node
           /\ Holding(sm, p.seg, v, p.offset) > 0
           /\ v \notin Range(delivered) =>
                /\ ~(sm.state = SEALED /\ p.offset >= sm.count)
                /\ meta.cursor <= p.seg
                /\ at[1] <= p.seg
                /\ at[1] = p.seg => at[2] <= p.offset

ReadOnceInOrder ==
    \A i \in DOMAIN delivered :
        /\ \A j \in DOMAIN delivered : j # i => delivered[j] # delivered[i]
        /\ before[delivered[i]] \subseteq {delivered[j] : j \in 1..(i - 1)}

SealedCountExact ==
    \A g \in 1..Len(meta.segs) :
        LET sm == meta.segs[g] IN
        sm.state = SEALED =>
            IF Replicas < 2 THEN sm.count = Len(store[sm.leader][g].entries)
            ELSE /\ \E r \in Kept(sm, g) : Len(store[r][g].entries) >= sm.count
                 /\ \A a, b \in Kept(sm, g) :
                      \A k \in 1..sm.count :
                        k <= Len(store[a][g].entries) /\ k <= Len(store[b][g].entries)
                          => store[a][g].entries[k] = store[b][g].entries[k]

NoLostOnEmpty == emptyUnread = {}

CursorBounds ==
    /\ meta.segs # <<>> => meta.cursor \in 1..Len(meta.segs)
    /\ \A n \in Node :
         slot[n][1] # 0 =>
             LET g    == slot[n][1]
                 sm   == meta.segs[g]
                 held == IF Replicas < 2 THEN {n} \ {r \in {n} : store[r][g].lost}
                         ELSE Kept(sm, g)
             IN /\ held # {} => \E r \in held : slot[n][2] <= Len(store[r][g].entries)
                /\ sm.state = SEALED => slot[n][2] <= sm.count

(***************************************************************************)
(* Liveness: with the faults over, every acknowledged value is read.      *)
(***************************************************************************)
Healed == (\A n \in Node : up[n]) /\ (\A n \in Node : ~cut[n])
AllRead == Acked \subseteq Range(delivered)

EventuallyAllRead == [](Healed => <>AllRead)
=============================================================================
