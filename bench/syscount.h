/* Counting a server's durable writes from outside it, for the benches'
 * "fsyncs per event": `perf stat` on the kernel's syscall tracepoints,
 * attached to running processes. What is counted: fsync and fdatasync
 * calls, and io_submit calls. clinlogd's commits are libraft's writes of
 * its log, submitted through Linux AIO (io_submit) with RWF_DSYNC (or to
 * an O_DSYNC file): each submit is one durable write, however many
 * entries it carries (Raft batches appends); RocksDB's own WAL is not
 * synced there (the Raft log is the write-ahead log), and clinlogd calls
 * fdatasync/fsync for snapshots, segment closes and new files. An
 * `strace -c -f` of a loaded clinlogd shows exactly these (io_submit, no
 * fdatasync on the append path). Nothing else in clinlogd uses AIO.
 * Needs perf (Debian's linux-perf) and the right to read tracepoints
 * (root, or kernel.perf_event_paranoid <= -1); without them the count is
 * -1 and the benches print no figure. */
#ifndef CL_BENCH_SYSCOUNT_H
#define CL_BENCH_SYSCOUNT_H

#include <limits.h>
#include <sys/types.h>

typedef struct bench_syscount {
  pid_t perf;             /* the perf stat process, 0 when none runs */
  char out[PATH_MAX + 8]; /* its output file */
} bench_syscount;

/* Starts counting the syscalls of pids[0..n) (live processes); `dir` holds
 * perf's output file (its name made from this process's pid and a counter).
 * Returns 0, or -1 when perf cannot be started (c->perf then 0; stop
 * returns -1). Waits 300 ms for perf to attach before returning. Not
 * thread-safe (one counter at a time per caller thread). */
int bench_syscount_start(bench_syscount *c, const pid_t *pids, int n, const char *dir);

/* Stops the count started on c (SIGINT to perf, which then writes its
 * totals) and returns the fsync, fdatasync and io_submit calls seen, or -1 when
 * nothing was counted (perf missing, not allowed, or its output
 * unreadable). Removes the output file. */
double bench_syscount_stop(bench_syscount *c);

#endif
