/* clinlog-bench etcd-watch: etcd 3.4's Watch, the change feed a user would
 * pick instead of clinlog's Subscribe, under the load of clinlog-bench grpc
 * --only fanout.
 *
 *   clinlog-bench etcd-watch [--etcd PATH] [--dir D] [--quick] [--json]
 *
 * One etcd member (clinlog's fan-out runs on one clinlogd), started like
 * clinlog-bench etcd's (etcdpeer.h) under D (default
 * /tmp/clinlog-bench-etcd-watch). One writer sends KV.Txn calls of 64 Puts
 * each (one revision, as one Append of a batch of 64 is one commit), each
 * Put a new key ("ev/" and 32 hex digits) whose value is a serialized
 * benchmark event (bench_make_event: the bytes clinlog's writer appends),
 * while 0 (the raw row: the writer alone), 10, then 100 watchers follow the
 * prefix "ev/" from the next revision, each one Watch call (a create
 * request, then the stream) on one channel of their own, as clinlog's
 * subscribers each hold one Subscribe call on theirs. 80 Txns (--quick) or
 * 320 per run, as clinlog's.
 *
 * Per run: the writer's events/s and Txn latency p50/p99; events/s
 * delivered per watcher (mean and the slowest, from the first send to its
 * last event); send-to-delivery p50/p99 over every (watcher, event): the
 * event's arrival minus the send of its Txn (bench/fanout.h; etcd's events
 * carry no commit time); etcd's CPU µs per event written, until the last
 * delivery. The member is stopped and its data removed at the end; its log
 * is kept when something failed. Without etcd: "skipped", exit status 3. */
#include "bench/bench_peer_etcd_watch.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/etcdpeer.h"
#include "bench/fanout.h"
#include "bench/workload.h"
#include "etcd/rpc.pb-c.h"

#define BS 64 /* Puts per Txn: clinlog's fan-out batch */

static const char TXN[] = "/etcdserverpb.KV/Txn";
static const char WATCH[] = "/etcdserverpb.Watch/Watch";
static const int WATCHERS[] = {0, 10, 100};
#define NRUNS (sizeof WATCHERS / sizeof WATCHERS[0])

