/* clinlog-bench ingest: home-device readings (the device-feeds part of
 * issue 12's ingest bench; HL7 over MLLP and FHIR writes are
 * bench_ingest_hl7.c's and bench_ingest_fhir.c's).
 *
 *   clinlog-bench ingest [--dir D] [--quick] [--json] [--readings N] [--batch B]
 *
 * In process (no gRPC transport, no clinlogd): for each row a durable
 * log of its own with D registered devices (DeviceRegistered, one per
 * patient, a gateway principal) and the fhir projection (the device
 * registry) running and caught up, then
 * N fresh readings per scenario (a blood-pressure panel; every 4th with a
 * status report) submitted by a gateway through the request layer's
 * cl_dev_submit (adapters/device/submit.h: parse, unit and time checks,
 * registry lookup, mapping, log-key signature, one durable append per
 * batch), in batches of B readings (a gateway's message), from 1 and 16
 * threads ("streams"). Each thread's readings come in runs of 10 per
 * device, as a gateway forwards one device's backlog.
 *
 * Reported in the same run, each as readings/s with the batch latency
 * p50/p99:
 *   - clinlog: cl_dev_submit at 1 and 16 streams (target >= 50,000/s);
 *   - the raw limit: the store appending the same events, mapped and
 *     signed before the clock starts (cl_log_append, same batches and
 *     threads): what the device path adds on top of the store;
 *   - the peer: PostgreSQL 15 with durable commits, a readings table
 *     (device, reading primary key, patient, time, code, systolic,
 *     diastolic, unit, battery), the same batches as one multi-row
 *     INSERT ... ON CONFLICT DO NOTHING per transaction (idempotent, as a
 *     resend is here) at 1 and 16 connections, and COPY at 1 (its bulk path,
 *     without idempotency). Values are parsed before the clock starts: the
 *     peer gets rows, clinlog gets JSON text.
 * Ratios: clinlog / raw and clinlog / PostgreSQL for the same streams. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/device/submit.h"
#include "bench/benchutil.h"
#include "bench/pgpeer.h"
#include "bench/popgen.h"
#include "bench/workload.h"
#include "query/fhir/fhir.h"
#include "store/keyring.h"
#include "store/logkey.h"

int bench_ingest_main(int argc, char **argv);

#define RUN 10 /* readings per device in a row */

typedef struct rdg { /* one reading, as JSON and as the peer's row */
  char *json;
  int device, sys, dia, battery; /* battery < 0: none */
  char reading[48];
  int64_t t; /* unix seconds */
} rdg;

typedef struct args {
  const char *base;
  size_t readings, batch;
  int devices, json;
} args;

/* ---------------------------------------------------------- workload */

