/* clinlog-bench ingest fhir: FHIR R4 writes into a clinlogd — transaction
 * Bundles over the REST face and an NDJSON load with `clinlog ingest fhir`
 * (docs/bench.md, "FHIR writes"); the HL7 and device parts of issue 12's
 * ingest bench are `clinlog-bench ingest hl7` and `clinlog-bench ingest`.
 *
 *   clinlog-bench ingest fhir [--clinlogd PATH] [--clinlog PATH] [--dir D]
 *                             [--quick] [--json] [--bundles N] [--no-pg]
 *
 * A fresh data directory (D/server) with a feed's key (D/feed.key)
 * registered as principal "fhir-feed" (role integration); clinlogd runs
 * with --http-listen on loopback (plaintext, --dev) and its defaults
 * otherwise (the audit trail and the projections on, fsync'd commits).
 * Records are generated before the clock starts (fhirgen.h: an outpatient
 * visit of 11 resources, 12 events, per patient).
 *
 * Transactions, at 1 and 16 connections: each connection POSTs one
 * record's transaction Bundle to [base], waits for the 200 and its
 * transaction-response, sends the next (HTTP/1.1 keep-alive). In the same
 * run, on the same Bundles:
 *  - store: each Bundle mapped in process (adapters/fhir, as the server
 *    does) and signed before the clock starts, appended with cl_log_append
 *    (one batch per Bundle, same fsync policy) from as many threads, into
 *    D/store: the limit the REST path is compared against;
 *  - pg: PostgreSQL 15 (synchronous_commit on), one transaction per Bundle
 *    inserting its resources as JSONB rows (type, id, patient, body; the id
 *    unique), from as many connections: the storage of a FHIR server on
 *    PostgreSQL (HAPI FHIR's choice) without its indexing.
 * NDJSON, one load: the same kind of records as a Bulk Data export (one
 * resource per line, Patients with ids, references Patient/<id>) loaded by
 * the real `clinlog ingest fhir FILE --server ... --key feed.key` against
 * the clinlogd (wall time of the command); the store row appends the
 * lines mapped and signed before the clock starts, the way the command
 * commits them; pg inserts them a row per line, durable each, as the
 * command is.
 * Per row: units/s (Bundles or lines), resources/s, latency p50/p99 (ms:
 * a Bundle's POST to its whole response; an NDJSON line: not measured),
 * clinlogd CPU per resource (µs), and the ratios REST / store and REST /
 * PostgreSQL. Exit status 0; 1 when a write was not accepted or a step
 * failed; 2 on a usage error. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/fhir/fhirw.h"
#include "bench/benchutil.h"
#include "bench/connrun.h"
#include "bench/fhirgen.h"
#include "bench/httpc.h"
#include "bench/pgpeer.h"
#include "bench/workload.h"
#include "store/keys.h"
#include "store/log.h"

int bench_ingest_fhir_main(int argc, char **argv);

#define PRINCIPAL "fhir-feed"
#define NSCEN 2
static const int CONNS[NSCEN] = {1, 16};
#define NDJSON_BATCH 500 /* events per append of clinlog ingest fhir (its default) */

/* ---------------------------------------------------------- units */

typedef struct funit { /* a Bundle, or an NDJSON line */
  char *json;
  size_t len, resources;
  char **ids, **types, **bodies; /* per resource (pg) */
  const char **pats;              /* per resource: its patient (pg) */
  char patient[128];
  ProtobufCBinaryData *ev; /* its events, mapped and signed (store) */
  bench_batch sb;
  size_t nev;
  int borrowed; /* a group of other units: its arrays are its own, their contents not */
} funit;

typedef struct fset {
  funit *u;
  size_t n, resources, events;
} fset;

static void fset_free(fset *s) {
  for (size_t i = 0; i < s->n; i++) {
    funit *u = &s->u[i];
    for (size_t k = 0; k < u->resources && !u->borrowed; k++) {
      free(u->ids ? u->ids[k] : NULL);
      free(u->types ? u->types[k] : NULL);
      free(u->bodies ? u->bodies[k] : NULL);
    }
    free(u->ids), free(u->types), free(u->bodies), free(u->pats);
    for (size_t k = 0; k < u->nev && !u->borrowed; k++)
      free(u->ev[k].data);
    free(u->ev);
    free(u->json);
  }
  free(s->u);
  memset(s, 0, sizeof *s);
}

