/* clinlog-bench cluster: replicated clinlogd processes on loopback.
 *
 *   clinlog-bench cluster [--clinlogd PATH] [--clinlog PATH] [--dir D]
 *                         [--quick] [--json] [--only throughput|failover|join]
 *                         [--join-events N] [--join-batch N] [--run-projections all|none]
 *
 * Runs its own clinlogd processes (beside this program, or --clinlogd) on
 * free loopback ports, with data directories under D made by `clinlog init`
 * (--clinlog); every node's stderr goes to D/<name>.log. All share one admin
 * signing key (D/admin.key, `init --admin-key`), so pre-signed batches fit
 * every cluster. Clients talk to the nodes over the C client only (Log and
 * Cluster services); batches are signed before the clock starts.
 *
 * Scenarios:
 *  - throughput: a 3-node cluster (node 1 bootstraps; nodes 2 and 3 are
 *    `init --replica-of` stores started with --join and added with
 *    Cluster.AddNode, which returns once they vote); unary Append to the
 *    leader at batch 1 and 64, concurrency 16 and 64: events/s, p50/p99.
 *    The same against a one-node cluster (one clinlogd, run after the
 *    3-node cluster is stopped, so both see the same idle machine). Then
 *    batch 64 / concurrency 16 open loop at half the measured cluster rate
 *    (on the cluster, then at the same rate on the one-node cluster):
 *    p50/p99 counted from each call's scheduled start, and from its send.
 *  - failover: on the 3-node cluster, 4 writers append single events to any
 *    node, retrying every error (on a node's leader hint "clinlog-leader",
 *    else on the next node) with the same batch; the leader (Cluster.Status)
 *    is SIGKILLed; time from the kill to the first successful append of a
 *    call started after the kill. 5 times, the killed node restarted each
 *    time and waited for (the leader sees it within 64 entries).
 *  - join: a one-node cluster loaded with 1,000,000 events (--quick:
 *    100,000; --join-events N) through AppendStream in batches of 1000
 *    (--join-batch; the total is rounded up to whole batches). A batch is
 *    about one Raft entry, and the leader keeps the last 8192 entries
 *    (snapshot_trailing): with batches of 1000 the new member receives the
 *    log as Raft entries; smaller batches (e.g. 64) make the leader
 *    snapshot, so the member catches up by snapshot + FetchRecords. Then an
 *    empty member (`init --replica-of`, --join) is added: time until its
 *    store holds every event, and its RSS (VmRSS, VmHWM, RssAnon from /proc)
 *    when idle, at 25, 50, 75 and 100% of the catch-up, and peak. Progress
 *    is a one-event Read of the event at each mark (Cluster.Status is
 *    answered by the Raft loop, which is busy while a node catches up). The
 *    source's RSS after its load is reported next to it.
 * Targets checked: >= 50,000 events/s with batched appends on the cluster;
 * p99 <= 20 ms at half that load; failover <= 3 s (default election timeout
 * 1000 ms); the joining node's memory bounded (RSS growth over the second
 * half of the catch-up < 64 MiB, where the data fetched is hundreds of MB).
 *
 * Data directories are removed at the end; the logs too, unless something
 * failed (then D is kept and its path printed). */
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
#include "bench/benchutil.h"
#include "bench/workload.h"
#include "store/keys.h"

#define mono bench_mono
#define APPEND_PATH "/clinlog.v1.Log/Append"
#define STATUS_PATH "/clinlog.v1.Cluster/Status"
#define ADD_PATH "/clinlog.v1.Cluster/AddNode"

/* ---------------------------------------------------------- nodes */

typedef struct node {
  char name[16];
  uint64_t id;
  int join; /* started with --join (a member added later) */
  char api[32], raft[32], dir[4200], log[4300];
  bench_proc p;
  cl_client *c; /* kept across restarts: the channel reconnects */
} node;

typedef struct env {
  char clinlogd[PATH_MAX + 16], clinlog[PATH_MAX + 16];
  char base[4096], keyfile[4200], initlog[4200];
  int quick, failed;
  int hung;             /* nodes that had to be SIGKILLed at a stop */
  uint64_t join_events; /* 0: the default */
  size_t join_batch;    /* events per AppendStream batch of the join load */
  const char *runp;     /* --run-projections for every clinlogd, NULL: its default */
  cl_signer admin;
} env;