static void make_readings(rdg *v, size_t n, int devices, int scenario, unsigned *seed) {
  int64_t now = (int64_t)time(NULL);
  for (size_t i = 0; i < n; i++) {
    rdg *r = &v[i];
    r->device = (int)((i / RUN) % (size_t)devices);
    r->sys = 100 + (int)(rand_r(seed) % 60);
    r->dia = 60 + (int)(rand_r(seed) % 30);
    r->battery = i % 4 == 0 ? (int)(rand_r(seed) % 100) : -1;
    r->t = now - 3600 + (int64_t)(rand_r(seed) % 3000);
    snprintf(r->reading, sizeof r->reading, "s%d-%zu", scenario, i);
    char ts[32], st[96] = "";
    struct tm tm;
    time_t tt = (time_t)r->t;
    gmtime_r(&tt, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (r->battery >= 0)
      snprintf(st, sizeof st,
               ",\"status\":{\"battery\":%d,\"signal\":-67,\"connectivity\":\"online\"}",
               r->battery);
    char buf[512];
    int k =
        snprintf(buf, sizeof buf,
                 "{\"device\":\"dev-%d\",\"patient\":\"P%d\",\"reading\":\"%s\",\"time\":\"%s\","
                 "\"code\":\"85354-9\",\"components\":[{\"code\":\"8480-6\",\"value\":%d,"
                 "\"unit\":\"mm[Hg]\"},{\"code\":\"8462-4\",\"value\":%d,\"unit\":\"mm[Hg]\"}]%s}",
                 r->device, r->device, r->reading, ts, r->sys, r->dia, st);
    r->json = strndup(buf, (size_t)k);
    if (!r->json) {
      fprintf(stderr, "out of memory\n");
      exit(1);
    }
  }
}

/* ---------------------------------------------------------- the three ways in */

typedef struct wk {
  pthread_t t;
  int kind; /* 0 clinlog, 1 raw store, 2 pg insert, 3 pg copy */
  cl_svc *svc;
  cl_log *log;
  PGconn *pg;
  rdg *v;
  size_t n, batch;
  Clinlog__V1__AppendBatch *pre; /* raw: signed batches */
  double *lat;
  size_t nlat;
  int failed;
  pthread_barrier_t *go;
} wk;

static int clinlog_batch(wk *w, size_t off, size_t n) {
  cl_dev_line lines[1024];
  cl_dev_outcome *out = calloc(n, sizeof *out);
  if (!out)
    return -1;
  for (size_t i = 0; i < n; i++)
    lines[i] = (cl_dev_line){w->v[off + i].json, strlen(w->v[off + i].json)};
  cl_req_ctx rc;
  cl_req_ctx_init(&rc, M_DEVICE_SUBMIT, "bench");
  snprintf(rc.principal, sizeof rc.principal, "gw");
  snprintf(rc.roles, sizeof rc.roles, "integration");
  cl_err err;
  int code = cl_dev_submit(w->svc, &rc, lines, n, NULL, out, &err);
  for (size_t i = 0; !code && i < n; i++)
    if (out[i].status != CL_DEV_ACCEPTED) {
      fprintf(stderr, "reading %zu: %s: %s\n", off + i, cl_dev_status_name(out[i].status),
              out[i].reason);
      code = -1;
    }
  if (code > 0 || (code < 0 && code != -1))
    fprintf(stderr, "submit: %s\n", err.msg);
  free(out);
  return code;
}

static int pg_batch(wk *w, size_t off, size_t n) {
  size_t cap = n * 160 + 256, k = 0;
  char *sql = malloc(cap);
  if (!sql)
    return -1;
  k += (size_t)snprintf(sql + k, cap - k,
                        "INSERT INTO readings (device, reading, patient, measured_at, code, sys, "
                        "dia, unit, battery) VALUES ");
  for (size_t i = 0; i < n; i++) {
    const rdg *r = &w->v[off + i];
    char bat[16] = "NULL";
    if (r->battery >= 0)
      snprintf(bat, sizeof bat, "%d", r->battery);
    k += (size_t)snprintf(
        sql + k, cap - k, "%s('dev-%d','%s','P%d',to_timestamp(%lld),'85354-9',%d,%d,'mm[Hg]',%s)",
        i ? "," : "", r->device, r->reading, r->device, (long long)r->t, r->sys, r->dia, bat);
  }
  snprintf(sql + k, cap - k, " ON CONFLICT DO NOTHING");
  cl_err err;
  int rc = bench_pg_exec(w->pg, sql, &err);
  if (rc)
    fprintf(stderr, "%s\n", err.msg);
  free(sql);
  return rc;
}

static int copy_batch(wk *w, size_t off, size_t n) {
  PGresult *res = PQexec(w->pg, "COPY readings (device, reading, patient, measured_at, code, sys, "
                                "dia, unit, battery) FROM STDIN");
  int ok = PQresultStatus(res) == PGRES_COPY_IN;
  PQclear(res);
  for (size_t i = 0; ok && i < n; i++) {
    const rdg *r = &w->v[off + i];
    char row[256], bat[16] = "\\N";
    if (r->battery >= 0)
      snprintf(bat, sizeof bat, "%d", r->battery);
    struct tm tm;
    time_t tt = (time_t)r->t;
    gmtime_r(&tt, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S+00", &tm);
    int len = snprintf(row, sizeof row, "dev-%d\t%s\tP%d\t%s\t85354-9\t%d\t%d\tmm[Hg]\t%s\n",
                       r->device, r->reading, r->device, ts, r->sys, r->dia, bat);
    ok = PQputCopyData(w->pg, row, len) == 1;
  }
  ok = PQputCopyEnd(w->pg, ok ? NULL : "bench failed") == 1 && ok;
  res = PQgetResult(w->pg);
  ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok)
    fprintf(stderr, "COPY: %s\n", PQerrorMessage(w->pg));
  PQclear(res);
  while ((res = PQgetResult(w->pg)))
    PQclear(res);
  return ok ? 0 : -1;
}

static void *run(void *p) {
  wk *w = p;
  pthread_barrier_wait(w->go);
  for (size_t off = 0, b = 0; off < w->n && !w->failed; off += w->batch, b++) {
    size_t n = w->n - off < w->batch ? w->n - off : w->batch;
    double t0 = bench_mono();
    int rc;
    if (w->kind == 0) {
      rc = clinlog_batch(w, off, n);
    } else if (w->kind == 1) {
      cl_append_result r;
      cl_err err;
      rc = cl_log_append(w->log, &w->pre[b], &r, &err);
      if (rc == 0)
        cl_append_result_free(&r);
      else
        fprintf(stderr, "append: %s\n", err.msg);
    } else {
      rc = w->kind == 2 ? pg_batch(w, off, n) : copy_batch(w, off, n);
    }
    w->lat[w->nlat++] = bench_mono() - t0;
    w->failed = rc != 0;
  }
  return NULL;
}

typedef struct result {
  double rps, p50_ms, p99_ms;
  int failed, ran;
} result;

/* Runs `threads` workers over v[0..n), split evenly. */
static result drive(wk *proto, int threads, rdg *v, size_t n) {
  wk ws[16];
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
  size_t per = n / (size_t)threads, nb = (per + proto->batch - 1) / proto->batch;
  for (int i = 0; i < threads; i++) {
    ws[i] = *proto;
    ws[i].v = v + (size_t)i * per;
    ws[i].n = per;
    ws[i].lat = calloc(nb, sizeof(double));
    ws[i].nlat = 0;
    ws[i].go = &go;
    if (proto->pre)
      ws[i].pre = proto->pre + (size_t)i * nb;
    pthread_create(&ws[i].t, NULL, run, &ws[i]);
  }
  pthread_barrier_wait(&go);
  double t0 = bench_mono();
  result r = {.ran = 1};
  double *all = calloc(nb * (size_t)threads + 1, sizeof(double));
  size_t nall = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(ws[i].t, NULL);
    r.failed |= ws[i].failed;
    memcpy(all + nall, ws[i].lat, ws[i].nlat * sizeof(double));
    nall += ws[i].nlat;
    free(ws[i].lat);
  }
  double secs = bench_mono() - t0;
  pthread_barrier_destroy(&go);
  r.rps = (double)(per * (size_t)threads) / secs;
  double p50, p99;
  bench_percentiles(all, nall, &p50, &p99);
  r.p50_ms = p50 * 1000, r.p99_ms = p99 * 1000;
  free(all);
  return r;
}

