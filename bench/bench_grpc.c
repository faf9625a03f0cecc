/* clinlog-bench grpc: the gRPC path, measured against the store in the
 * same run.
 *
 *   clinlog-bench grpc [--clinlogd PATH] [--dir D] [--quick] [--json] [--seconds S]
 *                      [--only unary|stream|fanout] [--run-projections all|none]
 *
 * Starts its own clinlogd (beside this program, or --clinlogd) on a free
 * loopback port with a fresh data directory and stops it at the end
 * (--run-projections: passed to it; none measures the write path alone). The
 * client is the C-core client library (adapters/grpc/client.h) on the same
 * machine; concurrency is threads, each with its own calls on one shared
 * channel, driven by the load generator the peers use (bench/loadgen.h:
 * closed loop, S seconds per scenario, --seconds; 5, --quick 1, as
 * clinlog-bench pg and etcd). Batches are signed (one batch signature)
 * before the clock starts: a pool per scenario sized above this machine's
 * rates (pool_batches), the same batches appended through gRPC, then by the
 * store; should a run use them all, it signs more in its loop, before each
 * call's clock (counted: grpc_signed_in_loop, store_signed_in_loop).
 *
 * Scenarios:
 *  - unary Append, batch 1 and 64, concurrency 1, 16, 64; next to each, the
 *    same batches through cl_log_append in-process on another data
 *    directory (store level), and the ratio;
 *  - AppendStream bulk import: 100k events in batches of 1000 (store level:
 *    the same batches, one appender);
 *  - Subscribe fan-out: 0 (the raw row: the writer alone), 10, then 100
 *    subscribers (on a channel of their own, one call each) while one
 *    writer appends batches of 64; the writer's events/s and Append
 *    latency, events/s delivered per subscriber, commit-to-delivery
 *    latency (delivery time minus RecordedEvent.committed_at) and
 *    send-to-delivery latency (delivery time minus the writer's send of
 *    the batch; same clock, same machine: the figure etcd's Watch is
 *    compared on, clinlog-bench etcd-watch), clinlogd's CPU per event.
 * Targets checked: gRPC >= 0.7 x store at batch 64; >= 20k unary
 * single-event appends/s at concurrency 64. */
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "bench/bench_grpc.h"
#include "bench/benchutil.h"
#include "bench/fanout.h"
#include "bench/grpcfloor.h"
#include "bench/syscount.h"
#include "bench/workload.h"
#include "clinlog/v1/event.pb-c.h"
#include "store/keys.h"
#include "store/log.h"

#define mono bench_mono

/* ---------------------------------------------------------- fan-out */

/* What the subscribers of one run share (their reader's ctx). */
typedef struct sub_ctx {
  cl_client *c; /* a channel of their own */
  int batch;    /* SubscribeRequest.batch */
} sub_ctx;

/* A subscriber: follows the log from its end until it has every event
 * the writer sends (bench/fanout.h). */