static int node_init(env *e, node *n, const char *name, uint64_t id, int join) {
  memset(n, 0, sizeof *n);
  int ports[2];
  if (bench_free_ports(ports, 2) != 0) {
    fprintf(stderr, "no free loopback ports\n");
    return -1;
  }
  snprintf(n->name, sizeof n->name, "%s", name);
  n->id = id;
  n->join = join;
  snprintf(n->api, sizeof n->api, "127.0.0.1:%d", ports[0]);
  snprintf(n->raft, sizeof n->raft, "127.0.0.1:%d", ports[1]);
  snprintf(n->dir, sizeof n->dir, "%s/%s", e->base, name);
  snprintf(n->log, sizeof n->log, "%s/%s.log", e->base, name);
  bench_rmrf(n->dir);
  unlink(n->log);
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = n->api;
  o.plaintext = 1;
  o.timeout_ms = 30000;
  cl_err err;
  if (cl_client_open(&o, &n->c, &err) != 0) {
    fprintf(stderr, "client for %s: %s\n", n->api, err.msg);
    return -1;
  }
  return 0;
}

/* `clinlog init` of the node's directory: a new log (src NULL) or an empty
 * member store of the cluster whose store is src. */
static int node_create(env *e, node *n, const char *src) {
  char *fresh[] = {e->clinlog, "init", n->dir, "--admin", "admin", "--admin-key", e->keyfile, NULL};
  char *member[] = {e->clinlog, "init", n->dir, "--replica-of", (char *)src, NULL};
  int rc = bench_run(src ? member : fresh, e->initlog);
  if (rc != 0)
    fprintf(stderr, "clinlog init %s%s%s failed (exit %d); see %s\n", n->dir,
            src ? " --replica-of " : "", src ? src : "", rc, e->initlog);
  return rc ? -1 : 0;
}

static int node_start(env *e, node *n) {
  char id[24];
  snprintf(id, sizeof id, "%" PRIu64, n->id);
  char *argv[16];
  int k = 0;
  argv[k++] = e->clinlogd;
  argv[k++] = "--data", argv[k++] = n->dir;
  argv[k++] = "--dev";
  argv[k++] = "--listen", argv[k++] = n->api;
  argv[k++] = "--node-id", argv[k++] = id;
  argv[k++] = "--raft-listen", argv[k++] = n->raft;
  argv[k++] = "--audit",
  argv[k++] = "off"; /* replication's cost alone (bench audit: the trail's) */
  if (n->join)
    argv[k++] = "--join";
  if (e->runp)
    argv[k++] = "--run-projections", argv[k++] = (char *)e->runp;
  argv[k] = NULL;
  if (bench_proc_start(argv, n->log, &n->p) != 0) {
    e->failed = 1;
    return -1;
  }
  return 0;
}

/* Stops the processes of nodes[0..count) together (each drains ~1 s). */
static void nodes_stop(env *e, node *ns, int count) {
  for (int i = 0; i < count; i++)
    if (ns[i].p.pid > 0)
      kill(ns[i].p.pid, SIGTERM);
  for (int i = 0; i < count; i++)
    if (bench_proc_stop(&ns[i].p)) {
      fprintf(stderr, "%s did not stop within 20 s of SIGTERM (killed); see %s\n", ns[i].name,
              ns[i].log);
      e->hung++;
    }
}

static void nodes_free(env *e, node *ns, int count) {
  nodes_stop(e, ns, count);
  for (int i = 0; i < count; i++) {
    cl_client_close(ns[i].c);
    ns[i].c = NULL;
    if (ns[i].dir[0])
      bench_rmrf(ns[i].dir);
  }
}

/* ---------------------------------------------------------- Cluster API */

static Clinlog__V1__ClusterStatus *status_of(node *n, int timeout_ms, cl_err *err) {
  Clinlog__V1__ClusterStatusRequest req = CLINLOG__V1__CLUSTER_STATUS_REQUEST__INIT;
  ProtobufCMessage *out;
  if (cl_client_unary_md(n->c, STATUS_PATH, &req.base, &clinlog__v1__cluster_status__descriptor,
                         timeout_ms, NULL, NULL, NULL, 0, &out, NULL, err) != 0)
    return NULL;
  return (Clinlog__V1__ClusterStatus *)out;
}

static void status_free(Clinlog__V1__ClusterStatus *s) {
  if (s)
    clinlog__v1__cluster_status__free_unpacked(s, NULL);
}

/* Index in ns of the leader as the live nodes see it, waiting up to
 * `secs` for one; -1 if none. */