/* ---------------------------------------------------------- raw: pre-mapped, pre-signed */

static int any_device(void *ctx, const char *device, const char *patient, cl_dev_registration *out,
                      cl_err *err) {
  (void)ctx, (void)device, (void)patient, (void)err;
  out->assigned = CL_DEV_TO_PATIENT;
  return 0;
}

/* The batches the raw workers append: v mapped as cl_dev_submit maps it
 * (node-signed), one batch per `batch` readings of each thread's share. */
static Clinlog__V1__AppendBatch *presign(cl_log *log, rdg *v, size_t n, int threads, size_t batch,
                                         size_t *nout) {
  size_t per = n / (size_t)threads, nb = (per + batch - 1) / batch, k = 0;
  Clinlog__V1__AppendBatch *out = calloc(nb * (size_t)threads, sizeof *out);
  cl_dev_opts o = {.principal_id = "gw",
                   .gateway = 1,
                   .signer = CL_LOG_PRINCIPAL,
                   .signer_role = CL_ROLE_LOG,
                   .now_ms = (int64_t)time(NULL) * 1000,
                   .lookup = any_device};
  for (int t = 0; t < threads; t++)
    for (size_t off = 0; off < per; off += batch, k++) {
      size_t m = per - off < batch ? per - off : batch, ne = 0;
      ProtobufCBinaryData *evs = calloc(2 * m, sizeof *evs);
      uint8_t(*h)[32] = calloc(2 * m, 32);
      for (size_t i = 0; i < m; i++) {
        const rdg *r = &v[(size_t)t * per + off + i];
        cl_dev_mapped mp;
        cl_err err;
        if (cl_dev_map_line(r->json, strlen(r->json), &o, &mp, NULL, &err)) {
          fprintf(stderr, "map: %s\n", err.msg);
          exit(1);
        }
        for (size_t j = 0; j < mp.n; j++) { /* the bytes are kept: freed at exit */
          evs[ne] = (ProtobufCBinaryData){mp.ev[j].len, mp.ev[j].bytes};
          cl_event_hash(mp.ev[j].bytes, mp.ev[j].len, h[ne++]);
        }
      }
      Clinlog__V1__Signature *s = calloc(1, sizeof *s);
      uint8_t *sig = malloc(64), *pk = malloc(32);
      clinlog__v1__signature__init(s);
      cl_err err;
      if (cl_log_sign_batch(log, (const uint8_t(*)[32])h, ne, sig, pk, &err)) {
        fprintf(stderr, "sign: %s\n", err.msg);
        exit(1);
      }
      s->key_id = (ProtobufCBinaryData){32, pk};
      s->signature = (ProtobufCBinaryData){64, sig};
      clinlog__v1__append_batch__init(&out[k]);
      out[k].n_events = ne;
      out[k].events = evs;
      out[k].batch_signature = s;
      free(h);
    }
  *nout = k;
  return out;
}

