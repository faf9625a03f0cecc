/* clinlog-bench audit: what the audit trail costs a caller, --audit on
 * against --audit off in the same run (issue 10: at most 15 % slower).
 *
 *   clinlog-bench audit [--clinlogd PATH] [--dir D] [--quick] [--json]
 *                       [--rounds N] [--seconds S] [--only CALL:CONC ...]
 *
 * One data directory is made first (genesis plus PRELOAD events over 5000
 * patient streams, appended in-process); every clinlogd started below runs
 * on its own fresh copy of it, so both modes begin from identical data.
 * Rounds alternate the modes in ABBA order (off,on, on,off, off,on, ...;
 * --rounds N pairs, default 3, --quick 1) so drift of the machine falls on
 * both; each reported figure is the median over the rounds, and the ratio
 * is the median of the per-pair ratios on/off (the machine-independent
 * number).
 *
 * In each session, over gRPC with the C client (one shared channel,
 * plaintext loopback, concurrency = client threads), each scenario runs for
 * --seconds S (default 4, --quick 1.5), closed loop:
 *  - Log.GetEvent of a random preloaded event (the whole event, decrypted);
 *  - Fhir.Read of a random preloaded patient's Observation;
 *  - Log.Append of one event with its batch signature (signed before the
 *    clock starts; the same pre-signed events go to both modes);
 * each at concurrency 1 and 64.
 *
 * Audit records written: the stream version of "$audit" before and after
 * each scenario (Log.Read backwards, one event; the probe's own record is
 * subtracted), and records per batch (group commit) from the records of up
 * to SAMPLE of them (Record.batch_index 0 starts a batch).
 *
 * Everything runs on one machine: client threads, clinlogd, its folds. */
#include "bench/bench_audit.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "bench/bench_audit_pg.h"
#include "bench/benchutil.h"
#include "bench/workload.h"
#include "clinlog/v1/event.pb-c.h"
#include "clinlog/v1/fhir.pb-c.h"
#include "clinlog/v1/record.pb-c.h"
#include "query/fhir/map.h"
#include "store/keys.h"
#include "store/log.h"

#define SAMPLE 4000  /* audit records read back per scenario for the batch size */
#define MAX_ROUNDS 9 /* pairs */

/* ---------------------------------------------------------- data */

typedef struct dataset {
  uint8_t (*ids)[16]; /* the preloaded events' ids */
  size_t nids;
  char (*obs)[CL_FHIR_ID_MAX]; /* one Observation id per preloaded patient */
  size_t nobs;
  uint64_t head;     /* tree size after the preload */
  bench_batch *pool; /* single-event appends, signed once, used by every session */
  size_t npool;
} dataset;

/* The template data directory: genesis and `n` events, sync off. Fills the
 * ids and the Observation ids of the patients that got an event. */
static int make_template(const char *dir, const cl_signer *admin, size_t n, dataset *d) {
  cl_log_options o;
  cl_log_options_init(&o);
  o.dir = dir;
  cl_log_genesis g = {.admin_principal = "admin", .admin = admin};
  cl_err err;
  if (cl_log_create(&o, &g, &err)) {
    fprintf(stderr, "create %s: %s\n", dir, err.msg);
    return -1;
  }
  o.sync = 0;
  cl_log *log;
  if (cl_log_open(&o, &log, &err)) {
    fprintf(stderr, "open %s: %s\n", dir, err.msg);
    return -1;
  }
  d->ids = malloc(n * sizeof *d->ids);
  d->obs = malloc(5000 * sizeof *d->obs);
  uint8_t *seen = calloc(5000, 1);
  if (!d->ids || !d->obs || !seen)
    abort();
  unsigned seed = 777;
  int rc = 0;
  for (size_t done = 0; done < n && rc == 0;) {
    size_t bs = n - done < 1000 ? n - done : 1000;
    bench_batch b;
    bench_batch_make(&b, bs, admin, &seed);
    for (size_t i = 0; i < bs; i++) {
      Clinlog__V1__Event *e = clinlog__v1__event__unpack(NULL, b.ev[i].len, b.ev[i].data);
      if (!e || e->event_id.len != 16)
        abort();
      memcpy(d->ids[d->nids++], e->event_id.data, 16);
      unsigned p = (unsigned)atoi(e->stream + strlen("patient-"));
      if (p < 5000 && !seen[p]) { /* bench_make_event: one Observation per patient */
        seen[p] = 1;
        cl_fhir_id("Observation", e->stream + strlen("patient-"),
                   e->observation_recorded->observation_id, d->obs[d->nobs++]);
      }
      clinlog__v1__event__free_unpacked(e, NULL);
    }
    cl_append_result r;
    if (cl_log_append(log, &b.b, &r, &err)) {
      fprintf(stderr, "preload: %s\n", err.msg);
      rc = -1;
    } else {
      cl_append_result_free(&r);
    }
    bench_batch_free(&b);
    done += bs;
  }
  cl_log_head(log, &d->head, NULL);
  cl_log_close(log);
  free(seen);
  return rc;
}

