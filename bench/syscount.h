/* Counting a server's syscalls from outside it, for the benches' "fsyncs
 * per event" and "syscalls per event": `perf stat` on the kernel's syscall
 * tracepoints, attached to running processes.
 *
 * Durable writes (`syncs`): fsync and fdatasync calls, and io_submit
 * calls. clinlogd's commits are libraft's writes of its log, submitted
 * through Linux AIO (io_submit) with RWF_DSYNC (or to an O_DSYNC file):
 * each submit is one durable write, however many entries it carries (Raft
 * batches appends); RocksDB's own WAL is not synced there (the Raft log is
 * the write-ahead log), and clinlogd calls fdatasync/fsync for snapshots,
 * segment closes and new files. An `strace -c -f` of a loaded clinlogd
 * shows exactly these (io_submit, no fdatasync on the append path).
 * Nothing else in clinlogd uses AIO.
 *
 * Every syscall (`all`, the raw_syscalls tracepoint) and the kinds below
 * (`by`): on a VM a syscall costs microseconds, and the kinds say what a
 * call's path spends them on (futex: thread hand-offs and contended locks;
 * write: RocksDB's WAL appends and the eventfd wake-ups of gRPC's and
 * libuv's loops; sock: gRPC's socket I/O; poll: its loops waiting).
 *
 * Counted: the threads the processes have when counting starts (perf
 * stat -p); threads started later (MLLP's connection threads) are not.
 * Needs perf (Debian's linux-perf) and the right to read tracepoints
 * (root, or kernel.perf_event_paranoid <= -1); without them every count
 * is -1 and the benches print no figure. */
#ifndef CL_BENCH_SYSCOUNT_H
#define CL_BENCH_SYSCOUNT_H

#include <limits.h>
#include <sys/types.h>

/* The kinds of `by`, in this order (named in the JSON and the tables by
 * the suffix in lower case: "futex", "write", ... "sleep"). */
enum {
  BENCH_SC_FUTEX,  /* futex */
  BENCH_SC_WRITE,  /* write, pwrite64, writev */
  BENCH_SC_READ,   /* read, pread64, readv */
  BENCH_SC_SOCK,   /* recvmsg, recvfrom, sendmsg, sendto */
  BENCH_SC_POLL,   /* epoll_wait, epoll_pwait, poll, ppoll */
  BENCH_SC_SYNC,   /* fsync, fdatasync, io_submit (= syncs) */
  BENCH_SC_AIO,    /* io_getevents: the AIO completions */
  BENCH_SC_RANDOM, /* getrandom */
  BENCH_SC_MEMORY, /* mmap, munmap, mprotect, madvise, brk */
  BENCH_SC_SLEEP,  /* nanosleep, clock_nanosleep, sched_yield */
  BENCH_SC_KINDS
};

typedef struct bench_syscalls {
  double syncs;              /* durable writes (above); -1 when unread */
  double all;                /* every syscall; -1 when unread */
  double by[BENCH_SC_KINDS]; /* each kind; -1 when unread */
} bench_syscalls;

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
 * totals) and returns the durable writes seen (fsync, fdatasync and
 * io_submit calls), or -1 when nothing was counted (perf missing, not
 * allowed, or its output unreadable). Removes the output file. */
double bench_syscount_stop(bench_syscount *c);

/* The same, with every count in *out (each -1 when unread); returns
 * out->syncs. */
double bench_syscount_stop_all(bench_syscount *c, bench_syscalls *out);

/* Prints `,"server_syscalls":{"all":A,"futex":F,...}`, each per `unit`
 * (an event, a message: `per` of them), only the counts read; nothing
 * when none was. */
void bench_syscalls_json(const bench_syscalls *s, double per);

/* Prints "  syscalls per <unit>: A (futex F, write W, ...)" with the kinds
 * of at least 0.05 per unit, largest first; nothing when unread. */
void bench_syscalls_print(const bench_syscalls *s, double per, const char *unit);

#endif
