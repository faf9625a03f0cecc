/* clinlog-bench cluster: the failover and join scenarios (bench_cluster.c
 * describes them; bench_cluster_int.h). */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "bench/bench_cluster.h"
#include "bench/bench_cluster_int.h"
#include "bench/benchutil.h"
#include "bench/workload.h"
#include "store/keys.h"

/* ---------------------------------------------------------- failover */

typedef struct fo_shared {
  node *ns;
  int count;
  const cl_signer *key;
  atomic_int stop;
  _Atomic int64_t kill_ns;  /* monotonic ns of the last kill */
  _Atomic int64_t first_ok; /* end of the first success of a call begun after it */
  atomic_ullong ok, retries;
  pthread_mutex_t mu;
  char last_err[CL_ERR_MSG_SIZE + 64];
} fo_shared;

typedef struct fo_writer {
  pthread_t t;
  fo_shared *s;
  int cur;
  unsigned seed;
} fo_writer;

static int64_t mono_ns(void) { return (int64_t)(mono() * 1e9); }

static int node_by_api(const fo_shared *s, const char *api) {
  for (int i = 0; i < s->count; i++)
    if (!strcmp(s->ns[i].api, api))
      return i;
  return -1;
}

static void *fo_run(void *arg) {
  fo_writer *w = arg;
  fo_shared *s = w->s;
  while (!atomic_load(&s->stop)) {
    bench_batch b;
    bench_batch_make(&b, 1, s->key, &w->seed);
    while (!atomic_load(&s->stop)) { /* the same batch until it is in */
      char hint[128];
      ProtobufCMessage *out;
      cl_client_status st;
      cl_err err;
      int64_t t0 = mono_ns();
      int rc = cl_client_unary_md(s->ns[w->cur].c, APPEND_PATH, &b.b.base,
                                  &clinlog__v1__append_response__descriptor, 1500, NULL,
                                  "clinlog-leader", hint, sizeof hint, &out, &st, &err);
      if (rc == 0) {
        protobuf_c_message_free_unpacked(out, NULL);
        int64_t k = atomic_load(&s->kill_ns), none = 0;
        if (k && t0 >= k)
          atomic_compare_exchange_strong(&s->first_ok, &none, mono_ns());
        atomic_fetch_add(&s->ok, 1);
        break;
      }
      atomic_fetch_add(&s->retries, 1);
      pthread_mutex_lock(&s->mu);
      snprintf(s->last_err, sizeof s->last_err, "%s (node %s)", err.msg, s->ns[w->cur].name);
      pthread_mutex_unlock(&s->mu);
      int h = hint[0] ? node_by_api(s, hint) : -1;
      w->cur = h >= 0 && h != w->cur ? h : (w->cur + 1) % s->count;
      bench_sleep_ms(5);
    }
    bench_batch_free(&b);
  }
  return NULL;
}

/* Waits until the leader sees ns[k] within 64 Raft entries. */
static int wait_rejoined(node *ns, int count, int k, double secs) {
  double until = mono() + secs;
  while (mono() < until) {
    int li = bc_find_leader(ns, count, 2);
    cl_err err;
    Clinlog__V1__ClusterStatus *s = li >= 0 ? bc_status_of(&ns[li], 1000, &err) : NULL;
    int ok = 0;
    for (size_t i = 0; s && !strcmp(s->state, "leader") && i < s->n_nodes; i++)
      if (s->nodes[i]->id == ns[k].id && s->nodes[i]->match_index > 0 && s->nodes[i]->lag <= 64)
        ok = 1;
    bc_status_free(s);
    if (ok)
      return 0;
    bench_sleep_ms(100);
  }
  return -1;
}

/* The timeline's sampler: the appends done so far every FO_TICK, turned
 * into appends/s per tick. */
typedef struct fo_timeline {
  pthread_t t;
  fo_shared *s;
  double t0; /* mono() at the writers' start */
  double *v;
  size_t n, cap;
} fo_timeline;