/* Maps resources res[0..n) (as cl_fhirw_parse reads them, in an order
 * where what is referenced comes first; body[i]: res[i]'s JSON text) with
 * refs as the server or the command does, into u's events and its pg
 * rows; signs them as one batch. */
static int unit_map(funit *u, json_t **res, const char **body, const char **full, size_t n,
                    json_t *refs, const cl_signer *feed, int bulk) {
  cl_fhirw_opts o = {.principal_id = PRINCIPAL,
                     .source_system = "fhir-bench",
                     .now_ns = bench_wall_ns(),
                     .refs = refs,
                     .bulk = bulk};
  if (!(u->ids = calloc(n, sizeof *u->ids)) || !(u->types = calloc(n, sizeof *u->types)) ||
      !(u->bodies = calloc(n, sizeof *u->bodies)) || !(u->pats = calloc(n, sizeof *u->pats)) ||
      !(u->ev = calloc(2 * n, sizeof *u->ev)))
    return -1;
  u->resources = n;
  for (size_t i = 0; i < n; i++) {
    cl_fhirw_mapped *m = NULL;
    cl_fhirw_error fe;
    cl_err err;
    if (cl_fhirw_map(res[i], NULL, NULL, "", &o, &m, &fe, &err) ||
        cl_fhirw_refs_add(refs, m, full ? full[i] : NULL)) {
      fprintf(stderr, "clinlog-bench ingest fhir: a generated resource does not map: %s\n",
              err.msg);
      cl_fhirw_mapped_free(m);
      return -1;
    }
    for (size_t k = 0; k < m->n; k++) {
      u->ev[u->nev++] = (ProtobufCBinaryData){m->ev[k].len, m->ev[k].bytes};
      m->ev[k].bytes = NULL; /* now u's */
    }
    u->ids[i] = strdup(m->id);
    u->types[i] = strdup(m->type);
    u->bodies[i] = strdup(body[i]);
    snprintf(u->patient, sizeof u->patient, "%s", m->patient_id);
    u->pats[i] = u->patient;
    cl_fhirw_mapped_free(m);
    if (!u->ids[i] || !u->types[i] || !u->bodies[i])
      return -1;
  }
  bench_batch_sign(&u->sb, u->ev, u->nev, feed);
  return 0;
}

/* n transaction Bundles of the set `tag`. */
static int bundles_make(fset *s, size_t n, const char *tag, const cl_signer *feed) {
  memset(s, 0, sizeof *s);
  if (!(s->u = calloc(n, sizeof *s->u)))
    return -1;
  for (size_t i = 0; i < n; i++) {
    funit *u = &s->u[i];
    s->n = i + 1;
    if (!(u->json = bench_fhir_bundle(tag, (unsigned)i)))
      return -1;
    u->len = strlen(u->json);
    /* mapped as the server reads it; the pg rows as text */
    json_t *b = json_loads(u->json, 0, NULL), *w = NULL;
    cl_fhirw_error fe;
    cl_err err;
    if (cl_fhirw_parse(u->json, u->len, &w, &fe, &err)) {
      json_decref(b);
      return -1;
    }
    json_t *es = json_object_get(w, "entry"), *pes = json_object_get(b, "entry");
    size_t ne = json_array_size(es), k = 0;
    json_t *res[64];
    const char *full[64], *body[64] = {0};
    json_t *refs = json_object();
    int rc = b && refs && ne == json_array_size(pes) && ne <= 64 ? 0 : -1;
    for (int rank = 0; rank < CL_FHIRW_RANKS && !rc; rank++)
      for (size_t j = 0; j < ne; j++) {
        json_t *e = json_array_get(es, j), *r = json_object_get(e, "resource");
        if (cl_fhirw_rank(r) != rank)
          continue;
        res[k] = r;
        full[k] = json_string_value(json_object_get(e, "fullUrl"));
        body[k++] = json_dumps(json_object_get(json_array_get(pes, j), "resource"),
                               JSON_COMPACT | JSON_REAL_PRECISION(15));
      }
    for (size_t j = 0; j < k && !rc; j++)
      rc = body[j] ? 0 : -1;
    if (!rc)
      rc = unit_map(u, res, body, full, k, refs, feed, 0);
    for (size_t j = 0; j < k; j++)
      free((char *)body[j]);
    json_decref(refs);
    json_decref(w);
    json_decref(b);
    if (rc)
      return -1;
    s->resources += u->resources;
    s->events += u->nev;
  }
  return 0;
}