/* ---------------------------------------------------------- scenarios */

enum op { OP_GET_EVENT, OP_FHIR_READ, OP_APPEND };

static const struct {
  enum op op;
  int conc;
  const char *name;
  int peer; /* the PostgreSQL peer's scenario it is set beside: PEER[peer] */
} SCEN[] = {
    {OP_GET_EVENT, 1, "Log.GetEvent", 0}, {OP_GET_EVENT, 64, "Log.GetEvent", 1},
    {OP_FHIR_READ, 1, "Fhir.Read", 0},    {OP_FHIR_READ, 64, "Fhir.Read", 1},
    {OP_APPEND, 1, "Log.Append", 2},      {OP_APPEND, 64, "Log.Append", 3},
};
#define NSCEN (sizeof SCEN / sizeof SCEN[0])

/* The PostgreSQL peer's scenarios (bench_audit_pg.h). */
static bench_apg_scen PEER[] = {
    {.kind = BENCH_APG_READ, .conc = 1},
    {.kind = BENCH_APG_READ, .conc = 64},
    {.kind = BENCH_APG_WRITE, .conc = 1},
    {.kind = BENCH_APG_WRITE, .conc = 64},
};
#define NPEER (sizeof PEER / sizeof PEER[0])

/* The scenarios this run measures (--only; all by default), a bit each. */
static unsigned picked = (1u << NSCEN) - 1;
#define PICKED(i) (picked >> (i)&1u)

/* "Fhir.Read:64" as its scenario's index, or -1. */
static int scen_index(const char *spec) {
  for (size_t i = 0; i < NSCEN; i++) {
    size_t n = strlen(SCEN[i].name);
    if (!strncmp(spec, SCEN[i].name, n) && spec[n] == ':' && atoi(spec + n + 1) == SCEN[i].conc)
      return (int)i;
  }
  return -1;
}

typedef struct shared { /* one scenario's run */
  cl_client *client;
  const dataset *d;
  enum op op;
  double stop_at;
  atomic_size_t next; /* appends: the next pool entry */
  size_t pool_end;
  atomic_int exhausted;
  atomic_int errors; /* the first is printed */
  pthread_barrier_t go;
} shared;

typedef struct runner {
  pthread_t t;
  shared *s;
  unsigned seed;
  double *lat; /* seconds per call */
  size_t n, cap;
  int failed;
} runner;