static void *fo_sample(void *arg) {
  fo_timeline *tl = arg;
  unsigned long long last = 0;
  for (size_t i = 1; !atomic_load(&tl->s->stop) && tl->n < tl->cap; i++) {
    double due = tl->t0 + (double)i * FO_TICK, now = mono();
    if (due > now)
      bench_sleep_ms((int)((due - now) * 1000) + 1);
    unsigned long long ok = atomic_load(&tl->s->ok);
    tl->v[tl->n++] = (double)(ok - last) / FO_TICK;
    last = ok;
  }
  return NULL;
}

/* For `secs`, every 100 ms, the leader's view of its followers' lag
 * (entries behind its last index) into *v; nothing while no leader
 * answers. All nodes are up. */
static void sample_lag(node *ns, int count, double secs, double **v, size_t *n, size_t *cap) {
  double until = mono() + secs;
  while (mono() < until) {
    int li = bc_find_leader(ns, count, 0.5);
    cl_err err;
    Clinlog__V1__ClusterStatus *st = li >= 0 ? bc_status_of(&ns[li], 500, &err) : NULL;
    for (size_t i = 0; st && !strcmp(st->state, "leader") && i < st->n_nodes; i++)
      if (st->nodes[i]->id != ns[li].id)
        bench_lat_push(v, n, cap, (double)st->nodes[i]->lag);
    bc_status_free(st);
    bench_sleep_ms(100);
  }
}

void bc_failover(env *e, node *ns, fo_out *f) {
  fo_shared s = {.ns = ns, .count = 3, .key = &e->admin};
  pthread_mutex_init(&s.mu, NULL);
  f->trials = e->quick ? 2 : TRIALS;
  /* room for every trial at its 30 s + 60 s limits */
  fo_timeline tl = {.s = &s, .t0 = mono(), .cap = (size_t)((3 + 92 * f->trials) / FO_TICK)};
  tl.v = calloc(tl.cap, sizeof *tl.v);
  double *lag = NULL;
  size_t lag_n = 0, lag_cap = 0;
  fo_writer w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (fo_writer){.s = &s, .cur = i % 3, .seed = 777u + (unsigned)i};
    pthread_create(&w[i].t, NULL, fo_run, &w[i]);
  }
  int sampling = tl.v && pthread_create(&tl.t, NULL, fo_sample, &tl) == 0;
  sample_lag(ns, 3, 1.0, &lag, &lag_n, &lag_cap); /* writers running */
  f->ran = 1;
  for (int trial = 0; trial < f->trials; trial++) {
    int li = bc_find_leader(ns, 3, 15);
    if (li < 0) {
      fprintf(stderr, "failover: no leader before trial %d\n", trial + 1);
      e->failed = 1;
      break;
    }
    atomic_store(&s.first_ok, 0);
    int64_t k = mono_ns();
    atomic_store(&s.kill_ns, k);
    f->kill_at[trial] = (double)k / 1e9 - tl.t0;
    bench_proc_kill(&ns[li].p);
    f->killed[trial] = ns[li].id;
    int64_t until = k + 30 * 1000000000LL;
    while (!atomic_load(&s.first_ok) && mono_ns() < until)
      bench_sleep_ms(2);
    int64_t ok = atomic_load(&s.first_ok);
    if (!ok) {
      pthread_mutex_lock(&s.mu);
      fprintf(stderr,
              "failover trial %d: no successful append within 30 s of killing node %" PRIu64
              " (last error: %s)\n",
              trial + 1, ns[li].id, s.last_err);
      pthread_mutex_unlock(&s.mu);
      e->failed = 1;
      break;
    }
    f->t[trial] = (double)(ok - k) / 1e9;
    f->ok_at[trial] = (double)ok / 1e9 - tl.t0;
    double r0 = mono();
    if (bc_node_start(e, &ns[li]) || wait_rejoined(ns, 3, li, 60)) {
      fprintf(stderr, "failover trial %d: node %" PRIu64 " did not rejoin; see %s\n", trial + 1,
              ns[li].id, ns[li].log);
      e->failed = 1;
      f->n = trial + 1;
      break;
    }
    f->rejoin[trial] = mono() - r0;
    f->n = trial + 1;
    fprintf(stderr,
            "  failover %d: killed node %" PRIu64 ", first append after %.3f s; "
            "rejoined %.2f s after restart\n",
            trial + 1, ns[li].id, f->t[trial], f->rejoin[trial]);
    sample_lag(ns, 3, 1.0, &lag, &lag_n, &lag_cap);
  }
  atomic_store(&s.stop, 1);
  for (int i = 0; i < 4; i++)
    pthread_join(w[i].t, NULL);
  if (sampling)
    pthread_join(tl.t, NULL);
  f->tl = tl.v;
  f->tl_n = tl.n;
  if (lag_n) {
    qsort(lag, lag_n, sizeof *lag, bench_cmp_double);
    f->lag_p50 = bench_pct(lag, lag_n, 0.5);
    f->lag_p99 = bench_pct(lag, lag_n, 0.99);
    f->lag_max = lag[lag_n - 1];
    f->lag_n = lag_n;
  }
  free(lag);
  pthread_mutex_destroy(&s.mu);
  f->ok = atomic_load(&s.ok);
  f->retries = atomic_load(&s.retries);
  double v[TRIALS];
  int n = 0;
  for (int i = 0; i < f->n; i++)
    if (f->t[i] > 0)
      v[n++] = f->t[i];
  if (n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    f->max = v[n - 1];
    f->median = v[n / 2];
  }
}