/* The NDJSON load: `records` records as lines (one unit each), written
 * to path in rank order (Patients first, as an export's files are read). */
static int ndjson_make(fset *s, size_t records, const char *tag, const char *path,
                       const cl_signer *feed) {
  memset(s, 0, sizeof *s);
  size_t cap = records * BENCH_FHIR_RESOURCES, n = 0;
  char **text = calloc(cap ? cap : 1, sizeof *text);
  json_t *refs = json_object();
  FILE *f = fopen(path, "w");
  int rc = text && refs && f && (s->u = calloc(cap ? cap : 1, sizeof *s->u)) ? 0 : -1;
  for (size_t i = 0; i < records && !rc; i++) {
    char *b = bench_fhir_bundle(tag, (unsigned)i), pid[64], **lines = NULL;
    snprintf(pid, sizeof pid, "%s-p%zu", tag, i);
    size_t nl = b ? bench_fhir_ndjson(b, pid, &lines) : 0;
    for (size_t k = 0; k < nl; k++)
      if (n < cap)
        text[n++] = lines[k];
      else
        free(lines[k]);
    free(lines);
    free(b);
    rc |= nl != BENCH_FHIR_RESOURCES;
  }
  /* in rank order, as the command reads an export (Patients first) */
  for (int rank = 0; rank < CL_FHIRW_RANKS && !rc; rank++)
    for (size_t i = 0; i < n && !rc; i++) {
      json_t *w = NULL;
      cl_fhirw_error fe;
      cl_err err;
      if (cl_fhirw_parse(text[i], strlen(text[i]), &w, &fe, &err)) {
        rc = -1;
        break;
      }
      if (cl_fhirw_rank(w) == rank) {
        funit *u = &s->u[s->n++];
        const char *body = text[i];
        if (!(u->json = strdup(text[i])) || fprintf(f, "%s\n", text[i]) < 0 ||
            unit_map(u, &w, &body, NULL, 1, refs, feed, 1))
          rc = -1;
        else
          s->resources++, s->events += u->nev;
      }
      json_decref(w);
    }
  for (size_t i = 0; i < n; i++)
    free(text[i]);
  free(text);
  json_decref(refs);
  if (f && fclose(f))
    rc = -1;
  return rc;
}

/* The units of `in` gathered as `clinlog ingest fhir` appends them: runs
 * of whole units of up to max_events events, each run one signed batch
 * (store) and one transaction (pg). `out` borrows from `in`. */
static int group_units(const fset *in, size_t max_events, const cl_signer *feed, fset *out) {
  memset(out, 0, sizeof *out);
  if (!(out->u = calloc(in->n ? in->n : 1, sizeof *out->u)))
    return -1;
  for (size_t i = 0; i < in->n;) {
    size_t j = i, ev = 0, res = 0;
    while (j < in->n && (j == i || ev + in->u[j].nev <= max_events))
      ev += in->u[j].nev, res += in->u[j].resources, j++;
    funit *g = &out->u[out->n++];
    g->borrowed = 1;
    if (!(g->ev = calloc(ev, sizeof *g->ev)) || !(g->ids = calloc(res, sizeof *g->ids)) ||
        !(g->types = calloc(res, sizeof *g->types)) ||
        !(g->bodies = calloc(res, sizeof *g->bodies)) || !(g->pats = calloc(res, sizeof *g->pats)))
      return -1;
    for (size_t k = i; k < j; k++) {
      const funit *u = &in->u[k];
      memcpy(g->ev + g->nev, u->ev, u->nev * sizeof *u->ev);
      g->nev += u->nev;
      memcpy(g->ids + g->resources, u->ids, u->resources * sizeof *u->ids);
      memcpy(g->types + g->resources, u->types, u->resources * sizeof *u->types);
      memcpy(g->bodies + g->resources, u->bodies, u->resources * sizeof *u->bodies);
      memcpy(g->pats + g->resources, u->pats, u->resources * sizeof *u->pats);
      g->resources += u->resources;
    }
    bench_batch_sign(&g->sb, g->ev, g->nev, feed);
    out->resources += g->resources;
    out->events += g->nev;
    i = j;
  }
  return 0;
}

