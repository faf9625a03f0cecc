/* clinlog-bench cluster: replicated clinlogd processes on loopback.
 *
 *   clinlog-bench cluster [--clinlogd PATH] [--clinlog PATH] [--dir D]
 *                         [--quick] [--json] [--seconds S] [--only throughput|failover|join]
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
 *    leader at batch 1 (concurrency 1, 16 and 64) and 64 (16 and 64): events/s,
 *    p50/p99.
 *    The same against a one-node cluster (one clinlogd, run after the
 *    3-node cluster is stopped, so both see the same idle machine). Then
 *    batch 64 / concurrency 16 open loop at half the measured cluster rate
 *    (on the cluster, then at the same rate on the one-node cluster):
 *    p50/p99 counted from each call's scheduled start, and from its send.
 *    For each 3-node scenario also: CPU µs per event of the three clinlogd
 *    together (/proc) and of the client (getrusage), fsync + fdatasync
 *    calls per event of the three (perf stat on the syscall tracepoints,
 *    bench/syscount.h; left out when perf cannot count), and each node's
 *    peak RSS (VmHWM) after the scenarios.
 *    Each scenario runs S seconds (--seconds; 5, --quick 1: the time
 *    clinlog-bench etcd and pg give each of theirs), driven by the load
 *    generator the peers use (bench/loadgen.h), batches signed before the
 *    clock (a pool sized above this machine's rates; should a run use it
 *    all, it signs more in its loop, before each call's clock, and says so);
 *    the half load 10 s (--quick 3). Last, quiet writes: one event a call,
 *    open loop at 2 calls a second for 10 s (--quick 4), on each cluster
 *    after its nodes went idle: the latency of a write that follows a
 *    pause (a 3-node leader used to hold it for up to a heartbeat:
 *    replication/pipeline.c).
 *  - failover: on the 3-node cluster, 4 writers append single events to any
 *    node, retrying every error (on a node's leader hint "clinlog-leader",
 *    else on the next node) with the same batch; the leader (Cluster.Status)
 *    is SIGKILLed; time from the kill to the first successful append of a
 *    call started after the kill. 5 times (--quick: 2), the killed node
 *    restarted each time and waited for (the leader sees it within 64
 *    entries). Along the way: the appends/s of every 100 ms (the failover
 *    timeline) and, for 1 s before each kill, the followers' lag as the
 *    leader's Cluster.Status gives it every 100 ms.
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
#include "bench/bench_cluster_int.h"
#include "bench/benchutil.h"
#include "bench/syscount.h"
#include "bench/workload.h"
#include "store/keys.h"


/* ---------------------------------------------------------- throughput */

/* Pre-signed batches for one scenario of `seconds`: enough at rates above
 * this machine's (one node or three, docs/bench.md); a faster run signs the
 * rest in its loop, outside each call's latency (reported). */
static size_t pool_batches(size_t bs, double seconds) {
  double eps = bs == 1 ? 15000 : 80000;
  return (size_t)(eps * seconds / (double)bs) + 64;
}

/* Closed loop for `seconds` (rate 0), or open loop at `rate` events/s in
 * all; `what` names the run in a note when the pool ran out. */
static bench_result measure(cl_client *c, size_t bs, int conc, double rate, double seconds,
                            const cl_signer *key, unsigned *seed, const char *what) {
  bench_pool pool;
  size_t n = rate > 0 ? (size_t)(rate * seconds / (double)bs) + (size_t)conc + 1
                      : pool_batches(bs, seconds);
  bench_pool_make(&pool, n, bs, key, seed);
  double interval = rate > 0 ? (double)conc * (double)bs / rate : 0; /* per thread */
  bench_result r = bench_append_run(&pool, conc, c, NULL, seconds, interval, key);
  size_t live = atomic_load(&pool.live);
  if (live)
    fprintf(stderr,
            "clinlog-bench cluster: %s batch %zu conc %d: %zu pre-signed batches ran "
            "out: %zu signed in the loop\n",
            what, bs, conc, n, live);
  bench_pool_free(&pool);
  return r;
}

