/* Units of work driven through C connections at once, the way the ingest
 * benchmarks (bench_ingest_hl7.c, bench_ingest_fhir.c) drive a server, the
 * store and PostgreSQL alike: connection i takes units i, i+conns, ...,
 * one at a time (a request, its answer, the next), all starting together;
 * each unit's latency is kept. Progress on a terminal. */
#ifndef CL_BENCH_CONNRUN_H
#define CL_BENCH_CONNRUN_H

#include <stddef.h>
#include <sys/types.h>

#include "bench/benchutil.h"

typedef struct bench_connrun {
  int conns;
  size_t n;          /* units */
  const char *label; /* progress line and error messages: "mllp", "store", ... */
  int progress;      /* show progress on stderr */
  pid_t server;      /* > 0: measure this process's CPU over the run */
  void *ctx;
  /* Opens connection `id` into *conn (may stay NULL); 0, or -1 with err set. */
  int (*open)(void *ctx, int id, void **conn, char *err, size_t errn);
  /* Does unit i on conn: 0, or -1 with err set (the connection stops). */
  int (*one)(void *ctx, void *conn, size_t i, char *err, size_t errn);
  void (*close)(void *ctx, void *conn);
  /* What unit i counts for (events, resources), summed over done units. */
  size_t (*weight)(void *ctx, size_t i);
} bench_connrun;

typedef struct bench_connres {
  int ok;          /* every unit done, no error */
  size_t done;     /* units done */
  size_t weight;   /* their weights */
  double wall_s;   /* to the last connection's end */
  double per_s;    /* done / wall */
  double weight_per_s;
  double p50_ms, p99_ms;
  double server_cpu_s; /* < 0: not measured */
  bench_threads threads; /* the server's CPU by thread over the run (n 0: not measured) */
} bench_connres;

/* Runs r; errors are printed ("clinlog-bench CMD: LABEL, N connections:
 * why") with cmd naming the command. */
bench_connres bench_connrun_go(const bench_connrun *r, const char *cmd);

#endif
