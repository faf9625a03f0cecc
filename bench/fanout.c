/* Fan-out bookkeeping shared by the Subscribe and Watch benchmarks
 * (fanout.h). */
#include "bench/fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchutil.h"
#include "bench/workload.h"

void bench_fan_clock_init(bench_fan_clock *c, size_t nbatches, size_t bs) {
  c->sent = calloc(nbatches ? nbatches : 1, sizeof *c->sent);
  if (!c->sent)
    abort();
  c->nbatches = nbatches;
  c->bs = bs;
}

void bench_fan_clock_free(bench_fan_clock *c) {
  free((void *)c->sent);
  c->sent = NULL;
}

void bench_fan_sent(bench_fan_clock *c, size_t i) { atomic_store(&c->sent[i], bench_wall_ns()); }

bench_fan_reader *bench_fan_readers_make(int n, const bench_fan_clock *c, atomic_int *ready,
                                         void *ctx) {
  bench_fan_reader *rs = calloc(n > 0 ? (size_t)n : 1, sizeof *rs);
  if (!rs)
    abort();
  uint64_t want = (uint64_t)(c->nbatches * c->bs);
  for (int i = 0; i < n; i++) {
    rs[i].ctx = ctx;
    rs[i].clock = c;
    rs[i].ready = ready;
    rs[i].want = want;
    rs[i].lat_commit = malloc((want ? want : 1) * sizeof(double));
    rs[i].lat_sent = malloc((want ? want : 1) * sizeof(double));
    if (!rs[i].lat_commit || !rs[i].lat_sent)
      abort();
  }
  return rs;
}

void bench_fan_readers_free(bench_fan_reader *rs, int n) {
  for (int i = 0; rs && i < n; i++) {
    free(rs[i].lat_commit);
    free(rs[i].lat_sent);
  }
  free(rs);
}

void bench_fan_note(bench_fan_reader *r, int64_t committed_ns) {
  int64_t now = bench_wall_ns();
  size_t b = (size_t)(r->got / r->clock->bs);
  int64_t sent = b < r->clock->nbatches ? atomic_load(&r->clock->sent[b]) : 0;
  r->t_last = bench_mono();
  r->lat_sent[r->got] = sent ? (double)(now - sent) / 1e9 : 0;
  if (committed_ns) {
    r->lat_commit[r->got] = (double)(now - committed_ns) / 1e9;
    r->has_commit = 1;
  }
  r->got++;
}

/* Sorts v[0..n) and puts its median and 99th percentile, in ms, in p50/p99. */
static void pcts_ms(double *v, size_t n, double *p50, double *p99) {
  bench_percentiles(v, n, p50, p99);
  *p50 *= 1e3;
  *p99 *= 1e3;
}

void bench_fan_collect(bench_fan_reader *rs, int n, double t0, const char *what, bench_fanout *f) {
  f->readers = n;
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += (size_t)rs[i].want;
  double *sent = malloc((total ? total : 1) * sizeof *sent);
  double *commit = malloc((total ? total : 1) * sizeof *commit);
  if (!sent || !commit)
    abort();
  size_t ns = 0, nc = 0;
  f->sub_eps_min = n ? 1e18 : 0;
  f->sub_eps_mean = 0;
  for (int i = 0; i < n; i++) {
    bench_fan_reader *r = &rs[i];
    pthread_join(r->t, NULL);
    if (r->got < r->want) {
      fprintf(stderr, "%s: a reader stopped after %llu of %llu events: %s\n", what,
              (unsigned long long)r->got, (unsigned long long)r->want,
              r->err[0] ? r->err : "(no reason)");
      f->failed = 1;
    }
    /* delivered rate over the writer's whole run: from the first send to
     * the last delivery */
    double span = r->t_last - t0;
    double eps = span > 0 ? (double)r->got / span : 0;
    f->sub_eps_mean += eps / n;
    if (eps < f->sub_eps_min)
      f->sub_eps_min = eps;
    memcpy(sent + ns, r->lat_sent, r->got * sizeof *sent);
    ns += r->got;
    if (r->has_commit) {
      memcpy(commit + nc, r->lat_commit, r->got * sizeof *commit);
      nc += r->got;
    }
  }
  pcts_ms(sent, ns, &f->sent_p50_ms, &f->sent_p99_ms);
  pcts_ms(commit, nc, &f->p50_ms, &f->p99_ms);
  free(sent);
  free(commit);
}

void bench_fan_calls(bench_fanout *f, double *call_s, size_t n) {
  pcts_ms(call_s, n, &f->call_p50_ms, &f->call_p99_ms);
}