/* ---------------------------------------------------------- drivers */

enum { M_REST, M_STORE, M_PG };
static const char *const MODE_NAME[3] = {"rest", "store", "pg"};

typedef struct rctx { /* one row's drive */
  fset *s;
  int mode, port;
  cl_log *log;
  const bench_pg *pg;
} rctx;

static int c_open(void *ctx, int id, void **conn, char *err, size_t errn) {
  (void)id;
  rctx *x = ctx;
  if (x->mode == M_REST) {
    bench_hc *c = calloc(1, sizeof *c);
    if (!c)
      return -1;
    c->fd = -1;
    *conn = c;
    for (int tries = 0; tries < 100 && bench_hc_open(c, x->port) != 0; tries++) {
      bench_hc_close(c);
      bench_sleep_ms(50); /* the HTTP face may start just after the API */
    }
    if (c->fd < 0)
      return snprintf(err, errn, "cannot connect to the HTTP port %d", x->port), -1;
  } else if (x->mode == M_PG) {
    cl_err e;
    static const char INS[] = "INSERT INTO fhir_resource (id, type, patient, body)"
                              " VALUES ($1, $2, $3, $4::jsonb)";
    if (!(*conn = bench_pg_connect_prepared(x->pg, "ins", INS, 4, &e)))
      return snprintf(err, errn, "%s", e.msg), -1;
  }
  return 0;
}

static void c_close(void *ctx, void *conn) {
  rctx *x = ctx;
  if (x->mode == M_REST && conn) {
    bench_hc_close(conn);
    free(conn);
  } else if (x->mode == M_PG && conn) {
    PQfinish(conn);
  }
}

static int one_rest(bench_hc *c, const funit *u, char *err, size_t errn) {
  int st = bench_hc_post(c, "/fhir/R4", "application/fhir+json", u->json, u->len);
  if (st != 200 || !c->body || !strstr(c->body, "transaction-response"))
    return snprintf(err, errn, "POST of a Bundle: HTTP %d %.160s", st, c->body ? c->body : ""),
           -1;
  return 0;
}

static int one_store(cl_log *log, const funit *u, char *err, size_t errn) {
  cl_append_result r;
  cl_err e;
  if (cl_log_append(log, &u->sb.b, &r, &e))
    return snprintf(err, errn, "append: %.200s", e.msg), -1;
  cl_append_result_free(&r);
  return 0;
}