static int find_leader(node *ns, int count, double secs) {
  double until = mono() + secs;
  do {
    for (int i = 0; i < count; i++) {
      if (ns[i].p.pid <= 0)
        continue;
      cl_err err;
      Clinlog__V1__ClusterStatus *s = status_of(&ns[i], 1000, &err);
      uint64_t lid = s ? s->leader_id : 0;
      status_free(s);
      for (int k = 0; lid && k < count; k++)
        if (ns[k].id == lid && ns[k].p.pid > 0)
          return k;
    }
    bench_sleep_ms(50);
  } while (mono() < until);
  return -1;
}

/* Cluster.AddNode on `leader`; returns once n votes (or with an error). */
static int add_node(node *leader, node *n, int timeout_ms) {
  Clinlog__V1__AddNodeRequest req = CLINLOG__V1__ADD_NODE_REQUEST__INIT;
  req.id = n->id;
  req.raft_address = n->raft;
  req.api_address = n->api;
  ProtobufCMessage *out;
  cl_err err;
  char hint[128];
  if (cl_client_unary_md(leader->c, ADD_PATH, &req.base, &clinlog__v1__cluster_status__descriptor,
                         timeout_ms, NULL, "clinlog-leader", hint, sizeof hint, &out, NULL,
                         &err) != 0) {
    fprintf(stderr, "AddNode %" PRIu64 " on %s: %s%s%s\n", n->id, leader->api, err.msg,
            hint[0] ? "; leader hint " : "", hint);
    return -1;
  }
  protobuf_c_message_free_unpacked(out, NULL);
  return 0;
}

/* Creates and starts a one-node cluster on ns[0] (a fresh `clinlog init`)
 * and adds ns[1..count) to it, each an empty `init --replica-of` store
 * started with --join. */
static int cluster_up(env *e, node *ns, int count, const char *prefix) {
  for (int i = 0; i < count; i++) {
    char name[16];
    snprintf(name, sizeof name, "%s%d", prefix, i + 1);
    if (node_init(e, &ns[i], name, (uint64_t)i + 1, i > 0))
      return -1;
  }
  if (node_create(e, &ns[0], NULL) || node_start(e, &ns[0]))
    return -1;
  if (find_leader(ns, 1, 20) != 0) {
    fprintf(stderr, "%s did not become leader; see %s\n", ns[0].name, ns[0].log);
    return -1;
  }
  for (int i = 1; i < count; i++) {
    if (node_create(e, &ns[i], ns[0].dir) || node_start(e, &ns[i]) ||
        add_node(&ns[0], &ns[i], 120000))
      return -1;
  }
  return 0;
}

/* ---------------------------------------------------------- throughput */

static bench_result measure(cl_client *c, size_t bs, int conc, const cl_signer *key, unsigned *seed,
                            int quick) {
  size_t calls = bs == 1 ? (conc == 16 ? 16000 : 48000) : (conc == 16 ? 1600 : 3200);
  if (quick)
    calls /= 4;
  size_t per = calls / (size_t)conc;
  bench_worker *ws = bench_workers_make(conc, per, bs, key, seed);
  double stop = mono() + (quick ? 4 : 10); /* at most this long */
  for (int i = 0; i < conc; i++)
    ws[i].stop_at = stop;
  bench_result r = bench_drive(ws, conc, c, NULL);
  bench_workers_free(ws, conc);
  return r;
}

/* Batch 64, concurrency 16, open loop at `rate` events/s for `secs`. */
static bench_result measure_rate(cl_client *c, double rate, double secs, const cl_signer *key,
                                 unsigned *seed) {
  const int conc = 16;
  const size_t bs = 64;
  double interval = (double)conc * (double)bs / rate; /* per worker */
  size_t per = (size_t)(secs / interval) + 1;
  bench_worker *ws = bench_workers_make(conc, per, bs, key, seed);
  for (int i = 0; i < conc; i++) {
    ws[i].interval = interval;
    ws[i].offset = interval * i / conc;
  }
  bench_result r = bench_drive(ws, conc, c, NULL);
  bench_workers_free(ws, conc);
  return r;
}

typedef struct tp_row {
  size_t bs;
  int conc;
  bench_result cluster, single;
} tp_row;

typedef struct tp_out {
  tp_row rows[4];
  int nrows;
  double half_rate;
  bench_result half, half_single; /* the same offered rate on the one-node cluster */
  int ran;
} tp_out;