typedef struct tp_row {
  size_t bs;
  int conc;
  bench_result cluster, single;
  /* the 3-node run's: CPU µs per event of the three clinlogd together
   * (/proc) and of this client (getrusage), fsync + fdatasync calls per
   * event of the three (bench/syscount.h); -1 when unread */
  double srv_us, cli_us, syncs_per_event;
} tp_row;

typedef struct tp_out {
  tp_row rows[5];
  int nrows;
  double half_rate;
  bench_result half, half_single; /* the same offered rate on the one-node cluster */
  double half_settle_s, half_single_settle_s; /* waited for idle nodes first (settle) */
  bench_result quiet, quiet_single;           /* one event a call at QUIET_RATE, open loop */
  double node_hwm_mb[3];          /* each node's peak RSS (VmHWM) after the scenarios */
  int ran;
} tp_out;

/* CPU seconds of the nodes' clinlogd together, or -1 if one is unread. */
static double nodes_cpu_s(const node *ns, int count) {
  double sum = 0;
  for (int i = 0; i < count; i++) {
    double v = bench_proc_cpu_s(ns[i].p.pid);
    if (v < 0)
      return -1;
    sum += v;
  }
  return sum;
}

/* The half loads' open loop: its length, and how long it waits at most
 * for the nodes to settle first (settle). */
static double half_seconds(const env *e) { return e->quick ? 3 : 10; }
static double half_settle_cap(const env *e) { return e->quick ? 20 : 60; }

/* The quiet writes: calls a second (a pause of 5 heartbeat intervals
 * before each: longer than the 2 after which libraft demoted a quiet
 * follower, so a held write waited 0-100 ms, whatever the phase) and how
 * long. */
#define QUIET_RATE 2.0
static double quiet_seconds(const env *e) { return e->quick ? 4 : 10; }

/* Waits, at most `secs`, until the nodes are idle: their processes
 * together under 5 % of a core over 250 ms. What a closed-loop scenario
 * left behind (followers' apply, the projections' folds, memtable flushes
 * and compactions) is then done, so the open loop after it measures its
 * own load; its first calls otherwise met that backlog (a stall of 40-100
 * ms over the first calls of every quick run). Returns the seconds waited,
 * or -1 when the nodes never went idle (the run goes on). */
static double settle(const node *ns, int count, double secs) {
  double t0 = mono(), until = t0 + secs;
  while (mono() < until) {
    double c0 = nodes_cpu_s(ns, count), w0 = mono();
    bench_sleep_ms(250);
    double c1 = nodes_cpu_s(ns, count), w1 = mono();
    if (c0 < 0 || c1 < 0)
      return -1;
    if (c1 - c0 < 0.05 * (w1 - w0))
      return w1 - t0;
  }
  return -1;
}

/* The slowest call of a run, ms (0 when none ran). */
static double max_ms(const bench_result *r) { return r->nslowest ? r->slowest[0].lat * 1e3 : 0; }

/* "slowest":[[start s, latency ms], ...] of an open loop: a stall shows
 * as calls started close together (docs/bench.md). */
static void slowest_json(const bench_result *r) {
  printf("\"slowest\":[");
  for (size_t i = 0; i < r->nslowest; i++)
    printf("%s[%.3f,%.2f]", i ? "," : "", r->slowest[i].at, r->slowest[i].lat * 1e3);
  printf("]");
}

/* The quiet writes through c on the cluster ns[0..n) (after it settles),
 * into *out; `row` names it on stderr ("cluster", "single"). */
static void quiet_writes(env *e, const node *ns, int n, cl_client *c, unsigned *seed,
                         const char *row, bench_result *out) {
  char what[64];
  snprintf(what, sizeof what, "%s, quiet writes", n == 1 ? "1 node" : "3 nodes");
  (void)settle(ns, n, half_settle_cap(e));
  *out = measure(c, 1, 1, QUIET_RATE, quiet_seconds(e), &e->admin, seed, what);
  e->failed |= out->failed;
  fprintf(stderr, "  %-8s quiet writes %.0f/s: p50 %.2f ms p99 %.2f ms\n", row, QUIET_RATE,
          out->p50_ms, out->p99_ms);
}