/* A watcher: one Watch call on the prefix, until it has every event. */
static void *run_watcher(void *arg) {
  bench_fan_reader *w = arg;
  Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
  cr.key = (ProtobufCBinaryData){3, (uint8_t *)"ev/"};
  cr.range_end = (ProtobufCBinaryData){3, (uint8_t *)"ev0"}; /* '/' + 1 */
  Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
  req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
  req.create_request = &cr;
  cl_client_stream *st;
  cl_err err;
  if (cl_client_server_stream(w->ctx, WATCH, &req.base, &etcdserverpb__watch_response__descriptor,
                              &st, &err) != 0) {
    snprintf(w->err, sizeof w->err, "Watch: %s", err.msg);
    atomic_fetch_add(w->ready, 1);
    return NULL;
  }
  ProtobufCMessage *m;
  int rc = 1, signalled = 0;
  while (w->got < w->want && (rc = cl_client_stream_next(st, &m, &err)) == 1) {
    Etcdserverpb__WatchResponse *r = (Etcdserverpb__WatchResponse *)m;
    if (r->created && !signalled) {
      signalled = 1;
      atomic_fetch_add(w->ready, 1);
    }
    if (r->canceled) {
      snprintf(w->err, sizeof w->err, "Watch canceled by etcd: %s",
               r->cancel_reason && r->cancel_reason[0] ? r->cancel_reason : "(no reason)");
      protobuf_c_message_free_unpacked(m, NULL);
      break;
    }
    for (size_t i = 0; i < r->n_events && w->got < w->want; i++)
      if (r->events[i]->type == ETCDSERVERPB__EVENT__EVENT_TYPE__PUT)
        bench_fan_note(w, 0);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (w->got < w->want && !w->err[0])
    snprintf(w->err, sizeof w->err, "Watch ended early: %s", rc ? err.msg : "end of stream");
  if (!signalled)
    atomic_fetch_add(w->ready, 1);
  cl_client_stream_free(st);
  return NULL;
}

/* The writer's Txn of BS Puts: fresh random keys each call, values from
 * `body` (borrowed). */
typedef struct txn {
  uint8_t keys[BS][3 + 32];
  Etcdserverpb__PutRequest puts[BS];
  Etcdserverpb__RequestOp ops[BS];
  Etcdserverpb__RequestOp *opp[BS];
  Etcdserverpb__TxnRequest req;
} txn;

static void txn_init(txn *t, const ProtobufCBinaryData *body) {
  Etcdserverpb__TxnRequest r = ETCDSERVERPB__TXN_REQUEST__INIT;
  t->req = r;
  for (int i = 0; i < BS; i++) {
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__RequestOp o = ETCDSERVERPB__REQUEST_OP__INIT;
    t->puts[i] = p;
    t->puts[i].key = (ProtobufCBinaryData){sizeof t->keys[i], t->keys[i]};
    t->puts[i].value = body[i];
    memcpy(t->keys[i], "ev/", 3);
    t->ops[i] = o;
    t->ops[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    t->ops[i].request_put = &t->puts[i];
    t->opp[i] = &t->ops[i];
  }
  t->req.n_success = BS;
  t->req.success = t->opp;
}

static void txn_new_keys(txn *t) {
  static const char hex[] = "0123456789abcdef";
  uint8_t id[16];
  for (int k = 0; k < BS; k++) {
    randombytes_buf(id, sizeof id);
    for (int i = 0; i < 16; i++) {
      t->keys[k][3 + 2 * i] = (uint8_t)hex[id[i] >> 4];
      t->keys[k][4 + 2 * i] = (uint8_t)hex[id[i] & 15];
    }
  }
}

/* One Txn; 0, or a CL_E* code with err set (also when etcd did not apply
 * it: no revision, or not succeeded). */
static int txn_send(cl_client *c, const txn *t, cl_err *err) {
  ProtobufCMessage *out = NULL;
  int rc = cl_client_unary_md(c, TXN, &t->req.base, &etcdserverpb__txn_response__descriptor, 0,
                              NULL, NULL, NULL, 0, &out, NULL, err);
  if (rc == 0) {
    Etcdserverpb__TxnResponse *r = (Etcdserverpb__TxnResponse *)out;
    if (!r->succeeded || !r->header || r->header->revision <= 0 || r->n_responses != BS)
      rc = cl_err_set(err, CL_EMALFORMED, "Txn answered without %d applied Puts", BS);
    protobuf_c_message_free_unpacked(out, NULL);
  }
  return rc;
}

static bench_fanout run_watch(bench_etcd *e, cl_client *wc, txn *t, int nw, size_t ntxn) {
  bench_fanout f;
  memset(&f, 0, sizeof f);
  double *calls = malloc(ntxn * sizeof *calls);
  if (!calls)
    abort();
  bench_fan_clock clock;
  bench_fan_clock_init(&clock, ntxn, BS);
  atomic_int ready = 0;
  bench_fan_reader *ws = bench_fan_readers_make(nw, &clock, &ready, wc);
  for (int i = 0; i < nw; i++)
    pthread_create(&ws[i].t, NULL, run_watcher, &ws[i]);
  while (atomic_load(&ready) < nw)
    bench_sleep_ms(5);
  double cpu0 = bench_etcd_cpu_s(e), t0 = bench_mono();
  size_t sent = 0;
  for (; sent < ntxn; sent++) {
    cl_err err;
    txn_new_keys(t);
    double c0 = bench_mono();
    bench_fan_sent(&clock, sent);
    if (txn_send(e->lead, t, &err) != 0) {
      fprintf(stderr, "clinlog-bench etcd-watch: writer: %s\n", err.msg);
      f.failed = 1;
      break;
    }
    calls[sent] = bench_mono() - c0;
  }
  f.writer_eps = (double)(sent * BS) / (bench_mono() - t0);
  bench_fan_calls(&f, calls, sent);
  bench_fan_collect(ws, nw, t0, "clinlog-bench etcd-watch", &f);
  double cpu1 = bench_etcd_cpu_s(e);
  f.server_us = cpu0 >= 0 && cpu1 >= 0 && sent ? (cpu1 - cpu0) * 1e6 / (double)(sent * BS) : -1;
  bench_fan_readers_free(ws, nw);
  bench_fan_clock_free(&clock);
  free(calls);
  return f;
}

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench etcd-watch [--etcd PATH] [--dir D] [--quick] [--json]\n");
  return 2;
}

int bench_peer_etcd_watch_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-etcd-watch", *etcd_opt = NULL;
  int quick = 0, json = 0;
  if (bench_etcd_args(argc, argv, &base, &etcd_opt, &quick, &json, NULL) != 0)
    return usage();
  char etcd[PATH_MAX];
  int prep = bench_etcd_prepare("clinlog-bench etcd-watch", etcd_opt, base, etcd, sizeof etcd);
  if (prep != 0)
    return prep;
  ProtobufCBinaryData body[BS];
  unsigned seed = 91;
  for (int i = 0; i < BS; i++)
    bench_make_event(&body[i], &seed);
  txn *t = malloc(sizeof *t);
  if (!t)
    abort();
  txn_init(t, body);
  size_t ntxn = quick ? 80 : 320;
  char why[4608] = "";
  bench_etcd ec;
  int failed =
      bench_etcd_up(&ec, etcd, base, 1, "clinlog-bench etcd-watch", json, why, sizeof why) != 0;
  bench_fanout f[NRUNS];
  memset(f, 0, sizeof f);
  size_t nrun = 0;
  char machine[128];
  bench_machine(machine, sizeof machine);
  if (!failed && !json)
    printf("clinlog-bench etcd-watch — %s; etcd %s, 1 member on loopback; one writer,\n"
           "KV.Txn of %d Puts (new keys, values %zu bytes: a benchmark event), %zu Txns per run;\n"
           "N Watch calls on the prefix on a channel of their own\n\n",
           machine, ec.version, BS, body[0].len, ntxn);
  for (; !failed && nrun < NRUNS; nrun++) {
    cl_client *wc = bench_etcd_client(ec.ms[ec.leader].target, 30000);
    if (!wc) {
      failed = 1;
      snprintf(why, sizeof why, "no client for the watchers");
      break;
    }
    f[nrun] = run_watch(&ec, wc, t, WATCHERS[nrun], ntxn);
    cl_client_close(wc);
    const bench_fanout *x = &f[nrun];
    if (x->failed) {
      failed = 1;
      snprintf(why, sizeof why, "the run with %d watchers failed", WATCHERS[nrun]);
      break;
    }
    (json ? fprintf(stderr,
                    "  etcd watch %3d watchers: writer %8.0f ev/s, delivery from the send "
                    "p50 %7.2f ms p99 %7.2f ms\n",
                    WATCHERS[nrun], x->writer_eps, x->sent_p50_ms, x->sent_p99_ms)
          : printf("%3d watchers: writer %.0f events/s (Txn p50 %.2f ms, p99 %.2f ms); delivered "
                   "per watcher %.0f events/s (min %.0f); send-to-delivery p50 %.2f ms, p99 "
                   "%.2f ms; etcd CPU %.1f µs per event\n",
                   WATCHERS[nrun], x->writer_eps, x->call_p50_ms, x->call_p99_ms, x->sub_eps_mean,
                   x->sub_eps_min, x->sent_p50_ms, x->sent_p99_ms, x->server_us));
    fflush(stdout);
  }
  double hwm = !failed && ec.ms[0].pid > 0 ? bench_proc_hwm_mb(ec.ms[0].pid) : -1;
  if (json && !failed) {
    printf("{\"system\":\"etcd\",\"server_version\":\"%s\",\"members\":1,\"machine\":\"%s\","
           "\"quick\":%s,\"batch\":%d,\"txns_per_run\":%zu,\"value_bytes\":%zu,\"key_bytes\":35",
           ec.version, machine, quick ? "true" : "false", BS, ntxn, body[0].len);
    for (size_t i = 0; i < nrun; i++) {
      const bench_fanout *x = &f[i];
      if (!WATCHERS[i])
        printf(",\"fanout_raw\":{\"watchers\":0,\"writer_events_per_s\":%.0f,"
               "\"txn_p50_ms\":%.3f,\"txn_p99_ms\":%.3f",
               x->writer_eps, x->call_p50_ms, x->call_p99_ms);
      else
        printf("%s{\"watchers\":%d,\"writer_events_per_s\":%.0f,\"txn_p50_ms\":%.3f,"
               "\"txn_p99_ms\":%.3f,\"per_watcher_events_per_s_min\":%.0f,"
               "\"per_watcher_events_per_s_mean\":%.0f,\"sent_to_delivery_p50_ms\":%.2f,"
               "\"sent_to_delivery_p99_ms\":%.2f",
               WATCHERS[i - 1] ? "," : ",\"fanout\":[", WATCHERS[i], x->writer_eps, x->call_p50_ms,
               x->call_p99_ms, x->sub_eps_min, x->sub_eps_mean, x->sent_p50_ms, x->sent_p99_ms);
      if (x->server_us >= 0)
        printf(",\"server_cpu_us_per_event\":%.1f", x->server_us);
      printf("}%s", WATCHERS[i] && i + 1 == nrun ? "]" : "");
    }
    if (hwm >= 0)
      printf(",\"server_peak_rss_mb\":%.1f", hwm);
    printf(",\"ok\":true}\n");
  }
  if (failed)
    fprintf(stderr, "clinlog-bench etcd-watch: %s\n", why);
  if (bench_etcd_down(&ec, failed))
    fprintf(stderr, "clinlog-bench etcd-watch: etcd ignored SIGTERM for 10 s and was killed\n");
  if (failed)
    fprintf(stderr, "clinlog-bench etcd-watch: log kept in %s\n", base);
  else
    rmdir(base);
  for (int i = 0; i < BS; i++)
    free(body[i].data);
  free(t);
  return failed ? 1 : 0;
}