/* ---------------------------------------------------------- the run */

/* One row's node: a durable store of its own (D/ingest-<row>) holding the
 * registry (one device per patient, a gateway principal), with the fhir
 * projection running and caught up, so every row starts from the same
 * state (sharing one log, a later row started on the flushes and
 * compactions the earlier rows left: docs/bench.md). The projection folds
 * what the row appends while it runs, as on a server. */
typedef struct node {
  cl_signer admin;
  cl_log *log;
  cl_svc *svc;
  char dir[4096];
} node;

static int node_open(const args *a, const char *row, node *n) {
  char name[64];
  snprintf(name, sizeof name, "ingest-%s", row);
  cl_log_options o;
  n->svc = NULL;
  n->log = bench_gen_log(a->base, name, &n->admin, &o, n->dir);
  bench_gen g = {.log = n->log, .admin = &n->admin, .seed = 11};
  for (int d = 0; d < a->devices; d++) {
    char stream[32];
    snprintf(stream, sizeof stream, "patient-P%d", d);
    bench_gen_add(&g, stream, (int64_t)time(NULL) - 86400,
                  "\"deviceRegistered\":{\"deviceId\":\"dev-%d\",\"patientId\":\"P%d\","
                  "\"principalId\":\"gw\",\"manufacturer\":\"Acme\",\"model\":\"BP-100\"}",
                  d, d);
  }
  bench_gen_flush(&g);
  cl_log_close(n->log);
  o.sync = 1; /* durable, as PostgreSQL's commits */
  cl_err err;
  if (cl_log_open(&o, &n->log, &err)) {
    fprintf(stderr, "store: %s\n", err.msg);
    return -1;
  }
  cl_svc_options so = {.log = n->log};
  uint64_t head;
  cl_log_head(n->log, &head, NULL);
  if (cl_svc_new(&so, &n->svc, &err) ||
      cl_svc_add_projection(n->svc, &cl_fhir_projection, NULL, &err) ||
      cl_svc_wait(n->svc, "fhir", head, 0, &err)) {
    fprintf(stderr, "svc: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static void node_close(node *n) {
  cl_svc_free(n->svc);
  cl_log_close(n->log);
  cl_signer_free(&n->admin);
  bench_rmrf(n->dir);
}

static void line(const args *a, const char *what, int streams, result r, const result *vs_raw,
                 const result *vs_pg) {
  if (a->json) {
    printf("{\"bench\":\"ingest\",\"what\":\"%s\",\"streams\":%d,\"batch\":%zu,\"rps\":%.0f,"
           "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"failed\":%s",
           what, streams, a->batch, r.rps, r.p50_ms, r.p99_ms, r.failed ? "true" : "false");
    if (vs_raw && vs_raw->ran)
      printf(",\"vs_raw\":%.3f", r.rps / vs_raw->rps);
    if (vs_pg && vs_pg->ran)
      printf(",\"vs_pg\":%.3f", r.rps / vs_pg->rps);
    if (!strcmp(what, "clinlog"))
      printf(",\"target_rps\":50000,\"met\":%s", r.rps >= 50000 ? "true" : "false");
    printf("}\n");
    return;
  }
  printf("%-34s %7d %12.0f %9.2f %9.2f", what, streams, r.rps, r.p50_ms, r.p99_ms);
  if (vs_raw && vs_raw->ran)
    printf("  %6.2f", r.rps / vs_raw->rps);
  else
    printf("  %6s", "");
  if (vs_pg && vs_pg->ran)
    printf("  %6.2f", r.rps / vs_pg->rps);
  if (!strcmp(what, "clinlog"))
    printf("   target >= 50000: %s", r.rps >= 50000 ? "met" : "MISSED");
  printf("%s\n", r.failed ? "  (FAILED)" : "");
}

static int pg_peer(const args *a, rdg *v[3], result pgr[3]) {
  const char *why = bench_pg_missing();
  if (why) {
    fprintf(stderr, "PostgreSQL peer skipped: %s\n", why);
    return 0;
  }
  bench_pg g = {0};
  cl_err err;
  cl_err_clear(&err);
  int rc = bench_pg_start(&g, a->base, 1, &err);
  if (!rc)
    rc = bench_pg_exec(g.c,
                       "CREATE TABLE readings (device text, reading text, patient text, "
                       "measured_at timestamptz, code text, sys int, dia int, unit text, "
                       "battery int, PRIMARY KEY (device, reading))",
                       &err);
  PGconn *cs[16] = {0};
  for (int i = 0; !rc && i < 16; i++)
    if (!(cs[i] = bench_pg_connect(&g, &err)))
      rc = -1;
  if (rc) {
    fprintf(stderr, "PostgreSQL peer: %s\n", err.msg);
  } else {
    for (int s = 0; s < 3; s++) {
      int threads = s == 1 ? 16 : 1;
      wk w = {.kind = s == 2 ? 3 : 2, .batch = a->batch};
      pgr[s] = (result){0};
      if (threads == 1) {
        w.pg = cs[0];
        pgr[s] = drive(&w, 1, v[s], a->readings);
      } else {
        /* 16 threads, each its own connection: run them by hand */
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 17);
        wk pw[16];
        size_t per = a->readings / 16, nb = (per + a->batch - 1) / a->batch;
        for (int t = 0; t < 16; t++) {
          pw[t] = w;
          pw[t].pg = cs[t];
          pw[t].v = v[s] + (size_t)t * per;
          pw[t].n = per;
          pw[t].lat = calloc(nb, sizeof(double));
          pw[t].go = &go;
          pthread_create(&pw[t].t, NULL, run, &pw[t]);
        }
        pthread_barrier_wait(&go);
        double t0 = bench_mono();
        double *all = calloc(nb * 16, sizeof(double));
        size_t nall = 0;
        pgr[s].ran = 1;
        for (int t = 0; t < 16; t++) {
          pthread_join(pw[t].t, NULL);
          pgr[s].failed |= pw[t].failed;
          memcpy(all + nall, pw[t].lat, pw[t].nlat * sizeof(double));
          nall += pw[t].nlat;
          free(pw[t].lat);
        }
        pgr[s].rps = (double)(per * 16) / (bench_mono() - t0);
        double p50, p99;
        bench_percentiles(all, nall, &p50, &p99);
        pgr[s].p50_ms = p50 * 1000, pgr[s].p99_ms = p99 * 1000;
        free(all);
        pthread_barrier_destroy(&go);
      }
    }
  }
  for (int i = 0; i < 16; i++)
    if (cs[i])
      PQfinish(cs[i]);
  bench_pg_stop(&g);
  return rc;
}

int bench_ingest_main(int argc, char **argv) {
  args a = {.base = "/tmp/clinlog-bench", .readings = 160000, .batch = 500, .devices = 2000};
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      a.base = argv[++i];
    else if (!strcmp(argv[i], "--readings") && i + 1 < argc)
      a.readings = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      a.batch = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--quick"))
      a.readings = 32000;
    else if (!strcmp(argv[i], "--json"))
      a.json = 1;
    else {
      fprintf(stderr, "usage: clinlog-bench ingest [--dir D] [--quick] [--json] [--readings N] "
                      "[--batch B]\n");
      return 2;
    }
  }
  if (a.batch < 1 || a.batch > 1024 || a.readings < 16 * a.batch) {
    fprintf(stderr, "clinlog-bench ingest: --batch 1..1024, --readings at least 16 batches\n");
    return 2;
  }
  a.readings = a.readings / (16 * a.batch) * (16 * a.batch);
  cl_err err;
  if (cl_crypto_init(&err))
    return 1;

  unsigned seed = 77;
  rdg *v[5];
  for (int s = 0; s < 5; s++) { /* clinlog 1, 16; raw 1, 16; pg copy */
    v[s] = calloc(a.readings, sizeof(rdg));
    make_readings(v[s], a.readings, a.devices, s, &seed);
  }
  char machine[256];
  bench_machine(machine, sizeof machine);
  if (!a.json)
    printf("clinlog-bench ingest (device readings) — %s; %zu readings per scenario, %zu per "
           "batch, %d devices, durable commits\n\n%-34s %7s %12s %9s %9s  %6s  %6s\n",
           machine, a.readings, a.batch, a.devices, "", "streams", "readings/s", "p50 ms", "p99 ms",
           "/raw", "/pg");

  /* raw: the store appending the same (pre-mapped, pre-signed) events */
  result raw[2];
  for (int s = 0; s < 2; s++) {
    int threads = s ? 16 : 1;
    size_t nb;
    node n;
    if (node_open(&a, s ? "raw16" : "raw1", &n))
      return 1;
    wk w = {.kind = 1, .log = n.log, .batch = a.batch};
    w.pre = presign(n.log, v[2 + s], a.readings, threads, a.batch, &nb);
    raw[s] = drive(&w, threads, v[2 + s], a.readings);
    node_close(&n);
  }
  /* clinlog: the request layer's device submission */
  result cl[2];
  for (int s = 0; s < 2; s++) {
    node n;
    if (node_open(&a, s ? "clinlog16" : "clinlog1", &n))
      return 1;
    wk w = {.kind = 0, .svc = n.svc, .batch = a.batch};
    cl[s] = drive(&w, s ? 16 : 1, v[s], a.readings);
    node_close(&n);
  }
  /* the mapping alone (parse, checks, pack; registry answered at once), 1
   * thread: what a reading costs before the store */
  result map = {.ran = 1};
  {
    cl_dev_opts mo = {.principal_id = "gw",
                      .gateway = 1,
                      .signer = CL_LOG_PRINCIPAL,
                      .signer_role = CL_ROLE_LOG,
                      .now_ms = (int64_t)time(NULL) * 1000,
                      .lookup = any_device};
    double t0 = bench_mono();
    for (size_t i = 0; i < a.readings; i++) {
      cl_dev_mapped mp;
      if (cl_dev_map_line(v[0][i].json, strlen(v[0][i].json), &mo, &mp, NULL, &err))
        map.failed = 1;
      cl_dev_mapped_clear(&mp);
    }
    map.rps = (double)a.readings / (bench_mono() - t0);
  }
  /* the peer */
  result pgr[3] = {{0}};
  rdg *pv[3] = {v[0], v[1], v[4]};
  int pg_rc = pg_peer(&a, pv, pgr);

  for (int s = 0; s < 2; s++)
    line(&a, "clinlog", s ? 16 : 1, cl[s], &raw[s], &pgr[s]);
  for (int s = 0; s < 2; s++)
    line(&a, "raw: store append, pre-signed", s ? 16 : 1, raw[s], NULL, NULL);
  line(&a, "parse and map only (no I/O)", 1, map, NULL, NULL);
  for (int s = 0; s < 2; s++)
    if (pgr[s].ran)
      line(&a, "PostgreSQL INSERT ON CONFLICT", s ? 16 : 1, pgr[s], NULL, NULL);
  if (pgr[2].ran)
    line(&a, "PostgreSQL COPY", 1, pgr[2], NULL, NULL);
  if (!a.json && !pgr[0].ran)
    printf("(PostgreSQL peer not run: see above)\n");

  int failed = cl[0].failed || cl[1].failed || raw[0].failed || raw[1].failed || pg_rc;
  return failed ? 1 : 0;
}