/* ---------------------------------------------------------- join */

static rss rss_of(pid_t pid) {
  rss r = {0, 0, 0, 0};
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof line, f)) {
    long kb;
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      r.rss_mb = (double)kb / 1024;
    else if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
      r.hwm_mb = (double)kb / 1024;
    else if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
      r.anon_mb = (double)kb / 1024;
    else if (sscanf(line, "RssFile: %ld kB", &kb) == 1)
      r.file_mb = (double)kb / 1024;
  }
  if (f)
    fclose(f);
  return r;
}

typedef struct sampler {
  pthread_t t;
  node *n;
  uint64_t base, target; /* tree sizes: before the catch-up, to reach */
  atomic_int stop;
  /* results */
  rss at[4]; /* 25, 50, 75, 100% */
  double t_at[4];
  double t0, t_done; /* t_done: tree_size reached target (0: not yet) */
  double peak_rss_mb;
} sampler;

/* 1 if n's store holds event `seq` (seqs count from 1): a Read of one
 * event, answered from the store (Cluster.Status waits for the Raft loop,
 * which is busy while a node catches up). */
static int holds(node *n, uint64_t seq) {
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  req.from = seq;
  req.max_count = 1;
  cl_client_stream *st;
  cl_err err;
  if (cl_client_read(n->c, &req, &st, &err) != 0)
    return 0;
  ProtobufCMessage *m;
  int got = 0;
  if (cl_client_stream_next(st, &m, &err) == 1) {
    got = ((Clinlog__V1__RecordedEvent *)m)->seq >= seq;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cl_client_stream_free(st);
  return got;
}

static void *sample(void *arg) {
  sampler *s = arg;
  int next = 0;
  while (!atomic_load(&s->stop)) {
    rss r = rss_of(s->n->p.pid);
    if (r.rss_mb > s->peak_rss_mb)
      s->peak_rss_mb = r.rss_mb;
    uint64_t span = s->target - s->base;
    while (next < 4 && holds(s->n, s->base + span * (uint64_t)(next + 1) / 4)) {
      s->at[next] = rss_of(s->n->p.pid);
      s->t_at[next] = mono() - s->t0;
      next++;
    }
    if (next == 4 && !s->t_done)
      s->t_done = mono();
    bench_sleep_ms(25);
  }
  return NULL;
}

/* AppendStream of `total` events in batches of e->join_batch, made as they
 * go. */
static int load(env *e, node *n, uint64_t total, double *eps) {
  cl_client_append_stream *as;
  cl_err err;
  unsigned seed = 99;
  double t0 = mono();
  if (cl_client_append_stream_open(n->c, &as, &err) != 0) {
    fprintf(stderr, "AppendStream: %s\n", err.msg);
    return -1;
  }
  int rc = 0;
  for (uint64_t sent = 0; rc == 0 && sent < total; sent += e->join_batch) {
    bench_batch b;
    bench_batch_make(&b, e->join_batch, &e->admin, &seed);
    rc = cl_client_append_stream_send(as, &b.b, &err);
    bench_batch_free(&b);
  }
  Clinlog__V1__AppendStreamSummary *sum = NULL;
  if (rc == 0)
    rc = cl_client_append_stream_finish(as, &sum, NULL, &err);
  else
    cl_client_append_stream_abort(as);
  if (rc) {
    fprintf(stderr, "AppendStream: %s; see %s\n", err.msg, n->log);
    return -1;
  }
  *eps = (double)sum->events / (mono() - t0);
  clinlog__v1__append_stream_summary__free_unpacked(sum, NULL);
  return 0;
}

void bc_join(env *e, join_out *j) {
  node ns[2];
  memset(ns, 0, sizeof ns);
  j->ran = 1;
  j->events = e->join_events ? e->join_events : e->quick ? 100000 : 1000000;
  fprintf(stderr, "  join: loading %" PRIu64 " events\n", j->events);
  if (bc_cluster_up(e, ns, 1, "src") || load(e, &ns[0], j->events, &j->load_eps)) {
    e->failed = 1;
    bc_nodes_free(e, ns, 1);
    return;
  }
  cl_err err;
  Clinlog__V1__ClusterStatus *st = bc_status_of(&ns[0], 5000, &err);
  int answered = st != NULL;
  j->source_size = st ? st->tree_size : 0;
  j->raft_last_index = st ? st->last_index : 0;
  bc_status_free(st);
  if (j->source_size < j->events) {
    fprintf(stderr, "join: the source reports %" PRIu64 " events (%s)\n", j->source_size,
            answered ? "short" : err.msg);
    e->failed = 1;
    bc_nodes_free(e, ns, 1);
    return;
  }
  if (bc_node_init(e, &ns[1], "new", 2, 1) || bc_node_create(e, &ns[1], ns[0].dir) ||
      bc_node_start(e, &ns[1])) {
    e->failed = 1;
    bc_nodes_free(e, ns, 2);
    return;
  }
  bench_sleep_ms(500);
  j->idle = rss_of(ns[1].p.pid);
  j->source = rss_of(ns[0].p.pid);
  sampler s = {.n = &ns[1], .target = j->source_size};
  st = bc_status_of(&ns[1], 5000, &err);
  s.base = st ? st->tree_size : 0;
  bc_status_free(st);
  fprintf(stderr, "  join: %" PRIu64 " events on the source; adding an empty member\n",
          j->source_size);
  s.t0 = mono();
  pthread_create(&s.t, NULL, sample, &s);
  int rc = bc_add_node(&ns[0], &ns[1], 30 * 60 * 1000);
  j->add_s = mono() - s.t0;
  while (!rc && !s.t_done && mono() - s.t0 < 30 * 60) /* the store may still be fetching */
    bench_sleep_ms(50);
  atomic_store(&s.stop, 1);
  pthread_join(s.t, NULL);
  j->final = rss_of(ns[1].p.pid);
  j->peak_rss_mb = s.peak_rss_mb > j->final.rss_mb ? s.peak_rss_mb : j->final.rss_mb;
  memcpy(j->at, s.at, sizeof j->at);
  memcpy(j->t_at, s.t_at, sizeof j->t_at);
  if (rc || !s.t_done) {
    st = bc_status_of(&ns[1], 5000, &err);
    fprintf(stderr, "join: the new node has %" PRIu64 " of %" PRIu64 " events; see %s and %s\n",
            st ? st->tree_size : 0, j->source_size, ns[0].log, ns[1].log);
    bc_status_free(st);
    e->failed = 1;
  } else {
    j->done = 1;
    j->catchup_s = s.t_done - s.t0;
  }
  bc_nodes_free(e, ns, 2);
}