/* One call. 0 done, 1 nothing left to append, < 0 failed (err set). */
static int one_call(shared *s, runner *r, cl_err *err) {
  const dataset *d = s->d;
  int rc;
  if (s->op == OP_GET_EVENT) {
    Clinlog__V1__GetEventRequest req = CLINLOG__V1__GET_EVENT_REQUEST__INIT;
    req.event_id = (ProtobufCBinaryData){16, (uint8_t *)d->ids[(size_t)rand_r(&r->seed) % d->nids]};
    Clinlog__V1__RecordedEvent *ev;
    if ((rc = cl_client_get_event(s->client, &req, &ev, NULL, err)) == 0)
      clinlog__v1__recorded_event__free_unpacked(ev, NULL);
    return rc;
  }
  if (s->op == OP_FHIR_READ) {
    Clinlog__V1__FhirReadRequest req = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
    req.type = "Observation";
    req.id = (char *)d->obs[(size_t)rand_r(&r->seed) % d->nobs];
    ProtobufCMessage *m;
    if ((rc = cl_client_unary(s->client, "/clinlog.v1.Fhir/Read", &req.base,
                              &clinlog__v1__fhir_response__descriptor, &m, NULL, err)) == 0)
      protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  size_t k = atomic_fetch_add(&s->next, 1);
  if (k >= s->pool_end) {
    atomic_store(&s->exhausted, 1);
    return 1;
  }
  Clinlog__V1__AppendResponse *resp;
  if ((rc = cl_client_append(s->client, &d->pool[k].b, &resp, NULL, err)) == 0)
    clinlog__v1__append_response__free_unpacked(resp, NULL);
  return rc;
}

static void *run_runner(void *arg) {
  runner *r = arg;
  shared *s = r->s;
  pthread_barrier_wait(&s->go);
  while (bench_mono() < s->stop_at) {
    cl_err err;
    double t0 = bench_mono();
    int rc = one_call(s, r, &err);
    if (rc == 1)
      break;
    if (rc < 0) {
      if (atomic_fetch_add(&s->errors, 1) == 0)
        fprintf(stderr, "clinlog-bench audit: call failed: %s\n", err.msg);
      r->failed = 1;
      break;
    }
    if (r->n == r->cap) {
      r->cap = r->cap ? 2 * r->cap : 4096;
      if (!(r->lat = realloc(r->lat, r->cap * sizeof *r->lat)))
        abort();
    }
    r->lat[r->n++] = bench_mono() - t0;
  }
  return NULL;
}

typedef struct sres { /* one scenario in one session */
  double ops, p50_ms, p99_ms;
  uint64_t calls;
  uint64_t records; /* audit records it wrote */
  double per_batch; /* records per batch, from the sample (0: none) */
  double cpu_us;    /* clinlogd's CPU time (user + system, all threads) per call */
  int failed;
} sres;

/* Runs `conc` threads of `op` for `seconds`; appends take pool entries from
 * *pool_pos on (advanced past those used). */
static sres run_scenario(cl_client *c, const dataset *d, enum op op, int conc, double seconds,
                         size_t *pool_pos) {
  sres out;
  memset(&out, 0, sizeof out);
  shared s;
  memset(&s, 0, sizeof s);
  s.client = c;
  s.d = d;
  s.op = op;
  atomic_init(&s.next, *pool_pos);
  s.pool_end = d->npool;
  atomic_init(&s.exhausted, 0);
  atomic_init(&s.errors, 0);
  pthread_barrier_init(&s.go, NULL, (unsigned)conc + 1);
  runner *rs = calloc((size_t)conc, sizeof *rs);
  if (!rs)
    abort();
  for (int i = 0; i < conc; i++) {
    rs[i].s = &s;
    rs[i].seed = 1000u + (unsigned)i * 7919u;
    pthread_create(&rs[i].t, NULL, run_runner, &rs[i]);
  }
  s.stop_at = bench_mono() + seconds;
  pthread_barrier_wait(&s.go);
  double t0 = bench_mono();
  size_t n = 0;
  for (int i = 0; i < conc; i++) {
    pthread_join(rs[i].t, NULL);
    out.failed |= rs[i].failed;
    n += rs[i].n;
  }
  double dt = bench_mono() - t0;
  double *all = malloc((n ? n : 1) * sizeof *all);
  if (!all)
    abort();
  size_t k = 0;
  for (int i = 0; i < conc; i++) {
    memcpy(all + k, rs[i].lat, rs[i].n * sizeof *all);
    k += rs[i].n;
    free(rs[i].lat);
  }
  bench_percentiles(all, n, &out.p50_ms, &out.p99_ms);
  out.p50_ms *= 1e3;
  out.p99_ms *= 1e3;
  out.calls = n;
  out.ops = (double)n / dt;
  free(all);
  free(rs);
  pthread_barrier_destroy(&s.go);
  if (op == OP_APPEND) {
    size_t nx = atomic_load(&s.next);
    *pool_pos = nx < d->npool ? nx : d->npool;
    if (atomic_load(&s.exhausted))
      fprintf(stderr,
              "clinlog-bench audit: the %zu pre-signed appends ran out before %.1f s (the "
              "rate is still over the time used)\n",
              d->npool, seconds);
  }
  return out;
}

/* ---------------------------------------------------------- $audit */

static const char AUDIT[] = "$audit";

/* The stream version of "$audit" (its record count); 0 if it has none. */
static uint64_t audit_version(cl_client *c) {
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  req.stream = (char *)AUDIT;
  req.direction = CLINLOG__V1__DIRECTION__BACKWARDS;
  req.max_count = 1;
  cl_client_stream *st;
  cl_err err;
  uint64_t v = 0;
  if (cl_client_read(c, &req, &st, &err) != 0)
    return 0;
  ProtobufCMessage *m;
  while (cl_client_stream_next(st, &m, &err) == 1) {
    v = ((Clinlog__V1__RecordedEvent *)m)->stream_version;
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cl_client_stream_free(st);
  return v;
}

/* Records per batch over up to `max` records of "$audit" from stream
 * version `from`: a record with batch_index 0 starts a batch (and the first
 * one read counts as one). 0 when nothing was read. */
static double audit_per_batch(cl_client *c, uint64_t from, uint64_t max) {
  Clinlog__V1__ReadRequest req = CLINLOG__V1__READ_REQUEST__INIT;
  req.stream = (char *)AUDIT;
  req.from = from;
  req.max_count = max;
  req.include_record = 1;
  cl_client_stream *st;
  cl_err err;
  if (!max || cl_client_read(c, &req, &st, &err) != 0)
    return 0;
  uint64_t records = 0, batches = 0;
  ProtobufCMessage *m;
  while (cl_client_stream_next(st, &m, &err) == 1) {
    Clinlog__V1__RecordedEvent *ev = (Clinlog__V1__RecordedEvent *)m;
    Clinlog__V1__Record *r = clinlog__v1__record__unpack(NULL, ev->record.len, ev->record.data);
    if (r) {
      if (r->batch_index == 0 || records == 0)
        batches++;
      records++;
      clinlog__v1__record__free_unpacked(r, NULL);
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
  cl_client_stream_free(st);
  return batches ? (double)records / (double)batches : 0;
}

/* ---------------------------------------------------------- sessions */

typedef struct cfg {
  const char *base, *exe;
  char tmpl[4096], run[4096], logpath[4200];
  double seconds;
} cfg;

/* Waits until the fhir projection has folded the preload (a Fhir.Read at
 * min_sequence = the head), retrying while the node is not ready. */
static int wait_ready(cl_client *c, const dataset *d) {
  Clinlog__V1__Consistency cons = CLINLOG__V1__CONSISTENCY__INIT;
  cons.min_sequence = d->head;
  Clinlog__V1__FhirReadRequest req = CLINLOG__V1__FHIR_READ_REQUEST__INIT;
  req.type = "Observation";
  req.id = (char *)d->obs[0];
  req.consistency = &cons;
  cl_err err;
  for (int i = 0; i < 600; i++) {
    ProtobufCMessage *m;
    if (cl_client_unary(c, "/clinlog.v1.Fhir/Read", &req.base,
                        &clinlog__v1__fhir_response__descriptor, &m, NULL, &err) == 0) {
      protobuf_c_message_free_unpacked(m, NULL);
      return 0;
    }
    bench_sleep_ms(100);
  }
  fprintf(stderr, "clinlog-bench audit: clinlogd never answered Fhir.Read: %s\n", err.msg);
  return -1;
}

/* One clinlogd on a fresh copy of the template, every scenario against it. */
static int run_session(const cfg *g, const dataset *d, int audit, sres out[NSCEN]) {
  char cmd[8400];
  bench_rmrf(g->run);
  snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", g->tmpl, g->run);
  if (system(cmd) != 0) {
    fprintf(stderr, "clinlog-bench audit: %s failed\n", cmd);
    return -1;
  }
  int rport = 0;
  char raft[32];
  if (bench_free_ports(&rport, 1) != 0)
    return -1;
  snprintf(raft, sizeof raft, "127.0.0.1:%d", rport);
  char *const argv[] = {(char *)g->exe,
                        "--data",
                        (char *)g->run,
                        "--dev",
                        "--listen",
                        "127.0.0.1:0",
                        "--raft-listen",
                        raft,
                        "--audit",
                        audit ? "on" : "off",
                        NULL};
  bench_proc srv = {0};
  if (bench_proc_start(argv, g->logpath, &srv))
    return -1;
  cl_client *c;
  int rc = -1;
  if (bench_client_open(srv.target, "client", &c))
    goto fail_srv;
  if (wait_ready(c, d))
    goto fail_client;
  size_t pool_pos = 0;
  /* warm-up, not counted: connection, caches */
  run_scenario(c, d, OP_GET_EVENT, 4, g->seconds / 4, &pool_pos);
  run_scenario(c, d, OP_FHIR_READ, 4, g->seconds / 4, &pool_pos);
  rc = 0;
  for (size_t i = 0; i < NSCEN; i++) {
    if (!PICKED(i))
      continue;
    uint64_t v0 = audit ? audit_version(c) : 0;
    double cpu0 = bench_proc_cpu_s(srv.pid);
    out[i] = run_scenario(c, d, SCEN[i].op, SCEN[i].conc, g->seconds, &pool_pos);
    double cpu1 = bench_proc_cpu_s(srv.pid);
    if (cpu0 >= 0 && cpu1 >= cpu0 && out[i].calls)
      out[i].cpu_us = (cpu1 - cpu0) * 1e6 / (double)out[i].calls;
    if (out[i].failed)
      rc = -1;
    if (audit) {
      uint64_t v1 = audit_version(c);
      /* v1 - v0 counts the first probe's own record too */
      out[i].records = v1 > v0 ? v1 - v0 - 1 : 0;
      uint64_t k = out[i].records < SAMPLE ? out[i].records : SAMPLE;
      out[i].per_batch = audit_per_batch(c, v0 + 2, k);
    }
  }
fail_client:
  cl_client_close(c);
fail_srv:
  if (bench_proc_stop(&srv))
    fprintf(stderr, "clinlogd did not stop within 20 s of SIGTERM (killed); see %s\n", g->logpath);
  return rc;
}

/* ---------------------------------------------------------- raw limit */

/* The median latency, in ms, of one small write made durable (pwrite of
 * 256 bytes, fdatasync) in dir, over `seconds`: what a fail-closed call
 * waits for at least once, whoever stores the record. 0 on failure. */
static double flush_p50_ms(const char *dir, double seconds) {
  char path[4200];
  snprintf(path, sizeof path, "%s/flush-probe", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return 0;
  static double v[200000];
  size_t n = 0;
  char buf[256];
  memset(buf, 'f', sizeof buf);
  double end = bench_mono() + seconds;
  while (n < sizeof v / sizeof v[0] && bench_mono() < end) {
    double t0 = bench_mono();
    if (pwrite(fd, buf, sizeof buf, (off_t)(n % 4096) * 256) != (ssize_t)sizeof buf ||
        fdatasync(fd) != 0)
      break;
    v[n++] = (bench_mono() - t0) * 1e3;
  }
  close(fd);
  unlink(path);
  return bench_median(v, n);
}

/* ---------------------------------------------------------- report */

typedef struct agg agg;
static double bound(const agg *a, int conc, double flush_ms);

struct agg { /* one scenario over the rounds */
  double off_ops, on_ops, ratio, off_p50, off_p99, on_p50, on_p99, records, per_call, per_batch;
  double off_cpu, on_cpu; /* clinlogd's CPU µs per call */
  double ratios[MAX_ROUNDS];
};

static agg aggregate(sres (*off)[NSCEN], sres (*on)[NSCEN], int rounds, size_t i) {
  agg a;
  memset(&a, 0, sizeof a);
  double v[7][MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    a.ratios[r] = off[r][i].ops > 0 ? on[r][i].ops / off[r][i].ops : 0;
    v[0][r] = off[r][i].ops;
    v[1][r] = on[r][i].ops;
    v[2][r] = off[r][i].p50_ms;
    v[3][r] = off[r][i].p99_ms;
    v[4][r] = on[r][i].p50_ms;
    v[5][r] = on[r][i].p99_ms;
    v[6][r] = (double)on[r][i].records;
  }
  double rr[MAX_ROUNDS], pc[MAX_ROUNDS], pb[MAX_ROUNDS], c0[MAX_ROUNDS], c1[MAX_ROUNDS];
  size_t npb = 0;
  for (int r = 0; r < rounds; r++) {
    rr[r] = a.ratios[r];
    c0[r] = off[r][i].cpu_us;
    c1[r] = on[r][i].cpu_us;
    pc[r] = on[r][i].calls ? (double)on[r][i].records / (double)on[r][i].calls : 0;
    if (on[r][i].per_batch > 0)
      pb[npb++] = on[r][i].per_batch;
  }
  size_t n = (size_t)rounds;
  a.ratio = bench_median(rr, n);
  a.off_ops = bench_median(v[0], n);
  a.on_ops = bench_median(v[1], n);
  a.off_p50 = bench_median(v[2], n);
  a.off_p99 = bench_median(v[3], n);
  a.on_p50 = bench_median(v[4], n);
  a.on_p99 = bench_median(v[5], n);
  a.records = bench_median(v[6], n);
  a.per_call = bench_median(pc, n);
  a.per_batch = bench_median(pb, npb);
  a.off_cpu = bench_median(c0, n);
  a.on_cpu = bench_median(c1, n);
  return a;
}

/* The best on/off a fail-closed design can reach at concurrency 1: the
 * call as fast as with audit off, plus one flush; 0 where concurrency
 * lets records share flushes (no such bound). */
static double bound(const agg *a, int conc, double flush_ms) {
  if (conc != 1 || a->off_ops <= 0 || flush_ms <= 0)
    return 0;
  double call_ms = 1e3 / a->off_ops;
  return call_ms / (call_ms + flush_ms);
}

/* ---------------------------------------------------------- main */

int bench_audit_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-audit", *exe_opt = NULL;
  int quick = 0, json = 0, rounds = 0, no_peer = 0;
  unsigned only = 0;
  double seconds = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--clinlogd") && i + 1 < argc)
      exe_opt = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
             atoi(argv[i + 1]) <= MAX_ROUNDS)
      rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc && atof(argv[i + 1]) > 0)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc && scen_index(argv[i + 1]) >= 0)
      only |= 1u << scen_index(argv[++i]);
    else if (!strcmp(argv[i], "--no-peer"))
      no_peer = 1;
    else {
      fprintf(stderr,
              "usage: clinlog-bench audit [--clinlogd PATH] [--dir D] [--quick] [--json]\n"
              "                           [--rounds N (1-9 pairs)] [--seconds S]\n"
              "                           [--only CALL:CONC ...] (Log.GetEvent, Fhir.Read,\n"
              "                           Log.Append at 1 or 64, e.g. --only Fhir.Read:64)\n"
              "                           [--no-peer] (skip the PostgreSQL peer)\n");
      return 2;
    }
  }
  if (only)
    picked = only;
  if (!rounds)
    rounds = quick ? 1 : 3;
  if (seconds <= 0)
    seconds = quick ? 1.5 : 4;
  size_t preload = quick ? 5000 : 10000;
  char exe[PATH_MAX + 16];
  if (bench_find_exe("audit", exe_opt, argv[0], "clinlogd", exe, sizeof exe) != 0)
    return 1;
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;
  cfg g;
  memset(&g, 0, sizeof g);
  g.base = base;
  g.exe = exe;
  g.seconds = seconds;
  mkdir(base, 0700);
  snprintf(g.tmpl, sizeof g.tmpl, "%s/template", base);
  snprintf(g.run, sizeof g.run, "%s/server", base);
  snprintf(g.logpath, sizeof g.logpath, "%s/clinlogd.log", base);
  bench_rmrf(g.tmpl);
  unlink(g.logpath);
  cl_signer admin;
  dataset d;
  memset(&d, 0, sizeof d);
  if (cl_signer_generate(&admin, &err) || make_template(g.tmpl, &admin, preload, &d))
    return 1;
  /* enough single-event appends for both append scenarios of a session at
   * well above this box's rate; every session uses the same ones */
  d.npool = (size_t)(seconds * 10000);
  d.pool = calloc(d.npool, sizeof *d.pool);
  if (!d.pool)
    abort();
  unsigned seed = 4243;
  for (size_t i = 0; i < d.npool; i++)
    bench_batch_make(&d.pool[i], 1, &admin, &seed);

  char machine[128];
  bench_machine(machine, sizeof machine);
  if (!json) {
    printf("clinlog-bench audit — %s; clinlogd --audit off vs on, same run,\n"
           "%d round(s) in ABBA order, %.1f s per scenario, fresh copy of %zu events per "
           "clinlogd;\nplaintext loopback, one shared channel, client on the same machine\n",
           machine, rounds, seconds, d.head ? (size_t)d.head : preload);
    fflush(stdout);
  }
  sres(*off)[NSCEN] = calloc((size_t)rounds, sizeof *off);
  sres(*on)[NSCEN] = calloc((size_t)rounds, sizeof *on);
  if (!off || !on)
    abort();
  int status = 0;
  for (int r = 0; r < rounds && !status; r++) {
    int first_on = r % 2; /* ABBA: off,on then on,off */
    for (int k = 0; k < 2 && !status; k++) {
      int audit = k == 0 ? first_on : !first_on;
      if (run_session(&g, &d, audit, audit ? on[r] : off[r]))
        status = 1;
      if (!json) {
        sres *s = audit ? on[r] : off[r];
        printf("  round %d audit %-3s:", r + 1, audit ? "on" : "off");
        for (size_t i = 0; i < NSCEN; i++)
          if (PICKED(i))
            printf(" %.0f", s[i].ops);
        printf(" ops/s\n");
        fflush(stdout);
      }
    }
  }
  /* the raw limit and the peer, in the same run */
  double flush_ms = 0;
  int peer_done = 0;
  cl_err perr;
  cl_err_clear(&perr);
  if (!status) {
    flush_ms = flush_p50_ms(base, quick ? 1 : 2);
    if (!no_peer) {
      bench_apg_scen need[NPEER];
      size_t map[NPEER], nneed = 0;
      for (size_t k = 0; k < NPEER; k++)
        for (size_t i = 0; i < NSCEN; i++)
          if (PICKED(i) && SCEN[i].peer == (int)k) {
            map[nneed] = k;
            need[nneed++] = PEER[k];
            break;
          }
      bench_apg_args pa = {
          .base = base, .rows = preload, .seconds = seconds, .rounds = rounds, .verbose = !json};
      if (bench_apg_run(&pa, need, nneed, &perr) == 0) {
        peer_done = 1;
        for (size_t k = 0; k < nneed; k++)
          PEER[map[k]] = need[k];
      } else {
        fprintf(stderr, "clinlog-bench audit: no PostgreSQL peer: %s\n", perr.msg);
      }
    }
  }
  if (status) {
    fprintf(stderr, "clinlog-bench audit: a session failed; see %s\n", g.logpath);
  } else if (json) {
    printf("{\"machine\":\"%s\",\"rounds\":%d,\"seconds\":%.1f,\"preload_events\":%llu,"
           "\"scenarios\":[",
           machine, rounds, seconds, (unsigned long long)d.head);
    const char *sep = "";
    for (size_t i = 0; i < NSCEN; i++) {
      if (!PICKED(i))
        continue;
      agg a = aggregate(off, on, rounds, i);
      printf("%s{\"call\":\"%s\",\"concurrency\":%d,\"off_ops_per_s\":%.0f,\"on_ops_per_s\":%.0f,"
             "\"ratio\":%.3f,\"ratios\":[",
             sep, SCEN[i].name, SCEN[i].conc, a.off_ops, a.on_ops, a.ratio);
      for (int r = 0; r < rounds; r++)
        printf("%s%.3f", r ? "," : "", a.ratios[r]);
      printf("],\"off_p50_ms\":%.3f,\"off_p99_ms\":%.3f,\"on_p50_ms\":%.3f,\"on_p99_ms\":%.3f,"
             "\"audit_records\":%.0f,\"audit_records_per_call\":%.3f,"
             "\"audit_records_per_batch\":%.2f,\"off_cpu_us_per_call\":%.1f,"
             "\"on_cpu_us_per_call\":%.1f,\"target_met\":%s,\"fail_closed_bound\":",
             a.off_p50, a.off_p99, a.on_p50, a.on_p99, a.records, a.per_call, a.per_batch,
             a.off_cpu, a.on_cpu, a.ratio >= 0.85 ? "true" : "false");
      double b = bound(&a, SCEN[i].conc, flush_ms);
      printf(b > 0 ? "%.3f" : "null", b);
      const bench_apg_scen *q = &PEER[SCEN[i].peer];
      if (peer_done)
        printf(",\"peer\":{\"off_ops_per_s\":%.0f,\"on_ops_per_s\":%.0f,\"ratio\":%.3f,"
               "\"on_p50_ms\":%.3f,\"on_p99_ms\":%.3f}}",
               q->off_ops, q->on_ops, q->ratio, q->on_p50, q->on_p99);
      else
        printf(",\"peer\":null}");
      sep = ",";
    }
    printf("],\"target\":\"on/off >= 0.85\",\"fdatasync_p50_ms\":%.3f,\"peer\":", flush_ms);
    if (peer_done)
      printf("\"PostgreSQL 15, durable, the audit row inserted in the same statement\"}\n");
    else
      printf("null,\"peer_error\":\"%s\"}\n", no_peer ? "--no-peer" : "see stderr");
  } else {
    printf("\n%-13s %-4s | %9s %7s %7s | %9s %7s %7s | %6s | %9s %5s %6s | %11s\n", "call", "conc",
           "off ops/s", "p50 ms", "p99 ms", "on ops/s", "p50 ms", "p99 ms", "on/off", "audit rec",
           "/call", "/batch", "cpu us off on");
    agg all[NSCEN];
    for (size_t i = 0; i < NSCEN; i++) {
      if (!PICKED(i))
        continue;
      agg a = all[i] = aggregate(off, on, rounds, i);
      printf("%-13s %-4d | %9.0f %7.2f %7.2f | %9.0f %7.2f %7.2f | %6.2f | %9.0f %5.2f %6.1f | "
             "%5.0f %5.0f\n",
             SCEN[i].name, SCEN[i].conc, a.off_ops, a.off_p50, a.off_p99, a.on_ops, a.on_p50,
             a.on_p99, a.ratio, a.records, a.per_call, a.per_batch, a.off_cpu, a.on_cpu);
    }
    printf("\non/off throughput ratios (median of the %d pair(s); target >= 0.85, i.e. at most "
           "15 %% slower):\n",
           rounds);
    for (size_t i = 0; i < NSCEN; i++) {
      if (!PICKED(i))
        continue;
      printf("  %-13s conc %-3d %5.2f  (%+.0f %%) %s   rounds:", SCEN[i].name, SCEN[i].conc,
             all[i].ratio, (all[i].ratio - 1) * 100, all[i].ratio >= 0.85 ? "MET   " : "MISSED");
      for (int r = 0; r < rounds; r++)
        printf(" %.2f", all[i].ratios[r]);
      printf("\n");
    }
    printf("\naudit rec: $audit records written during the scenario (audit on); /call: per "
           "call;\n/batch: records per group commit, from up to %d of them; cpu us: clinlogd's "
           "CPU time\n(user + system, every thread) per call, audit off and on (steadier than "
           "ops/s on a\nbusy machine)\n",
           SAMPLE);
    printf("\nthe raw limit: a fail-closed call waits for its record's flush; one small durable "
           "write\n(pwrite + fdatasync) takes %.3f ms here (p50), so at concurrency 1 on/off is at "
           "most\noff latency / (off latency + %.3f ms), whatever stores the record:\n",
           flush_ms, flush_ms);
    for (size_t i = 0; i < NSCEN; i++)
      if (PICKED(i) && bound(&all[i], SCEN[i].conc, flush_ms) > 0)
        printf("  %-13s conc %-3d bound %.2f, measured %.2f (%.0f %% of the bound)\n", SCEN[i].name,
               SCEN[i].conc, bound(&all[i], SCEN[i].conc, flush_ms), all[i].ratio,
               100 * all[i].ratio / bound(&all[i], SCEN[i].conc, flush_ms));
    if (peer_done) {
      printf("\nthe peer: PostgreSQL 15 (durable), the same call as one prepared statement with "
             "its audit\nrow inserted in it, so the row is committed before the answer "
             "(bench/bench_audit_pg.h)\n\n%-13s %-4s | %9s %9s %6s | %13s | %s\n",
             "call", "conc", "PG off/s", "PG on/s", "on/off", "clinlog on/off",
             "clinlog on / PG on");
      for (size_t i = 0; i < NSCEN; i++) {
        if (!PICKED(i))
          continue;
        const bench_apg_scen *q = &PEER[SCEN[i].peer];
        printf("%-13s %-4d | %9.0f %9.0f %6.2f | %14.2f | %.2f\n", SCEN[i].name, SCEN[i].conc,
               q->off_ops, q->on_ops, q->ratio, all[i].ratio,
               q->on_ops > 0 ? all[i].on_ops / q->on_ops : 0);
      }
    }
  }
  for (size_t i = 0; i < d.npool; i++)
    bench_batch_free(&d.pool[i]);
  free(d.pool);
  free(d.ids);
  free(d.obs);
  free(off);
  free(on);
  cl_signer_free(&admin);
  bench_rmrf(g.tmpl);
  bench_rmrf(g.run);
  return status;
}