static void tp_cluster(env *e, node *ns, tp_out *t, unsigned *seed) {
  static const size_t bsizes[2] = {1, 64};
  static const int concs[2] = {16, 64};
  int li = find_leader(ns, 3, 10);
  if (li < 0) {
    fprintf(stderr, "throughput: no leader\n");
    e->failed = 1;
    return;
  }
  t->nrows = 0;
  for (int bi = 0; bi < 2; bi++)
    for (int ci = 0; ci < 2; ci++) {
      tp_row *r = &t->rows[t->nrows++];
      r->bs = bsizes[bi];
      r->conc = concs[ci];
      r->cluster = measure(ns[li].c, r->bs, r->conc, &e->admin, seed, e->quick);
      e->failed |= r->cluster.failed;
      fprintf(stderr, "  cluster  batch %2zu conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
              r->bs, r->conc, r->cluster.eps, r->cluster.p50_ms, r->cluster.p99_ms);
    }
  double full = t->rows[2].cluster.eps; /* batch 64, concurrency 16 */
  if (full > 0) {
    t->half_rate = full / 2;
    t->half = measure_rate(ns[li].c, t->half_rate, e->quick ? 5 : 10, &e->admin, seed);
    e->failed |= t->half.failed;
    fprintf(stderr,
            "  cluster  half load %.0f ev/s: achieved %.0f, p50 %.2f ms p99 %.2f ms "
            "(from the send: %.2f / %.2f)\n",
            t->half_rate, t->half.eps, t->half.p50_ms, t->half.p99_ms, t->half.sent_p50_ms,
            t->half.sent_p99_ms);
  }
  t->ran = 1;
}

static void tp_single(env *e, tp_out *t, unsigned *seed) {
  node one;
  if (cluster_up(e, &one, 1, "single") == 0) {
    for (int i = 0; i < t->nrows; i++) {
      tp_row *r = &t->rows[i];
      r->single = measure(one.c, r->bs, r->conc, &e->admin, seed, e->quick);
      e->failed |= r->single.failed;
      fprintf(stderr, "  single   batch %2zu conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
              r->bs, r->conc, r->single.eps, r->single.p50_ms, r->single.p99_ms);
    }
    if (t->half_rate > 0) {
      t->half_single = measure_rate(one.c, t->half_rate, e->quick ? 5 : 10, &e->admin, seed);
      e->failed |= t->half_single.failed;
      fprintf(stderr, "  single   same rate %.0f ev/s: p50 %.2f ms p99 %.2f ms\n", t->half_rate,
              t->half_single.p50_ms, t->half_single.p99_ms);
    }
  } else {
    e->failed = 1;
  }
  nodes_free(e, &one, 1);
}

/* ---------------------------------------------------------- failover */

#define TRIALS 5

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
                                  &clinlog__v1__append_response__descriptor, 1500, NULL, "clinlog-leader",
                                  hint, sizeof hint, &out, &st, &err);
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
    int li = find_leader(ns, count, 2);
    cl_err err;
    Clinlog__V1__ClusterStatus *s = li >= 0 ? status_of(&ns[li], 1000, &err) : NULL;
    int ok = 0;
    for (size_t i = 0; s && !strcmp(s->state, "leader") && i < s->n_nodes; i++)
      if (s->nodes[i]->id == ns[k].id && s->nodes[i]->match_index > 0 && s->nodes[i]->lag <= 64)
        ok = 1;
    status_free(s);
    if (ok)
      return 0;
    bench_sleep_ms(100);
  }
  return -1;
}

typedef struct fo_out {
  double t[TRIALS], rejoin[TRIALS];
  uint64_t killed[TRIALS];
  int n;
  double max, median;
  unsigned long long ok, retries;
  int ran;
} fo_out;