static void tp_cluster(env *e, node *ns, tp_out *t, unsigned *seed) {
  /* batch 1 at concurrency 1, 16 and 64 (etcd's scenarios), batch 64 at 16 and 64 */
  static const struct {
    size_t bs;
    int conc;
  } sc[5] = {{1, 1}, {1, 16}, {1, 64}, {64, 16}, {64, 64}};
  int li = bc_find_leader(ns, 3, 10);
  if (li < 0) {
    fprintf(stderr, "throughput: no leader\n");
    e->failed = 1;
    return;
  }
  t->nrows = 0;
  for (size_t si = 0; si < sizeof sc / sizeof sc[0]; si++) {
    tp_row *r = &t->rows[t->nrows++];
    r->bs = sc[si].bs;
    r->conc = sc[si].conc;
    pid_t pids[3] = {ns[0].p.pid, ns[1].p.pid, ns[2].p.pid};
    bench_syscount sync_count;
    bench_syscount_start(&sync_count, pids, 3, e->base);
    double srv0 = nodes_cpu_s(ns, 3), cli0 = bench_self_cpu_s();
    r->cluster = measure(ns[li].c, r->bs, r->conc, 0, e->seconds, &e->admin, seed, "3 nodes");
    double srv1 = nodes_cpu_s(ns, 3), cli1 = bench_self_cpu_s();
    double syncs = bench_syscount_stop(&sync_count);
    double ev = r->cluster.events ? (double)r->cluster.events : 1;
    r->srv_us = srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) * 1e6 / ev : -1;
    r->cli_us = (cli1 - cli0) * 1e6 / ev;
    r->syncs_per_event = syncs >= 0 ? syncs / ev : -1;
    e->failed |= r->cluster.failed;
    fprintf(stderr, "  cluster  batch %2zu conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
            r->bs, r->conc, r->cluster.eps, r->cluster.p50_ms, r->cluster.p99_ms);
  }
  double full = 0; /* batch 64, concurrency 16 */
  for (int i = 0; i < t->nrows; i++)
    if (t->rows[i].bs == 64 && t->rows[i].conc == 16)
      full = t->rows[i].cluster.eps;
  if (full > 0) {
    t->half_rate = full / 2;
    t->half_settle_s = settle(ns, 3, half_settle_cap(e));
    t->half = measure(ns[li].c, 64, 16, t->half_rate, half_seconds(e), &e->admin, seed,
                      "3 nodes, half load");
    e->failed |= t->half.failed;
    fprintf(stderr,
            "  cluster  half load %.0f ev/s: achieved %.0f, p50 %.2f ms p99 %.2f ms "
            "(from the send: %.2f / %.2f)\n",
            t->half_rate, t->half.eps, t->half.p50_ms, t->half.p99_ms, t->half.sent_p50_ms,
            t->half.sent_p99_ms);
  }
  quiet_writes(e, ns, 3, ns[li].c, seed, "cluster", &t->quiet);
  for (int i = 0; i < 3; i++)
    t->node_hwm_mb[i] = bench_proc_hwm_mb(ns[i].p.pid);
  t->ran = 1;
}

