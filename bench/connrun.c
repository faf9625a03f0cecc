/* See connrun.h. */
#include "bench/connrun.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchutil.h"
#include "bench/workload.h"

typedef struct conn {
  pthread_t t;
  int id;
  const bench_connrun *r;
  void *c;
  double *lat; /* ms */
  size_t nlat, cap, weight;
  volatile size_t done;
  double start, end; /* bench_mono() when it started its first unit, and finished */
  char err[256];
  pthread_barrier_t *go;
} conn;

static void *drive(void *arg) {
  conn *d = arg;
  const bench_connrun *r = d->r;
  if (r->open && r->open(r->ctx, d->id, &d->c, d->err, sizeof d->err) && !d->err[0])
    snprintf(d->err, sizeof d->err, "cannot connect");
  pthread_barrier_wait(d->go);
  d->start = bench_mono();
  for (size_t i = (size_t)d->id; i < r->n && !d->err[0]; i += (size_t)r->conns) {
    int64_t t0 = bench_wall_ns();
    if (r->one(r->ctx, d->c, i, d->err, sizeof d->err)) {
      if (!d->err[0])
        snprintf(d->err, sizeof d->err, "unit %zu failed", i);
      break;
    }
    if (bench_lat_push(&d->lat, &d->nlat, &d->cap, (double)(bench_wall_ns() - t0) / 1e6)) {
      snprintf(d->err, sizeof d->err, "out of memory");
      break;
    }
    d->weight += r->weight ? r->weight(r->ctx, i) : 1;
    d->done++;
  }
  d->end = bench_mono();
  if (r->close)
    r->close(r->ctx, d->c);
  return NULL;
}

bench_connres bench_connrun_go(const bench_connrun *r, const char *cmd) {
  bench_connres out = {.server_cpu_s = -1};
  int conns = r->conns;
  conn *ds = calloc((size_t)conns, sizeof *ds);
  pthread_barrier_t go;
  if (!ds)
    abort();
  pthread_barrier_init(&go, NULL, (unsigned)conns + 1);
  for (int i = 0; i < conns; i++) {
    ds[i] = (conn){.id = i, .r = r, .go = &go};
    pthread_create(&ds[i].t, NULL, drive, &ds[i]);
  }
  pthread_barrier_wait(&go);
  /* after every connection is open: a TLS handshake is not a unit's cost */
  bench_threads th0;
  int threads = r->server > 0 && bench_threads_snap(r->server, &th0) == 0;
  /* the process's CPU read with the threads', so the groups add up to it */
  double cpu0 = threads ? th0.total_s : r->server > 0 ? bench_proc_cpu_s(r->server) : -1;
  while (r->progress) {
    size_t done = 0;
    int alive = 0;
    for (int i = 0; i < conns; i++) {
      done += ds[i].done;
      size_t mine = (size_t)i < r->n ? (r->n - (size_t)i + (size_t)conns - 1) / (size_t)conns : 0;
      alive += !ds[i].err[0] && ds[i].done < mine;
    }
    fprintf(stderr, "\r  %-5s %2d conn: %zu/%zu", r->label, conns, done, r->n);
    if (!alive)
      break;
    bench_sleep_ms(200);
  }
  if (r->progress)
    fprintf(stderr, "\r%60s\r", "");
  for (int i = 0; i < conns; i++)
    pthread_join(ds[i].t, NULL);
  bench_threads th1;
  double cpu1;
  if (threads && bench_threads_snap(r->server, &th1) == 0) {
    bench_threads_delta(&th0, &th1, &out.threads);
    cpu1 = th1.total_s;
  } else { /* the two reads of the same kind, or none */
    cpu1 = !threads && r->server > 0 ? bench_proc_cpu_s(r->server) : -1;
  }
  double *all = NULL;
  size_t nl = 0, cap = 0;
  out.ok = 1;
  /* from the first connection's start, each connection's own (not this
   * thread's return from the barrier: with units of a few microseconds
   * every connection could be done before that, and the wall 0) */
  double t0 = conns > 0 ? ds[0].start : 0;
  for (int i = 1; i < conns; i++)
    if (ds[i].start < t0)
      t0 = ds[i].start;
  for (int i = 0; i < conns; i++) {
    if (ds[i].end - t0 > out.wall_s)
      out.wall_s = ds[i].end - t0;
    out.done += ds[i].done;
    out.weight += ds[i].weight;
    for (size_t k = 0; k < ds[i].nlat; k++)
      if (bench_lat_push(&all, &nl, &cap, ds[i].lat[k]))
        abort();
    if (ds[i].err[0]) {
      fprintf(stderr, "clinlog-bench %s: %s, %d connections: %s\n", cmd, r->label, conns,
              ds[i].err);
      out.ok = 0;
    }
    free(ds[i].lat);
  }
  out.ok &= out.done == r->n;
  bench_percentiles(all, nl, &out.p50_ms, &out.p99_ms);
  free(all);
  out.per_s = out.wall_s > 0 ? (double)out.done / out.wall_s : 0;
  out.weight_per_s = out.wall_s > 0 ? (double)out.weight / out.wall_s : 0;
  if (cpu0 >= 0 && cpu1 >= 0)
    out.server_cpu_s = cpu1 - cpu0;
  pthread_barrier_destroy(&go);
  free(ds);
  return out;
}