static void failover(env *e, node *ns, fo_out *f) {
  fo_shared s = {.ns = ns, .count = 3, .key = &e->admin};
  pthread_mutex_init(&s.mu, NULL);
  fo_writer w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (fo_writer){.s = &s, .cur = i % 3, .seed = 777u + (unsigned)i};
    pthread_create(&w[i].t, NULL, fo_run, &w[i]);
  }
  bench_sleep_ms(1000); /* writers running */
  f->ran = 1;
  for (int trial = 0; trial < TRIALS; trial++) {
    int li = find_leader(ns, 3, 15);
    if (li < 0) {
      fprintf(stderr, "failover: no leader before trial %d\n", trial + 1);
      e->failed = 1;
      break;
    }
    atomic_store(&s.first_ok, 0);
    int64_t k = mono_ns();
    atomic_store(&s.kill_ns, k);
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
    double r0 = mono();
    if (node_start(e, &ns[li]) || wait_rejoined(ns, 3, li, 60)) {
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
    bench_sleep_ms(1000);
  }
  atomic_store(&s.stop, 1);
  for (int i = 0; i < 4; i++)
    pthread_join(w[i].t, NULL);
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

typedef struct rss {
  double rss_mb, hwm_mb, anon_mb, file_mb; /* VmRSS, VmHWM, RssAnon, RssFile */
} rss;

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

typedef struct join_out {
  uint64_t events, source_size, raft_last_index; /* the source's, at the add */
  double load_eps, add_s, catchup_s;
  rss idle, at[4], final, source; /* source: the loaded node, before the add */
  double t_at[4], peak_rss_mb;
  int ran, done;
} join_out;

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

static void join(env *e, join_out *j) {
  node ns[2];
  memset(ns, 0, sizeof ns);
  j->ran = 1;
  j->events = e->join_events ? e->join_events : e->quick ? 100000 : 1000000;
  fprintf(stderr, "  join: loading %" PRIu64 " events\n", j->events);
  if (cluster_up(e, ns, 1, "src") || load(e, &ns[0], j->events, &j->load_eps)) {
    e->failed = 1;
    nodes_free(e, ns, 1);
    return;
  }
  cl_err err;
  Clinlog__V1__ClusterStatus *st = status_of(&ns[0], 5000, &err);
  int answered = st != NULL;
  j->source_size = st ? st->tree_size : 0;
  j->raft_last_index = st ? st->last_index : 0;
  status_free(st);
  if (j->source_size < j->events) {
    fprintf(stderr, "join: the source reports %" PRIu64 " events (%s)\n", j->source_size,
            answered ? "short" : err.msg);
    e->failed = 1;
    nodes_free(e, ns, 1);
    return;
  }
  if (node_init(e, &ns[1], "new", 2, 1) || node_create(e, &ns[1], ns[0].dir) ||
      node_start(e, &ns[1])) {
    e->failed = 1;
    nodes_free(e, ns, 2);
    return;
  }
  bench_sleep_ms(500);
  j->idle = rss_of(ns[1].p.pid);
  j->source = rss_of(ns[0].p.pid);
  sampler s = {.n = &ns[1], .target = j->source_size};
  st = status_of(&ns[1], 5000, &err);
  s.base = st ? st->tree_size : 0;
  status_free(st);
  fprintf(stderr, "  join: %" PRIu64 " events on the source; adding an empty member\n",
          j->source_size);
  s.t0 = mono();
  pthread_create(&s.t, NULL, sample, &s);
  int rc = add_node(&ns[0], &ns[1], 30 * 60 * 1000);
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
    st = status_of(&ns[1], 5000, &err);
    fprintf(stderr, "join: the new node has %" PRIu64 " of %" PRIu64 " events; see %s and %s\n",
            st ? st->tree_size : 0, j->source_size, ns[0].log, ns[1].log);
    status_free(st);
    e->failed = 1;
  } else {
    j->done = 1;
    j->catchup_s = s.t_done - s.t0;
  }
  nodes_free(e, ns, 2);
}

/* ---------------------------------------------------------- report */

static const char *yes(int ok) { return ok ? "true" : "false"; }
static const char *met(int ok) { return ok ? "MET" : "MISSED"; }

typedef struct verdicts {
  double best_batched;
  int tp_ok, half_ok, fo_ok, mem_ok;
  double mem_growth_mb;
} verdicts;

static verdicts judge(const tp_out *t, const fo_out *f, const join_out *j) {
  verdicts v = {0, 0, 0, 0, 0, 0};
  for (int i = 0; i < t->nrows; i++)
    if (t->rows[i].bs > 1 && t->rows[i].cluster.eps > v.best_batched)
      v.best_batched = t->rows[i].cluster.eps;
  v.tp_ok = v.best_batched >= 50000;
  v.half_ok = t->half.events > 0 && t->half.p99_ms <= 20;
  v.fo_ok = f->n == TRIALS && f->max > 0 && f->max <= 3;
  v.mem_growth_mb = j->done ? j->at[3].rss_mb - j->at[1].rss_mb : 0;
  v.mem_ok = j->done && v.mem_growth_mb < 64;
  return v;
}

