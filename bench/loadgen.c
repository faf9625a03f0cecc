/* See loadgen.h. */
#include "bench/loadgen.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct shared {
  const bench_load *l;
  pthread_barrier_t go;
  double start;    /* the window's start (CLOCK_MONOTONIC s), set before the go */
  double deadline; /* start + seconds */
  atomic_int stop; /* a step failed: every thread ends */
  pthread_mutex_t mu;
  bench_load_result *r; /* why, failed: the first failure's, under mu */
} shared;

typedef struct lthread {
  pthread_t t;
  int id;
  shared *s;
  double *lat, *sent, *at;
  size_t n, cap, events;
} lthread;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  double d = t - now();
  if (d <= 0)
    return;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  nanosleep(&ts, NULL);
}

static void push(lthread *th, double at, double lat, double sent) {
  if (th->n == th->cap) {
    size_t c = th->cap ? th->cap * 2 : 1024;
    double *nl = realloc(th->lat, c * sizeof *nl);
    if (!nl)
      abort();
    th->lat = nl;
    double *ns = realloc(th->sent, c * sizeof *ns);
    if (!ns)
      abort();
    th->sent = ns;
    double *na = realloc(th->at, c * sizeof *na);
    if (!na)
      abort();
    th->at = na;
    th->cap = c;
  }
  th->at[th->n] = at;
  th->lat[th->n] = lat;
  th->sent[th->n++] = sent;
}

/* Records the first failure ("thread N: why") and stops every thread. */
static void fail(lthread *th, const char *why) {
  shared *s = th->s;
  pthread_mutex_lock(&s->mu);
  if (!s->r->failed) {
    s->r->failed = 1;
    snprintf(s->r->why, sizeof s->r->why, "thread %d: %s", th->id, why[0] ? why : "failed");
  }
  pthread_mutex_unlock(&s->mu);
  atomic_store(&s->stop, 1);
}

/* The thread's prep (0, 1: nothing left, -1: failed, recorded). */
static int prep(lthread *th, void *ctx) {
  const bench_load *l = th->s->l;
  char why[256] = "";
  size_t ignored = 0;
  int rc = l->prep ? l->prep(ctx, &ignored, why, sizeof why) : 0;
  if (rc < 0)
    fail(th, why);
  return rc;
}

/* The call, timed: *t0 when it started, *t1 when it returned. 0, 1 or -1
 * (failed, recorded). */
static int call(lthread *th, void *ctx, size_t *events, double *t0, double *t1) {
  char why[256] = "";
  *events = 0;
  *t0 = now();
  int rc = th->s->l->call(ctx, events, why, sizeof why);
  *t1 = now();
  if (rc < 0)
    fail(th, why);
  return rc;
}