static int one_pg(PGconn *pg, const funit *u, char *err, size_t errn) {
  int many = u->resources > 1;
  PGresult *r = many ? PQexec(pg, "BEGIN") : NULL;
  int ok = !many || PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  for (size_t k = 0; k < u->resources && ok; k++) {
    const char *vals[4] = {u->ids[k], u->types[k], u->pats[k], u->bodies[k]};
    r = PQexecPrepared(pg, "ins", 4, vals, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
      snprintf(err, errn, "insert: %s", PQresultErrorMessage(r));
    PQclear(r);
  }
  if (many) {
    r = PQexec(pg, ok ? "COMMIT" : "ROLLBACK");
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  return ok ? 0 : -1;
}

static int c_one(void *ctx, void *conn, size_t i, char *err, size_t errn) {
  rctx *x = ctx;
  const funit *u = &x->s->u[i];
  return x->mode == M_REST    ? one_rest(conn, u, err, errn)
         : x->mode == M_STORE ? one_store(x->log, u, err, errn)
                              : one_pg(conn, u, err, errn);
}

static size_t c_weight(void *ctx, size_t i) { return ((rctx *)ctx)->s->u[i].resources; }

typedef struct res {
  int ran, ok;
  size_t units, accepted, resources;
  double ups, rps, p50, p99, cpu_us;
} res;

static const char PG_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS fhir_resource (id text PRIMARY KEY, type text NOT NULL,"
    " patient text NOT NULL, body jsonb NOT NULL)";

/* Runs s through `conns` connections of `mode`. */
static res run(fset *s, int mode, int conns, int port, cl_log *log, const bench_pg *pg, pid_t srv,
               int progress) {
  rctx x = {.s = s, .mode = mode, .port = port, .log = log, .pg = pg};
  bench_connrun r = {.conns = conns,
                     .n = s->n,
                     .label = MODE_NAME[mode],
                     .progress = progress,
                     .server = srv,
                     .ctx = &x,
                     .open = c_open,
                     .one = c_one,
                     .close = c_close,
                     .weight = c_weight};
  bench_connres c = bench_connrun_go(&r, "ingest fhir");
  return (res){.ran = 1,
               .ok = c.ok,
               .units = s->n,
               .accepted = c.done,
               .resources = c.weight,
               .ups = c.per_s,
               .rps = c.weight_per_s,
               .p50 = c.p50_ms,
               .p99 = c.p99_ms,
               .cpu_us = c.server_cpu_s >= 0 && c.weight ? c.server_cpu_s * 1e6 / (double)c.weight
                                                         : -1};
}

/* The NDJSON load through `clinlog ingest fhir` (a process): its wall time. */
static res run_cli(const fset *s, char *const argv[], const char *logpath, pid_t srv) {
  res out = {.ran = 1, .units = s->n, .p50 = -1, .p99 = -1};
  double cpu0 = bench_proc_cpu_s(srv), t0 = bench_mono();
  int st = bench_run(argv, logpath);
  double wall = bench_mono() - t0, cpu1 = bench_proc_cpu_s(srv);
  out.ok = st == 0;
  if (!out.ok)
    fprintf(stderr, "clinlog-bench ingest fhir: clinlog ingest fhir exited %d (see %s)\n", st,
            logpath);
  out.accepted = out.ok ? s->n : 0;
  out.resources = out.ok ? s->resources : 0;
  out.ups = wall > 0 ? (double)out.accepted / wall : 0;
  out.rps = wall > 0 ? (double)out.resources / wall : 0;
  out.cpu_us = out.resources ? (cpu1 - cpu0) * 1e6 / (double)out.resources : -1;
  return out;
}

/* ---------------------------------------------------------- output */

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

static void json_res(const char *name, const res *r) {
  if (!r->ran) {
    printf("\"%s\":null", name);
    return;
  }
  printf("\"%s\":{\"units\":%zu,\"accepted\":%zu,\"resources\":%zu,\"units_per_s\":%.1f,"
         "\"resources_per_s\":%.0f",
         name, r->units, r->accepted, r->resources, r->ups, r->rps);
  if (r->p50 >= 0)
    printf(",\"p50_ms\":%.3f,\"p99_ms\":%.3f", r->p50, r->p99);
  if (r->cpu_us >= 0)
    printf(",\"server_cpu_us_per_resource\":%.1f", r->cpu_us);
  printf("}");
}

static void text_row(const char *what, int conns, const char *path, const res *x, const res *base,
                     const char *why) {
  if (!x->ran) {
    printf("%-12s | %5d | %-5s | skipped: %s\n", what, conns, path, why ? why : "");
    return;
  }
  printf("%-12s | %5d | %-5s | %7zu %9.1f %9.0f ", what, conns, path, x->accepted, x->ups, x->rps);
  if (x->p50 >= 0)
    printf("%8.2f %8.2f ", x->p50, x->p99);
  else
    printf("%8s %8s ", "—", "—");
  if (x->cpu_us >= 0)
    printf("%9.0f", x->cpu_us);
  else
    printf("%9s", "—");
  if (base != x)
    printf(" | %6.2f\n", ratio(base->rps, x->rps));
  else
    printf(" |\n");
}

static int usage(void) {
  fprintf(stderr, "usage: clinlog-bench ingest fhir [--clinlogd PATH] [--clinlog PATH] [--dir D]\n"
                  "                             [--quick] [--json] [--bundles N] [--no-pg]\n");
  return 2;
}

/* ---------------------------------------------------------- main */

int bench_ingest_fhir_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-ingest-fhir", *exe_opt = NULL, *cli_opt = NULL;
  int quick = 0, json = 0, no_pg = 0;
  long nb = 0;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--clinlogd") && i + 1 < argc)
      exe_opt = argv[++i];
    else if (!strcmp(argv[i], "--clinlog") && i + 1 < argc)
      cli_opt = argv[++i];
    else if (!strcmp(argv[i], "--bundles") && i + 1 < argc && (nb = atol(argv[i + 1])) > 0)
      i++;
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--no-pg"))
      no_pg = 1;
    else
      return usage();
  }
  char exe[PATH_MAX + 16], cli[PATH_MAX + 16];
  if (bench_find_exe("ingest fhir", exe_opt, argv[0], "clinlogd", exe, sizeof exe) ||
      bench_find_exe("ingest fhir", cli_opt, argv[0], "clinlog", cli, sizeof cli))
    return 1;
  bench_feed fx;
  if (bench_feed_open(&fx, "ingest fhir", base, PRINCIPAL, "FHIR feed", 3)) {
    bench_feed_close(&fx);
    return 1;
  }
  cl_log *store = fx.store;
  const cl_signer *feed = &fx.feed;
  cl_err err;
  char clilog[4200], nd[4200], api[32], raft[32], http[32];
  snprintf(clilog, sizeof clilog, "%s/ingest.log", base);
  snprintf(nd, sizeof nd, "%s/export.ndjson", base);
  snprintf(api, sizeof api, "127.0.0.1:%d", fx.ports[0]);
  snprintf(raft, sizeof raft, "127.0.0.1:%d", fx.ports[1]);
  snprintf(http, sizeof http, "127.0.0.1:%d", fx.ports[2]);
  char *const sargv[] = {exe,           "--data", fx.sdir,         "--dev", "--listen", api,
                         "--raft-listen", raft,     "--http-listen", http,    NULL};
  bench_proc srv = {0};
  if (bench_proc_start(sargv, fx.logpath, &srv)) {
    bench_feed_close(&fx);
    return 1;
  }
  const char *pg_why = no_pg ? "not asked for (--no-pg)" : bench_pg_missing();
  bench_pg pg = {0};
  int pg_tried = !pg_why;
  if (!pg_why && (bench_pg_start(&pg, base, 1, &err) || bench_pg_exec(pg.c, PG_SCHEMA, &err))) {
    fprintf(stderr, "clinlog-bench ingest fhir: PostgreSQL: %s\n", err.msg);
    pg_why = "could not start";
  }
  char machine[128];
  bench_machine(machine, sizeof machine);
  int progress = !json && isatty(2), status = 0;
  res r[NSCEN][3], nr[3];
  memset(r, 0, sizeof r);
  memset(nr, 0, sizeof nr);
  for (int k = 0; k < NSCEN && !status; k++) {
    int conns = CONNS[k];
    size_t n = nb > 0 ? (size_t)nb : conns == 1 ? (quick ? 60 : 300) : (quick ? 400 : 2400);
    char tag[8];
    snprintf(tag, sizeof tag, "t%dc", conns);
    fset s = {0};
    if (bundles_make(&s, n, tag, feed)) {
      fprintf(stderr, "clinlog-bench ingest fhir: generating the Bundles failed\n");
      status = 1;
    } else {
      r[k][M_REST] = run(&s, M_REST, conns, fx.ports[2], NULL, NULL, srv.pid, progress);
      r[k][M_STORE] = run(&s, M_STORE, conns, 0, store, NULL, 0, progress);
      if (!pg_why)
        r[k][M_PG] = run(&s, M_PG, conns, 0, NULL, &pg, 0, progress);
    }
    fset_free(&s);
  }
  size_t records = nb > 0 ? (size_t)nb : quick ? 40 : 200;
  fset s = {0};
  if (!status && ndjson_make(&s, records, "nd", nd, feed) == 0) {
    char batch[16];
    snprintf(batch, sizeof batch, "%d", NDJSON_BATCH);
    char *const cargv[] = {cli,       "ingest",  "fhir",          nd,    "--server",
                           api,       "--key",   fx.keypath,         "--plaintext",
                           "--batch-events", batch, "--json",     NULL};
    unlink(clilog);
    if (progress)
      fprintf(stderr, "  clinlog ingest fhir: %zu lines\n", s.n);
    nr[M_REST] = run_cli(&s, cargv, clilog, srv.pid);
    fset gs = {0};
    if (group_units(&s, NDJSON_BATCH, feed, &gs) == 0) {
      nr[M_STORE] = run(&gs, M_STORE, 1, 0, store, NULL, 0, progress);
      if (!pg_why)
        nr[M_PG] = run(&gs, M_PG, 1, 0, NULL, &pg, 0, progress);
    } else {
      fprintf(stderr, "clinlog-bench ingest fhir: out of memory\n");
      status = 1;
    }
    for (int m = M_STORE; m <= M_PG; m++) /* per line, as the command counts */
      nr[m].units = nr[m].accepted = nr[m].ok ? s.n : 0, nr[m].p50 = nr[m].p99 = -1,
      nr[m].ups = nr[m].rps;
    fset_free(&gs);
  } else if (!status) {
    fprintf(stderr, "clinlog-bench ingest fhir: generating the NDJSON failed\n");
    status = 1;
  }
  fset_free(&s);
  for (int k = 0; k < NSCEN; k++)
    for (int m = 0; m < 3; m++)
      status |= r[k][m].ran && !r[k][m].ok;
  for (int m = 0; m < 3; m++)
    status |= nr[m].ran && !nr[m].ok;
  if (json) {
    printf("{\"machine\":\"%s\",\"record\":\"Patient, Encounter, Condition, AllergyIntolerance, "
           "MedicationRequest, 6 Observations (%d resources)\",\"transactions\":[",
           machine, BENCH_FHIR_RESOURCES);
    for (int k = 0, first = 1; k < NSCEN; k++) {
      if (!r[k][0].ran)
        continue;
      printf("%s{\"connections\":%d,", first ? "" : ",", CONNS[k]);
      first = 0;
      json_res("rest", &r[k][M_REST]);
      printf(",");
      json_res("store", &r[k][M_STORE]);
      printf(",");
      json_res("postgresql", &r[k][M_PG]);
      printf(",\"rest_over_store\":%.3f", ratio(r[k][M_REST].rps, r[k][M_STORE].rps));
      if (r[k][M_PG].ran)
        printf(",\"rest_over_postgresql\":%.3f", ratio(r[k][M_REST].rps, r[k][M_PG].rps));
      printf("}");
    }
    printf("],\"ndjson\":{");
    json_res("cli", &nr[M_REST]);
    printf(",");
    json_res("store", &nr[M_STORE]);
    printf(",");
    json_res("postgresql", &nr[M_PG]);
    printf(",\"cli_over_store\":%.3f", ratio(nr[M_REST].rps, nr[M_STORE].rps));
    if (nr[M_PG].ran)
      printf(",\"cli_over_postgresql\":%.3f", ratio(nr[M_REST].rps, nr[M_PG].rps));
    printf("}");
    if (pg_why)
      printf(",\"postgresql_skipped\":\"%s\"", pg_why);
    printf(",\"ok\":%s}\n", status ? "false" : "true");
  } else {
    printf("clinlog-bench ingest fhir — %s; records of %d resources (12 events); REST: a\n"
           "transaction Bundle per POST over plaintext loopback HTTP/1.1, 200 after the fsync'd\n"
           "commit, audit trail and projections on; NDJSON: clinlog ingest fhir, a line per\n"
           "append; store: the same events by cl_log_append in process; pg: PostgreSQL 15,\n"
           "synchronous_commit on, a transaction per Bundle (per line for NDJSON)\n\n",
           machine, BENCH_FHIR_RESOURCES);
    printf("%-12s | %5s | %-5s | %7s %9s %9s %8s %8s %9s | %6s\n", "what", "conns", "path",
           "units", "units/s", "res/s", "p50 ms", "p99 ms", "cpu us/r", "x/row");
    for (int k = 0; k < NSCEN; k++)
      for (int m = 0; m < 3 && r[k][0].ran; m++)
        text_row("transactions", CONNS[k], MODE_NAME[m], &r[k][m], &r[k][M_REST], pg_why);
    static const char *const NDN[3] = {"cli", "store", "pg"};
    for (int m = 0; m < 3 && nr[0].ran; m++)
      text_row("ndjson", 1, NDN[m], &nr[m], &nr[M_REST], pg_why);
    if (status)
      printf("FAILED: not every write was accepted or a step failed (see stderr)\n");
  }
  if (pg_tried)
    bench_pg_stop(&pg);
  bench_proc_stop(&srv);
  bench_feed_close(&fx);
  return status;
}