static void print_json(const env *e, const char *machine, const tp_out *t, const fo_out *f,
                       const join_out *j) {
  verdicts v = judge(t, f, j);
  printf("{\"machine\":\"%s\",\"quick\":%s", machine, yes(e->quick));
  if (t->ran) {
    printf(",\"throughput\":[");
    for (int i = 0; i < t->nrows; i++) {
      const tp_row *r = &t->rows[i];
      printf("%s{\"batch\":%zu,\"concurrency\":%d,\"cluster_events_per_s\":%.0f,"
             "\"cluster_p50_ms\":%.3f,\"cluster_p99_ms\":%.3f,\"single_events_per_s\":%.0f,"
             "\"single_p50_ms\":%.3f,\"single_p99_ms\":%.3f}",
             i ? "," : "", r->bs, r->conc, r->cluster.eps, r->cluster.p50_ms, r->cluster.p99_ms,
             r->single.eps, r->single.p50_ms, r->single.p99_ms);
    }
    printf("],\"half_load\":{\"batch\":64,\"concurrency\":16,\"offered_events_per_s\":%.0f,"
           "\"achieved_events_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p50_from_send_ms\":%.3f,\"p99_from_send_ms\":%.3f,"
           "\"single_node_same_rate\":{\"achieved_events_per_s\":%.0f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f}}",
           t->half_rate, t->half.eps, t->half.p50_ms, t->half.p99_ms, t->half.sent_p50_ms,
           t->half.sent_p99_ms, t->half_single.eps, t->half_single.p50_ms, t->half_single.p99_ms);
  }
  if (f->ran) {
    printf(",\"failover\":{\"writers\":4,\"batch\":1,\"trials\":[");
    for (int i = 0; i < f->n; i++)
      printf("%s{\"killed_node\":%" PRIu64 ",\"seconds\":%.3f,\"rejoin_seconds\":%.3f}",
             i ? "," : "", f->killed[i], f->t[i], f->rejoin[i]);
    printf("],\"max_s\":%.3f,\"median_s\":%.3f,\"appends_ok\":%llu,\"retries\":%llu}", f->max,
           f->median, f->ok, f->retries);
  }
  if (j->ran) {
    printf(",\"join\":{\"events_loaded\":%" PRIu64 ",\"batch\":%zu,\"source_tree_size\":%" PRIu64
           ",\"source_raft_last_index\":%" PRIu64
           ",\"load_events_per_s\":%.0f,\"caught_up\":%s,\"catch_up_s\":%.3f,"
           "\"add_node_s\":%.3f,\"rss_mb\":{\"idle\":%.1f,\"p25\":%.1f,\"p50\":%.1f,"
           "\"p75\":%.1f,\"p100\":%.1f,\"final\":%.1f},\"hwm_mb_final\":%.1f,"
           "\"peak_rss_mb_sampled\":%.1f,\"final_anon_mb\":%.1f,\"final_file_mb\":%.1f,"
           "\"source_rss_mb\":%.1f,\"source_hwm_mb\":%.1f,\"source_anon_mb\":%.1f}",
           j->events, e->join_batch, j->source_size, j->raft_last_index, j->load_eps, yes(j->done),
           j->catchup_s, j->add_s, j->idle.rss_mb, j->at[0].rss_mb, j->at[1].rss_mb,
           j->at[2].rss_mb, j->at[3].rss_mb, j->final.rss_mb, j->final.hwm_mb, j->peak_rss_mb,
           j->final.anon_mb, j->final.file_mb, j->source.rss_mb, j->source.hwm_mb,
           j->source.anon_mb);
  }
  printf(",\"targets\":{");
  const char *sep = "";
  if (t->ran) {
    printf("\"batched_events_per_s\":%.0f,\"batched_ok\":%s,\"half_load_p99_ms\":%.3f,"
           "\"half_load_ok\":%s",
           v.best_batched, yes(v.tp_ok), t->half.p99_ms, yes(v.half_ok));
    sep = ",";
  }
  if (f->ran) {
    printf("%s\"failover_max_s\":%.3f,\"failover_ok\":%s", sep, f->max, yes(v.fo_ok));
    sep = ",";
  }
  if (j->ran)
    printf("%s\"join_rss_growth_50_100_mb\":%.1f,\"join_memory_bounded\":%s", sep, v.mem_growth_mb,
           yes(v.mem_ok));
  printf("},\"nodes_killed_at_stop\":%d,\"ok\":%s}\n", e->hung, yes(!e->failed));
}

