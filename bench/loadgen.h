/* The one load generator of the append benchmarks: clinlog (gRPC and the
 * store in process, one node and 3), PostgreSQL (libpq) and etcd (KV.Put)
 * are all driven by it, so their figures come from the same loop.
 *
 * `threads` threads, each with its own context, wait at a common start
 * barrier, then call `call` one after the other (closed loop: the next call
 * starts when the previous one returns) for `seconds`; a call started before
 * the deadline is finished and counted, none is started after it. Each
 * call's latency is recorded (CLOCK_MONOTONIC, around `call` alone: `prep`,
 * run before each call, is outside it, e.g. signing a batch or building a
 * request). Optionally a warm-up: calls for `warmup` seconds before the
 * timed window, not counted; and an open loop: thread i's k-th call is
 * scheduled at start + interval * (k + i / threads) and its latency counted
 * from that time (a late start counts: no coordinated omission), until a
 * scheduled time reaches the deadline. The slowest calls are kept with
 * when they started, so a stall shows as several calls started close
 * together.
 *
 * Self-contained (pthreads and the clock only), so its unit test links it
 * alone (tests/bench/test_loadgen.c). */
#ifndef CL_BENCH_LOADGEN_H
#define CL_BENCH_LOADGEN_H

#include <stddef.h>

/* One step of a thread's loop with its context `ctx`. Returns 0 (for a call:
 * done, *events set to the events it carried), 1 (nothing left to do: the
 * thread stops; e.g. a fixed set of batches used up) or -1 after writing why
 * into why[0..whyn) (the run stops: every thread ends after its current
 * call). */
typedef int (*bench_load_fn)(void *ctx, size_t *events, char *why, size_t whyn);

typedef struct bench_load {
  int threads;        /* >= 1 */
  void *ctx;          /* thread i's context is (char *)ctx + i * ctx_size */
  size_t ctx_size;    /* 0: every thread gets ctx itself */
  bench_load_fn prep; /* NULL, or run before each call, outside its latency
                         (its *events is ignored) */
  bench_load_fn call; /* the operation measured */
  double seconds;     /* > 0: the timed window */
  double warmup;      /* >= 0: closed-loop calls before the window, not counted */
  double interval;    /* 0: closed loop; > 0: open loop, seconds between one
                         thread's scheduled calls */
} bench_load;

#define BENCH_LOAD_SLOWEST 8 /* slowest calls kept with when they started */

/* A call of the run: when it started (seconds from the window's start; open
 * loop: its scheduled time) and its latency (seconds, as lat). */
typedef struct bench_load_call {
  double at, lat;
} bench_load_call;

typedef struct bench_load_result {
  size_t ops;         /* calls counted (started inside the window, returned 0) */
  size_t events;      /* their *events */
  double elapsed;     /* seconds from the window's start to the last thread's end */
  double *lat;        /* [ops] seconds, sorted ascending (open loop: from the
                         scheduled start) */
  double *sent;       /* [ops] seconds from the actual start, sorted (the same
                         as lat in a closed loop) */
  size_t *thread_ops; /* [threads] calls counted per thread */
  /* the slowest calls, slowest first (nslowest: at most BENCH_LOAD_SLOWEST):
   * stalls show as several calls started close together */
  bench_load_call slowest[BENCH_LOAD_SLOWEST];
  size_t nslowest;
  int threads;
  int failed; /* a step returned -1 (why: "thread N: ...") or the
                 arguments were wrong (why names which) */
  char why[320];
} bench_load_result;

/* Runs l into *r (zeroed first). 0, or -1 with r->failed set and r->why
 * saying what failed; the figures of the calls done before a failure are
 * kept in r. Aborts when out of memory (a benchmark cannot go on).
 * bench_load_result_free(r) in either case. */
int bench_load_run(const bench_load *l, bench_load_result *r);
void bench_load_result_free(bench_load_result *r);

#endif