static void tp_single(env *e, tp_out *t, unsigned *seed) {
  node one;
  if (bc_cluster_up(e, &one, 1, "single") == 0) {
    for (int i = 0; i < t->nrows; i++) {
      tp_row *r = &t->rows[i];
      r->single = measure(one.c, r->bs, r->conc, 0, e->seconds, &e->admin, seed, "1 node");
      e->failed |= r->single.failed;
      fprintf(stderr, "  single   batch %2zu conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
              r->bs, r->conc, r->single.eps, r->single.p50_ms, r->single.p99_ms);
    }
    if (t->half_rate > 0) {
      t->half_single_settle_s = settle(&one, 1, half_settle_cap(e));
      t->half_single = measure(one.c, 64, 16, t->half_rate, half_seconds(e), &e->admin, seed,
                               "1 node, half load's rate");
      e->failed |= t->half_single.failed;
      fprintf(stderr, "  single   same rate %.0f ev/s: p50 %.2f ms p99 %.2f ms\n", t->half_rate,
              t->half_single.p50_ms, t->half_single.p99_ms);
    }
    quiet_writes(e, &one, 1, one.c, seed, "single", &t->quiet_single);
  } else {
    e->failed = 1;
  }
  bc_nodes_free(e, &one, 1);
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
  v.fo_ok = f->n == f->trials && f->max > 0 && f->max <= 3;
  v.mem_growth_mb = j->done ? j->at[3].rss_mb - j->at[1].rss_mb : 0;
  v.mem_ok = j->done && v.mem_growth_mb < 64;
  return v;
}