static void print_human(const env *e, const char *machine, const tp_out *t, const fo_out *f,
                        const join_out *j) {
  verdicts v = judge(t, f, j);
  printf("clinlog-bench cluster — %s; every clinlogd and the client on this machine,\n"
         "plaintext loopback, durable commits (Raft log fsync), batch signatures%s\n",
         machine, e->quick ? "; --quick" : "");
  if (t->ran) {
    printf("\nunary Append to the leader: 3-node cluster vs one-node cluster (run after it)\n"
           "%-5s %-4s | %12s %8s %8s | %12s %8s %8s | %6s\n",
           "batch", "conc", "cluster ev/s", "p50 ms", "p99 ms", "single ev/s", "p50 ms", "p99 ms",
           "ratio");
    for (int i = 0; i < t->nrows; i++) {
      const tp_row *r = &t->rows[i];
      printf("%-5zu %-4d | %12.0f %8.2f %8.2f | %12.0f %8.2f %8.2f | %6.2f\n", r->bs, r->conc,
             r->cluster.eps, r->cluster.p50_ms, r->cluster.p99_ms, r->single.eps, r->single.p50_ms,
             r->single.p99_ms, r->single.eps > 0 ? r->cluster.eps / r->single.eps : 0);
    }
    printf("half load (cluster, batch 64, conc 16, open loop at %.0f ev/s): achieved %.0f ev/s,\n"
           "  from the scheduled start p50 %.2f ms, p99 %.2f ms; from the send p50 %.2f ms, "
           "p99 %.2f ms\n",
           t->half_rate, t->half.eps, t->half.p50_ms, t->half.p99_ms, t->half.sent_p50_ms,
           t->half.sent_p99_ms);
    printf("  the same offered rate on the one-node cluster: p50 %.2f ms, p99 %.2f ms\n",
           t->half_single.p50_ms, t->half_single.p99_ms);
  }
  if (f->ran) {
    printf("\nfailover: 4 writers (batch 1) on any node; leader SIGKILLed; kill -> first append\n");
    for (int i = 0; i < f->n; i++)
      printf("  trial %d: killed node %" PRIu64 ": %.3f s (restarted node caught up in %.2f s)\n",
             i + 1, f->killed[i], f->t[i], f->rejoin[i]);
    printf("  max %.3f s, median %.3f s; %llu appends, %llu retried calls\n", f->max, f->median,
           f->ok, f->retries);
  }
  if (j->ran) {
    printf("\njoin: %" PRIu64 " events loaded (AppendStream, batches of %zu) at %.0f ev/s "
           "(source Raft last index %" PRIu64 "); an empty member added\n",
           j->events, e->join_batch, j->load_eps, j->raft_last_index);
    if (j->done)
      printf("  caught up (%" PRIu64 " events) in %.2f s; AddNode returned after %.2f s\n",
             j->source_size, j->catchup_s, j->add_s);
    else
      printf("  did NOT catch up (AddNode after %.2f s)\n", j->add_s);
    printf("  new node RSS MB: idle %.1f", j->idle.rss_mb);
    for (int i = 0; i < 4; i++)
      printf(", %d%% %.1f (at %.1f s)", 25 * (i + 1), j->at[i].rss_mb, j->t_at[i]);
    printf("\n  final RSS %.1f MB (anon %.1f, file %.1f), peak (VmHWM) %.1f MB\n"
           "  for comparison, the loaded source node before the add: RSS %.1f MB (anon %.1f), "
           "peak %.1f MB\n",
           j->final.rss_mb, j->final.anon_mb, j->final.file_mb, j->final.hwm_mb, j->source.rss_mb,
           j->source.anon_mb, j->source.hwm_mb);
  }
  printf("\ntargets:\n");
  if (t->ran)
    printf("  batched appends on the cluster >= 50000 ev/s: %.0f %s\n"
           "  p99 at half that load <= 20 ms: %.2f ms %s\n",
           v.best_batched, met(v.tp_ok), t->half.p99_ms, met(v.half_ok));
  if (f->ran)
    printf("  failover <= 3 s (election timeout 1000 ms): max %.3f s %s\n", f->max, met(v.fo_ok));
  if (j->ran)
    printf("  join memory bounded (RSS growth from 50%% to 100%% of the catch-up < 64 MB): "
           "%.1f MB %s\n",
           v.mem_growth_mb, met(v.mem_ok));
  if (e->hung)
    printf("\nwarning: %d clinlogd process(es) ignored SIGTERM for 20 s and were killed\n",
           e->hung);
}