static void *run_thread(void *arg) {
  lthread *th = arg;
  shared *s = th->s;
  const bench_load *l = s->l;
  void *ctx = l->ctx_size ? (char *)l->ctx + (size_t)th->id * l->ctx_size : l->ctx;
  pthread_barrier_wait(&s->go);
  double t0, t1;
  size_t ev;
  /* warm-up: closed loop until the window opens */
  while (!atomic_load(&s->stop) && now() < s->start)
    if (prep(th, ctx) != 0 || call(th, ctx, &ev, &t0, &t1) != 0)
      return NULL;
  for (size_t k = 0; !atomic_load(&s->stop); k++) {
    double due = 0;
    if (l->interval > 0) {
      due = s->start + l->interval * ((double)k + (double)th->id / (double)l->threads);
      if (due >= s->deadline)
        break;
    }
    if (prep(th, ctx) != 0)
      break;
    if (l->interval > 0)
      sleep_until(due);
    else if (now() >= s->deadline)
      break;
    if (call(th, ctx, &ev, &t0, &t1) != 0)
      break;
    /* a late start counts from its scheduled time */
    double from = l->interval > 0 && due < t0 ? due : t0;
    push(th, from - s->start, t1 - from, t1 - t0);
    th->events += ev;
  }
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Keeps the call (at, lat) if it is among the slowest so far. */
static void keep_slowest(bench_load_result *r, double at, double lat) {
  size_t i = r->nslowest;
  if (i == BENCH_LOAD_SLOWEST) {
    if (lat <= r->slowest[i - 1].lat)
      return;
    i--; /* the fastest kept goes */
  } else {
    r->nslowest++;
  }
  for (; i > 0 && r->slowest[i - 1].lat < lat; i--)
    r->slowest[i] = r->slowest[i - 1];
  r->slowest[i] = (bench_load_call){at, lat};
}

static int bad(bench_load_result *r, const char *why) {
  r->failed = 1;
  snprintf(r->why, sizeof r->why, "bench_load_run: %s", why);
  return -1;
}

int bench_load_run(const bench_load *l, bench_load_result *r) {
  memset(r, 0, sizeof *r);
  if (l->threads < 1)
    return bad(r, "threads must be at least 1");
  if (!l->call)
    return bad(r, "no call to measure");
  if (!(l->seconds > 0))
    return bad(r, "seconds must be above 0");
  if (l->warmup < 0 || l->interval < 0)
    return bad(r, "warmup and interval cannot be negative");
  shared s;
  memset(&s, 0, sizeof s);
  s.l = l;
  s.r = r;
  pthread_mutex_init(&s.mu, NULL);
  pthread_barrier_init(&s.go, NULL, (unsigned)l->threads + 1);
  lthread *ths = calloc((size_t)l->threads, sizeof *ths);
  r->thread_ops = calloc((size_t)l->threads, sizeof *r->thread_ops);
  if (!ths || !r->thread_ops)
    abort();
  r->threads = l->threads;
  for (int i = 0; i < l->threads; i++) {
    ths[i].id = i;
    ths[i].s = &s;
    if (pthread_create(&ths[i].t, NULL, run_thread, &ths[i]) != 0)
      abort();
  }
  /* every thread is at the barrier (or about to be): the window's times
   * are fixed before the go, the barrier publishing them */
  s.start = now() + l->warmup;
  s.deadline = s.start + l->seconds;
  pthread_barrier_wait(&s.go);
  size_t ops = 0;
  for (int i = 0; i < l->threads; i++) {
    pthread_join(ths[i].t, NULL);
    ops += ths[i].n;
  }
  double end = now();
  r->elapsed = end > s.start ? end - s.start : 0;
  r->lat = malloc((ops ? ops : 1) * sizeof *r->lat);
  r->sent = malloc((ops ? ops : 1) * sizeof *r->sent);
  if (!r->lat || !r->sent)
    abort();
  for (int i = 0; i < l->threads; i++) {
    for (size_t k = 0; k < ths[i].n; k++)
      keep_slowest(r, ths[i].at[k], ths[i].lat[k]);
    memcpy(r->lat + r->ops, ths[i].lat, ths[i].n * sizeof *r->lat);
    memcpy(r->sent + r->ops, ths[i].sent, ths[i].n * sizeof *r->sent);
    r->ops += ths[i].n;
    r->events += ths[i].events;
    r->thread_ops[i] = ths[i].n;
    free(ths[i].lat);
    free(ths[i].sent);
    free(ths[i].at);
  }
  qsort(r->lat, r->ops, sizeof *r->lat, cmp_double);
  qsort(r->sent, r->ops, sizeof *r->sent, cmp_double);
  free(ths);
  pthread_barrier_destroy(&s.go);
  pthread_mutex_destroy(&s.mu);
  return r->failed ? -1 : 0;
}

void bench_load_result_free(bench_load_result *r) {
  free(r->lat);
  free(r->sent);
  free(r->thread_ops);
  r->lat = r->sent = NULL;
  r->thread_ops = NULL;
}