static void print_json(const env *e, const char *machine, const tp_out *t, const fo_out *f,
                       const join_out *j) {
  verdicts v = judge(t, f, j);
  printf("{\"machine\":\"%s\",\"quick\":%s,\"seconds_per_scenario\":%.1f", machine, yes(e->quick),
         e->seconds);
  if (t->ran) {
    printf(",\"throughput\":[");
    for (int i = 0; i < t->nrows; i++) {
      const tp_row *r = &t->rows[i];
      printf("%s{\"batch\":%zu,\"concurrency\":%d,\"cluster_events_per_s\":%.0f,"
             "\"cluster_p50_ms\":%.3f,\"cluster_p99_ms\":%.3f,\"single_events_per_s\":%.0f,"
             "\"single_p50_ms\":%.3f,\"single_p99_ms\":%.3f",
             i ? "," : "", r->bs, r->conc, r->cluster.eps, r->cluster.p50_ms, r->cluster.p99_ms,
             r->single.eps, r->single.p50_ms, r->single.p99_ms);
      if (r->srv_us >= 0)
        printf(",\"server_cpu_us_per_event\":%.1f", r->srv_us);
      printf(",\"client_cpu_us_per_event\":%.1f", r->cli_us);
      if (r->syncs_per_event >= 0)
        printf(",\"fsyncs_per_event\":%.4f", r->syncs_per_event);
      bench_cdf_print(r->cluster.cdf_ms); /* the 3-node calls' */
      printf("}");
    }
    printf("],\"node_peak_rss_mb\":[%.1f,%.1f,%.1f]", t->node_hwm_mb[0], t->node_hwm_mb[1],
           t->node_hwm_mb[2]);
    printf(",\"half_load\":{\"batch\":64,\"concurrency\":16,\"offered_events_per_s\":%.0f,"
           "\"achieved_events_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p50_from_send_ms\":%.3f,\"p99_from_send_ms\":%.3f,\"settle_s\":%.2f,",
           t->half_rate, t->half.eps, t->half.p50_ms, t->half.p99_ms, t->half.sent_p50_ms,
           t->half.sent_p99_ms, t->half_settle_s);
    slowest_json(&t->half);
    printf(",\"single_node_same_rate\":{\"achieved_events_per_s\":%.0f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"settle_s\":%.2f,",
           t->half_single.eps, t->half_single.p50_ms, t->half_single.p99_ms,
           t->half_single_settle_s);
    slowest_json(&t->half_single);
    printf("}}");
    printf(",\"quiet_writes\":{\"calls_per_s\":%.0f,\"calls\":%zu,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"single_node\":{\"calls\":%zu,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f}}",
           QUIET_RATE, t->quiet.events, t->quiet.p50_ms, t->quiet.p99_ms, max_ms(&t->quiet),
           t->quiet_single.events, t->quiet_single.p50_ms, t->quiet_single.p99_ms,
           max_ms(&t->quiet_single));
  }
  if (f->ran) {
    printf(",\"failover\":{\"writers\":4,\"batch\":1,\"trials\":[");
    for (int i = 0; i < f->n; i++)
      printf("%s{\"killed_node\":%" PRIu64 ",\"seconds\":%.3f,\"rejoin_seconds\":%.3f}",
             i ? "," : "", f->killed[i], f->t[i], f->rejoin[i]);
    printf("],\"max_s\":%.3f,\"median_s\":%.3f,\"appends_ok\":%llu,\"retries\":%llu", f->max,
           f->median, f->ok, f->retries);
    if (f->lag_n)
      printf(",\"follower_lag\":{\"samples\":%zu,\"p50_entries\":%.0f,\"p99_entries\":%.0f,"
             "\"max_entries\":%.0f}",
             f->lag_n, f->lag_p50, f->lag_p99, f->lag_max);
    printf(",\"timeline\":{\"tick_s\":%.3f,\"kills_s\":[", FO_TICK);
    for (int i = 0; i < f->n; i++)
      printf("%s%.3f", i ? "," : "", f->kill_at[i]);
    printf("],\"first_append_s\":[");
    for (int i = 0; i < f->n; i++)
      printf("%s%.3f", i ? "," : "", f->ok_at[i]);
    printf("],\"appends_per_s\":[");
    for (size_t i = 0; i < f->tl_n; i++)
      printf("%s%.0f", i ? "," : "", f->tl[i]);
    printf("]}}");
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
           "p99 %.2f ms\n"
           "  (%s%.1f s after the scenario before)\n",
           t->half_rate, t->half.eps, t->half.p50_ms, t->half.p99_ms, t->half.sent_p50_ms,
           t->half.sent_p99_ms,
           t->half_settle_s < 0 ? "the nodes still busy, started anyway "
                                : "started once the nodes were idle, ",
           t->half_settle_s < 0 ? half_settle_cap(e) : t->half_settle_s);
    printf("  slowest calls (started at s: ms):");
    for (size_t i = 0; i < t->half.nslowest; i++)
      printf(" %.3f: %.1f", t->half.slowest[i].at, t->half.slowest[i].lat * 1e3);
    printf("\n  the same offered rate on the one-node cluster: p50 %.2f ms, p99 %.2f ms\n",
           t->half_single.p50_ms, t->half_single.p99_ms);
    printf("quiet writes (1 event a call, open loop at %.0f/s, %zu calls): cluster p50 %.2f ms, "
           "max %.2f ms;\n  one-node cluster p50 %.2f ms, max %.2f ms\n",
           QUIET_RATE, t->quiet.events, t->quiet.p50_ms, max_ms(&t->quiet), t->quiet_single.p50_ms,
           max_ms(&t->quiet_single));
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
                  "                             [--quick] [--json] [--seconds S] "
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
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc && atof(argv[i + 1]) > 0)
      e.seconds = atof(argv[++i]);
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
  if (e.seconds <= 0)
    e.seconds = e.quick ? 1 : 5;
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
    if (bc_cluster_up(&e, ns, 3, "n") == 0 && cl_signer_load(&e.admin, e.keyfile, &err) == 0) {
      have_key = 1;
      if (do_tp)
        tp_cluster(&e, ns, &tp, &seed);
      if (do_fo)
        bc_failover(&e, ns, &fo);
    } else {
      e.failed = 1;
    }
    bc_nodes_free(&e, ns, 3);
    if (do_tp && have_key)
      tp_single(&e, &tp, &seed);
  }
  if (do_join) {
    if (!have_key) { /* the key file is made by the first init */
      node tmp;
      if (bc_node_init(&e, &tmp, "keys", 9, 0) || bc_node_create(&e, &tmp, NULL) ||
          cl_signer_load(&e.admin, e.keyfile, &err))
        e.failed = 1;
      else
        have_key = 1;
      bc_nodes_free(&e, &tmp, 1);
    }
    if (have_key)
      bc_join(&e, &jo);
  }
  char machine[128];
  bench_machine(machine, sizeof machine);
  if (json)
    print_json(&e, machine, &tp, &fo, &jo);
  else
    print_human(&e, machine, &tp, &fo, &jo);
  free(fo.tl);
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