static void *run_subscriber(void *arg) {
  bench_fan_reader *s = arg;
  const sub_ctx *sc = s->ctx;
  Clinlog__V1__SubscribeRequest req = CLINLOG__V1__SUBSCRIBE_REQUEST__INIT;
  req.from_end = 1;
  req.batch = sc->batch;
  cl_client_stream *st;
  cl_err err;
  if (cl_client_subscribe(sc->c, &req, &st, &err) != 0) {
    snprintf(s->err, sizeof s->err, "Subscribe: %s", err.msg);
    atomic_fetch_add(s->ready, 1);
    return NULL;
  }
  ProtobufCMessage *m;
  int rc = 1, signalled = 0;
  while (s->got < s->want && (rc = cl_client_stream_next(st, &m, &err)) == 1) {
    Clinlog__V1__SubscribeResponse *r = (Clinlog__V1__SubscribeResponse *)m;
    Clinlog__V1__RecordedEvent **evs =
        r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT    ? &r->event
        : r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENTS ? r->events->events
                                                                       : NULL;
    size_t nev = r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENT ? 1
                 : r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_EVENTS
                     ? r->events->n_events
                     : 0;
    for (size_t i = 0; i < nev && s->got < s->want; i++) {
      const Google__Protobuf__Timestamp *at = evs[i]->committed_at;
      bench_fan_note(s, at ? at->seconds * 1000000000LL + at->nanos : bench_wall_ns());
    }
    if (r->kind_case == CLINLOG__V1__SUBSCRIBE_RESPONSE__KIND_CAUGHT_UP && !signalled) {
      signalled = 1;
      atomic_fetch_add(s->ready, 1);
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (s->got < s->want)
    snprintf(s->err, sizeof s->err, "Subscribe ended early: %s", rc ? err.msg : "end of stream");
  if (!signalled)
    atomic_fetch_add(s->ready, 1);
  cl_client_stream_free(st);
  return NULL;
}

/* subscribers of each fan-out run; 0 is the raw row: the same writer with
 * nobody following */
static const int FANOUTS[] = {0, 10, 100, 10, 100};
/* the runs whose subscribers ask for EventBatch messages (batch = true) */
static const int FANOUT_BATCH[] = {0, 0, 0, 1, 1};
#define NFANOUT (sizeof FANOUTS / sizeof FANOUTS[0])

/* c writes; the subscribers share `subc`: a channel of their own, and whether they ask for
 * EventBatch messages. */
static bench_fanout run_fanout(cl_client *c, sub_ctx *subc, pid_t srv, int nsubs, size_t nbatches,
                               size_t bs, const cl_signer *key, unsigned *seed) {
  bench_fanout f;
  memset(&f, 0, sizeof f);
  bench_batch *b = calloc(nbatches, sizeof *b);
  double *calls = malloc(nbatches * sizeof *calls);
  if (!b || !calls)
    abort();
  for (size_t i = 0; i < nbatches; i++)
    bench_batch_make(&b[i], bs, key, seed);
  bench_fan_clock clock;
  bench_fan_clock_init(&clock, nbatches, bs);
  atomic_int ready = 0;
  bench_fan_reader *subs = bench_fan_readers_make(nsubs, &clock, &ready, subc);
  for (int i = 0; i < nsubs; i++)
    pthread_create(&subs[i].t, NULL, run_subscriber, &subs[i]);
  while (atomic_load(&ready) < nsubs)
    bench_sleep_ms(5);
  double cpu0 = bench_proc_cpu_s(srv);
  double t0 = mono();
  size_t sent = 0;
  for (; sent < nbatches; sent++) {
    Clinlog__V1__AppendResponse *r;
    cl_err err;
    double c0 = mono();
    bench_fan_sent(&clock, sent);
    if (cl_client_append(c, &b[sent].b, &r, NULL, &err) != 0) {
      fprintf(stderr, "fan-out writer: %s\n", err.msg);
      f.failed = 1;
      break;
    }
    calls[sent] = mono() - c0;
    clinlog__v1__append_response__free_unpacked(r, NULL);
  }
  double dt = mono() - t0;
  f.writer_eps = (double)(sent * bs) / dt;
  bench_fan_calls(&f, calls, sent);
  bench_fan_collect(subs, nsubs, t0, "fan-out", &f);
  double cpu2 = bench_proc_cpu_s(srv);
  /* the server's CPU until the last delivery, per event written */
  f.server_us = cpu0 >= 0 && cpu2 >= 0 && sent ? (cpu2 - cpu0) * 1e6 / (double)(sent * bs) : -1;
  bench_fan_readers_free(subs, nsubs);
  bench_fan_clock_free(&clock);
  for (size_t i = 0; i < nbatches; i++)
    bench_batch_free(&b[i]);
  free(b);
  free(calls);
  return f;
}

/* ---------------------------------------------------------- main */

/* Pre-signed batches for one unary scenario of `seconds`: enough for the
 * store in process, the faster of the two, at rates above this machine's
 * (docs/bench.md); a faster run signs the rest in its loop, outside each
 * call's latency (reported). */
static size_t pool_batches(size_t bs, double seconds) {
  double eps = bs == 1 ? 20000 : 100000;
  return (size_t)(eps * seconds / (double)bs) + 64;
}

static int create_log(const char *dir, const cl_signer *admin) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  cl_log_genesis g = {.admin_principal = "admin", .admin = admin};
  cl_err err;
  if (cl_log_create(&o, &g, &err)) {
    fprintf(stderr, "create %s: %s\n", dir, err.msg);
    return -1;
  }
  return 0;
}

int bench_grpc_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-grpc", *exe_opt = NULL, *only = NULL, *runp = NULL;
  int quick = 0, json = 0;
  double seconds = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc && atof(argv[i + 1]) > 0)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--clinlogd") && i + 1 < argc)
      exe_opt = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--run-projections") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "all") || !strcmp(argv[i + 1], "none")))
      runp = argv[++i];
    else if (!strcmp(argv[i], "--only") && i + 1 < argc &&
             (!strcmp(argv[i + 1], "unary") || !strcmp(argv[i + 1], "stream") ||
              !strcmp(argv[i + 1], "fanout")))
      only = argv[++i];
    else {
      fprintf(stderr, "usage: clinlog-bench grpc [--clinlogd PATH] [--dir D] [--quick] "
                      "[--json] [--seconds S]\n"
                      "                          [--only unary|stream|fanout] "
                      "[--run-projections all|none]\n");
      return 2;
    }
  }
  if (seconds <= 0)
    seconds = quick ? 1 : 5;
  char exe[PATH_MAX + 16];
  if (bench_find_exe("grpc", exe_opt, argv[0], "clinlogd", exe, sizeof exe) != 0)
    return 1;
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  mkdir(base, 0700);
  char gdir[4096], sdir[4096], logpath[4200];
  snprintf(gdir, sizeof gdir, "%s/server", base);
  snprintf(sdir, sizeof sdir, "%s/store", base);
  snprintf(logpath, sizeof logpath, "%s/clinlogd.log", base);
  bench_rmrf(gdir);
  bench_rmrf(sdir);
  cl_signer admin;
  if (cl_signer_generate(&admin, &err) || create_log(gdir, &admin) || create_log(sdir, &admin))
    return 1;
  bench_proc srv = {0};
  int rport = 0; /* its one-node cluster's Raft transport (default: API port + 1) */
  char raft[32];
  if (bench_free_ports(&rport, 1) != 0)
    return 1;
  snprintf(raft, sizeof raft, "127.0.0.1:%d", rport);
  /* the transport's cost alone: the audit trail's is `clinlog-bench audit`'s */
  char *const sargv[] = {exe,
                         "--data",
                         gdir,
                         "--dev",
                         "--listen",
                         "127.0.0.1:0",
                         "--raft-listen",
                         raft,
                         "--audit",
                         "off",
                         runp ? "--run-projections" : NULL,
                         (char *)runp,
                         NULL};
  unlink(logpath);
  if (bench_proc_start(sargv, logpath, &srv))
    return 1;
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = sdir;
  cl_log *log;
  if (cl_log_open(&o, &log, &err)) {
    fprintf(stderr, "open %s: %s\n", sdir, err.msg);
    bench_proc_stop(&srv);
    return 1;
  }
  cl_client_options co;
  cl_client_options_init(&co);
  co.target = srv.target;
  co.plaintext = 1;
  co.timeout_ms = 120000;
  cl_client *client;
  if (cl_client_open(&co, &client, &err)) {
    fprintf(stderr, "client: %s\n", err.msg);
    cl_log_close(log);
    bench_proc_stop(&srv);
    return 1;
  }
  char machine[128];
  bench_machine(machine, sizeof machine);
  if (json)
    printf("{\"machine\":\"%s\",\"append\":[", machine);
  else
    printf("clinlog-bench grpc — %s; clinlogd and client on the "
           "same machine,\n"
           "plaintext loopback, one shared channel, durable (fsync) commits, "
           "batch signatures\n\n"
           "unary Append (gRPC) vs cl_log_append in-process (store), same "
           "batches and threads\n"
           "%-5s %-4s | %10s %8s %8s | %10s %8s %8s | %6s\n",
           machine, "batch", "conc", "grpc ev/s", "p50 ms", "p99 ms", "store ev/s", "p50 ms",
           "p99 ms", "ratio");
  unsigned seed = 4242;
  int status = 0, first = 1;
  double b64_ratio_min = 1e9, single64 = 0;
  const size_t bsizes[2] = {1, 64};
  const int concs[3] = {1, 16, 64};
  for (int bi = 0; bi < 2 && (!only || !strcmp(only, "unary")); bi++) {
    for (int ci = 0; ci < 3; ci++) {
      size_t bs = bsizes[bi];
      int conc = concs[ci];
      /* the same time for gRPC, the store and the peers (clinlog-bench pg, etcd) */
      bench_pool pool;
      bench_pool_make(&pool, pool_batches(bs, seconds), bs, &admin, &seed);
      bench_syscount sync_count;
      bench_syscount_start(&sync_count, &srv.pid, 1, base);
      bench_threads th0, th1, thd = {.n = 0};
      /* the server's CPU read with its threads', so the groups add up to it */
      int th_ok = bench_threads_snap(srv.pid, &th0) == 0;
      double srv0 = th_ok ? th0.total_s : bench_proc_cpu_s(srv.pid), cli0 = bench_self_cpu_s();
      bench_result g = bench_append_run(&pool, conc, client, NULL, seconds, 0, &admin);
      size_t g_live = atomic_load(&pool.live);
      double cli1 = bench_self_cpu_s(), srv1 = -1;
      if (!th_ok)
        srv1 = bench_proc_cpu_s(srv.pid);
      else if (bench_threads_snap(srv.pid, &th1) == 0) {
        bench_threads_delta(&th0, &th1, &thd);
        srv1 = th1.total_s;
      }
      bench_syscalls sc;
      double syncs = bench_syscount_stop_all(&sync_count, &sc);
      double gev = g.events ? (double)g.events : 1;
      double srv_us = srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) * 1e6 / gev : -1;
      double cli_us = (cli1 - cli0) * 1e6 / gev;
      bench_pool_rewind(&pool); /* the same batches, another log */
      bench_result s = bench_append_run(&pool, conc, NULL, log, seconds, 0, &admin);
      size_t s_live = atomic_load(&pool.live);
      bench_pool_free(&pool);
      if (g_live || s_live)
        fprintf(stderr,
                "clinlog-bench grpc: batch %zu conc %d: %zu pre-signed batches ran out: "
                "%zu (gRPC) and %zu (store) signed in the loop\n",
                bs, conc, pool_batches(bs, seconds), g_live, s_live);
      status |= g.failed | s.failed;
      double ratio = s.eps > 0 ? g.eps / s.eps : 0;
      if (bs == 64 && ratio < b64_ratio_min)
        b64_ratio_min = ratio;
      if (bs == 1 && conc == 64)
        single64 = g.eps;
      if (json) {
        printf("%s{\"batch\":%zu,\"concurrency\":%d,\"grpc_events_per_s\":%.0f,"
               "\"grpc_p50_ms\":%.3f,\"grpc_p90_ms\":%.3f,\"grpc_p99_ms\":%.3f,"
               "\"grpc_p999_ms\":%.3f,\"server_cpu_us_per_event\":%.1f,"
               "\"client_cpu_us_per_event\":%.1f,\"store_events_per_s\":%.0f,"
               "\"store_p50_ms\":%.3f,\"store_p99_ms\":%.3f,\"ratio\":%.3f",
               first ? "" : ",", bs, conc, g.eps, g.p50_ms, g.p90_ms, g.p99_ms, g.p999_ms, srv_us,
               cli_us, s.eps, s.p50_ms, s.p99_ms, ratio);
        if (syncs >= 0)
          printf(",\"fsyncs_per_event\":%.4f", syncs / gev);
        printf(",\"seconds\":%.1f,\"grpc_signed_in_loop\":%zu,\"store_signed_in_loop\":%zu",
               seconds, g_live, s_live);
        bench_threads_json(&thd, gev);
        bench_syscalls_json(&sc, gev);
        bench_cdf_print(g.cdf_ms); /* the gRPC calls' */
        printf("}");
        first = 0;
      } else {
        printf("%-5zu %-4d | %10.0f %8.2f %8.2f | %10.0f %8.2f %8.2f | %6.2f\n", bs, conc, g.eps,
               g.p50_ms, g.p99_ms, s.eps, s.p50_ms, s.p99_ms, ratio);
        if ((bs == 1 && conc == 64) || (bs == 64 && conc == 16)) { /* the report's two */
          bench_threads_print(&thd, gev, "event");
          bench_syscalls_print(&sc, gev, "event");
        }
      }
      fflush(stdout);
    }
  }
  /* the floor of one event a call on this stack at each concurrency:
   * answers only, and with a signature check and a durable write */
  bench_floor_row floor[6];
  int nfloor = 0;
  if (!only || !strcmp(only, "unary")) {
    char self[PATH_MAX], fdir[4200];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    snprintf(fdir, sizeof fdir, "%s/floor", base);
    if (sl > 0)
      self[sl] = 0;
    if (sl <= 0 || bench_floor_run(self, fdir, 0, concs, 3, seconds, &admin, &seed, floor) ||
        bench_floor_run(self, fdir, 1, concs, 3, seconds, &admin, &seed, floor + 3))
      status = 1;
    else
      nfloor = 6;
    for (int i = 0; !json && i < nfloor; i++)
      printf("%s%-5d %-4d | %10.0f %8.2f %8.2f | %s; server %.0f + client %.0f CPU us a call\n",
             i ? "" : "\nthe floor (bench/grpcfloor.h): a gRPC server answering Append at once\n",
             1, floor[i].conc, floor[i].r.eps, floor[i].r.p50_ms, floor[i].r.p99_ms,
             floor[i].durable ? "+ Ed25519 check, group-committed fdatasync" : "answers only",
             floor[i].server_us, floor[i].client_us);
  }
  /* AppendStream bulk import vs the same batches in-process */
  size_t nb = only && strcmp(only, "stream") ? 0 : quick ? 25 : 100, bsz = 1000;
  bench_pool bulk; /* the same batches to the server, then to the store */
  bench_pool_make(&bulk, nb, bsz, &admin, &seed);
  double t0 = mono(), imp_eps = 0;
  cl_client_append_stream *as;
  Clinlog__V1__AppendStreamSummary *sum = NULL;
  int rc = nb ? cl_client_append_stream_open(client, &as, &err) : -1;
  for (size_t i = 0; rc == 0 && i < nb; i++)
    rc = cl_client_append_stream_send(as, &bulk.b[i].b, &err);
  if (rc == 0)
    rc = cl_client_append_stream_finish(as, &sum, NULL, &err);
  else if (nb)
    cl_client_append_stream_abort(as);
  if (rc && nb) {
    fprintf(stderr, "AppendStream: %s\n", err.msg);
    status = 1;
  } else if (nb) {
    imp_eps = (double)sum->events / (mono() - t0);
    clinlog__v1__append_stream_summary__free_unpacked(sum, NULL);
  }
  bench_result simp = {0};
  if (nb) /* every batch once, one appender, however long it takes */
    simp = bench_append_run(&bulk, 1, NULL, log, 3600, 0, NULL);
  status |= simp.failed;
  bench_pool_free(&bulk);
  /* Subscribe fan-out */
  bench_fanout f[NFANOUT];
  memset(f, 0, sizeof f);
  if (!only || !strcmp(only, "fanout")) {
    for (size_t i = 0; i < NFANOUT; i++) {
      cl_client *subc;
      if (cl_client_open(&co, &subc, &err)) {
        fprintf(stderr, "fan-out client: %s\n", err.msg);
        status = 1;
        break;
      }
      sub_ctx sc = {subc, FANOUT_BATCH[i]};
      f[i] = run_fanout(client, &sc, srv.pid, FANOUTS[i], quick ? 80 : 320, 64, &admin, &seed);
      cl_client_close(subc);
      status |= f[i].failed;
    }
  }
  int ok_ratio = b64_ratio_min >= 0.7, ok_single = single64 >= 20000;
  int ran_unary = !only || !strcmp(only, "unary"), ran_fanout = !only || !strcmp(only, "fanout");
  double hwm = bench_proc_hwm_mb(srv.pid);
  if (json) {
    /* what --only skipped is left out, not printed as zeros */
    printf("]");
    if (hwm >= 0)
      printf(",\"server_peak_rss_mb\":%.1f", hwm);
    if (nfloor) {
      printf(",\"floor\":[");
      bench_floor_json(floor, nfloor);
      printf("]");
    }
    if (nb)
      printf(",\"append_stream\":{\"events\":%zu,\"batch\":%zu,\"grpc_events_per_s\":%.0f,"
             "\"store_events_per_s\":%.0f,\"ratio\":%.3f}",
             nb * bsz, bsz, imp_eps, simp.eps, simp.eps > 0 ? imp_eps / simp.eps : 0);
    for (size_t i = 0; ran_fanout && i < NFANOUT; i++) {
      const bench_fanout *x = &f[i];
      if (!FANOUTS[i]) { /* the raw row: the writer alone */
        printf(",\"fanout_raw\":{\"subscribers\":0,\"writer_events_per_s\":%.0f,"
               "\"append_p50_ms\":%.3f,\"append_p99_ms\":%.3f",
               x->writer_eps, x->call_p50_ms, x->call_p99_ms);
      } else {
        printf("%s{\"subscribers\":%d,\"batch\":%s,\"writer_events_per_s\":%.0f,"
               "\"append_p50_ms\":%.3f,\"append_p99_ms\":%.3f,"
               "\"per_subscriber_events_per_s_min\":%.0f,"
               "\"per_subscriber_events_per_s_mean\":%.0f,"
               "\"latency_p50_ms\":%.2f,\"latency_p99_ms\":%.2f,"
               "\"sent_to_delivery_p50_ms\":%.2f,\"sent_to_delivery_p99_ms\":%.2f",
               FANOUTS[i - 1] ? "," : ",\"fanout\":[", FANOUTS[i],
               FANOUT_BATCH[i] ? "true" : "false", x->writer_eps, x->call_p50_ms, x->call_p99_ms,
               x->sub_eps_min, x->sub_eps_mean, x->p50_ms, x->p99_ms, x->sent_p50_ms,
               x->sent_p99_ms);
      }
      if (x->server_us >= 0)
        printf(",\"server_cpu_us_per_event\":%.1f", x->server_us);
      printf("}%s", FANOUTS[i] && i + 1 == NFANOUT ? "]" : "");
    }
    printf(",\"targets\":{");
    if (ran_unary)
      printf("\"batch64_ratio_min\":%.3f,\"batch64_ratio_ok\":%s,"
             "\"single_event_conc64_events_per_s\":%.0f,\"single_event_conc64_ok\":%s",
             b64_ratio_min, ok_ratio ? "true" : "false", single64, ok_single ? "true" : "false");
    printf("}}\n");
  } else {
    if (hwm >= 0)
      printf("\nclinlogd peak RSS (VmHWM): %.1f MiB\n", hwm);
    if (nb)
      printf("\nAppendStream import of %zu events in batches of %zu: %.0f events/s "
             "(store, same batches, one appender: %.0f; ratio %.2f)\n",
             nb * bsz, bsz, imp_eps, simp.eps, simp.eps > 0 ? imp_eps / simp.eps : 0);
    for (size_t i = 0; ran_fanout && i < NFANOUT; i++)
      if (!FANOUTS[i])
        printf("Subscribe fan-out raw row: the same writer, no subscriber: %.0f events/s, "
               "Append p50 %.2f ms, p99 %.2f ms\n",
               f[i].writer_eps, f[i].call_p50_ms, f[i].call_p99_ms);
      else
        printf("Subscribe fan-out, %d subscribers%s, one writer (unary Append, batch 64): "
               "writer %.0f events/s;\n  delivered per subscriber %.0f events/s (min %.0f); "
               "commit-to-delivery p50 %.2f ms, p99 %.2f ms; send-to-delivery p50 %.2f ms, "
               "p99 %.2f ms\n",
               FANOUTS[i], FANOUT_BATCH[i] ? " (EventBatch messages)" : "", f[i].writer_eps,
               f[i].sub_eps_mean, f[i].sub_eps_min, f[i].p50_ms, f[i].p99_ms, f[i].sent_p50_ms,
               f[i].sent_p99_ms);
    if (ran_unary)
      printf("\ntargets: gRPC/store at batch 64 >= 0.70: min %.2f %s; unary "
             "single-event appends at "
             "concurrency 64 >= 20000/s: %.0f %s\n",
             b64_ratio_min, ok_ratio ? "MET" : "MISSED", single64, ok_single ? "MET" : "MISSED");
  }
  cl_client_close(client);
  cl_log_close(log);
  if (bench_proc_stop(&srv))
    fprintf(stderr, "clinlogd did not stop within 20 s of SIGTERM (killed); see %s\n", logpath);
  cl_signer_free(&admin);
  bench_rmrf(gdir);
  bench_rmrf(sdir);
  return status;
}
