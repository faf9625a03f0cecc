/* A follower's pipeline kept through a quiet tick.
 *
 * libraft 0.22.1's leader checks at every tick (one heartbeat interval)
 * whether each follower sent anything since the previous successful check
 * (src/timeout.c, checkContactQuorum: progressHasContactedRecently compares
 * the last receive with the election timer, which that same check resets).
 * A follower that did not is "unreachable -> abort pipeline": back to probe
 * mode, in which the leader sends it at most one message a heartbeat
 * interval. A heartbeat's answer does not lift probe mode (it reports no
 * new match index), so the follower stays there until an entry is
 * acknowledged, and that entry waits for the next heartbeat tick first.
 *
 * So after any pause in the writes longer than about two heartbeat
 * intervals, both followers of a 3-node cluster were in probe mode and the
 * first write waited up to a heartbeat (100 ms) before it left the leader;
 * at a few writes a second, every write did. Seen in libraft's trace
 * (LIBRAFT_TRACE=1) of `clinlog-bench cluster`: an entry persisted on the
 * leader 84 ms before it was sent to anyone (docs/bench.md, "What stalls the
 * half load").
 *
 * clinlog links libraft statically (replication/segfill.c) with
 * `-Wl,--wrap=progressToProbe` (CMakeLists.txt). Within libraft.a only
 * timeout.o calls progressToProbe from another object file, at that one
 * place; the other demotions (a rejected AppendEntries, in progress.o) call
 * it from inside its own object file and are not redirected. Here the
 * demotion is skipped while the follower is online in libraft's own sense
 * (progressIsOnline: heard from within the election timeout); one silent
 * for a whole election timeout is demoted as before (libraft's trace,
 * LIBRAFT_TRACE=1, still prints "unreachable -> abort pipeline" at each
 * quiet tick: the line comes before the call). The quorum check, and
 * with it the leader stepping down when it cannot reach a majority, is
 * untouched: this changes only how eagerly entries are sent to a follower
 * that answers, never what is committed. */
#include <raft.h>
#include <stdbool.h>

/* libraft's own (src/progress.c), global symbols in libraft.a; the link
 * fails if a libraft without them is used. */
bool progressIsOnline(struct raft *r, unsigned i);
void __real_progressToProbe(struct raft *r, unsigned i);
void __wrap_progressToProbe(struct raft *r, unsigned i);

void __wrap_progressToProbe(struct raft *r, unsigned i) {
  if (progressIsOnline(r, i))
    return;
  __real_progressToProbe(r, i);
}