/* ---------------------------------------------------------- main */

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench cluster [--clinlogd PATH] [--clinlog PATH] [--dir D]\n"
                  "                             [--quick] [--json] "
                  "[--only throughput|failover|join]\n"
                  "                             [--join-events N] [--join-batch N]\n"
                  "                             [--run-projections all|none]\n");
  return 2;
}

static int set_exe(char *out, size_t n, const char *opt, const char *argv0, const char *name) {
  return bench_find_exe("cluster", opt, argv0, name, out, n);
}

int bench_cluster_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-cluster", *only = NULL, *exe_d = NULL, *exe_c = NULL;
  static env e;
  int json = 0;
  e.join_batch = 1000;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--clinlogd") && i + 1 < argc)
      exe_d = argv[++i];
    else if (!strcmp(argv[i], "--clinlog") && i + 1 < argc)
      exe_c = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      e.quick = 1;
    else if (!strcmp(argv[i], "--join-events") && i + 1 < argc && atoll(argv[i + 1]) >= 1000)
      e.join_events = (uint64_t)atoll(argv[++i]);
    else if (!strcmp(argv[i], "--join-batch") && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
             atoi(argv[i + 1]) <= 10000)
      e.join_batch = (size_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--run-projections") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "all") || !strcmp(argv[i + 1], "none")))
      e.runp = argv[++i];
    else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "throughput") || !strcmp(argv[i + 1], "failover") ||
              !strcmp(argv[i + 1], "join")))
      only = argv[++i];
    else
      return usage();
  }
  if (set_exe(e.clinlogd, sizeof e.clinlogd, exe_d, argv[0], "clinlogd") ||
      set_exe(e.clinlog, sizeof e.clinlog, exe_c, argv[0], "clinlog"))
    return 1;
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  snprintf(e.base, sizeof e.base, "%s", base);
  if (!getenv("CLINLOG_BENCH_KEEP")) /* keep the data dirs and node logs for a look */
    bench_rmrf(e.base);
  if (mkdir(e.base, 0700) != 0) {
    fprintf(stderr, "clinlog-bench cluster: cannot create %s\n", e.base);
    return 1;
  }
  snprintf(e.keyfile, sizeof e.keyfile, "%s/admin.key", e.base);
  snprintf(e.initlog, sizeof e.initlog, "%s/init.log", e.base);
  int do_tp = !only || !strcmp(only, "throughput"), do_fo = !only || !strcmp(only, "failover"),
      do_join = !only || !strcmp(only, "join");
  tp_out tp;
  fo_out fo;
  join_out jo;
  memset(&tp, 0, sizeof tp);
  memset(&fo, 0, sizeof fo);
  memset(&jo, 0, sizeof jo);
  unsigned seed = 4242;
  int have_key = 0;
  if (do_tp || do_fo) {
    node ns[3];
    memset(ns, 0, sizeof ns);
    fprintf(stderr, "clinlog-bench cluster: starting 3 nodes under %s\n", e.base);
    if (cluster_up(&e, ns, 3, "n") == 0 && cl_signer_load(&e.admin, e.keyfile, &err) == 0) {
      have_key = 1;
      if (do_tp)
        tp_cluster(&e, ns, &tp, &seed);
      if (do_fo)
        failover(&e, ns, &fo);
    } else {
      e.failed = 1;
    }
    nodes_free(&e, ns, 3);
    if (do_tp && have_key)
      tp_single(&e, &tp, &seed);
  }
  if (do_join) {
    if (!have_key) { /* the key file is made by the first init */
      node tmp;
      if (node_init(&e, &tmp, "keys", 9, 0) || node_create(&e, &tmp, NULL) ||
          cl_signer_load(&e.admin, e.keyfile, &err))
        e.failed = 1;
      else
        have_key = 1;
      nodes_free(&e, &tmp, 1);
    }
    if (have_key)
      join(&e, &jo);
  }
  char machine[128];
  bench_machine(machine, sizeof machine);
  if (json)
    print_json(&e, machine, &tp, &fo, &jo);
  else
    print_human(&e, machine, &tp, &fo, &jo);
  if (have_key)
    cl_signer_free(&e.admin);
  if (e.failed || e.hung) {
    fprintf(stderr, "clinlog-bench cluster: %s; logs kept in %s\n",
            e.failed ? "something failed" : "a node hung at stop", e.base);
    return e.failed ? 1 : 0;
  }
  if (!getenv("CLINLOG_BENCH_KEEP")) /* keep the data dirs and node logs for a look */
    bench_rmrf(e.base);
  return 0;
}
