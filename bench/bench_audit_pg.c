/* clinlog-bench audit's PostgreSQL peer; see bench_audit_pg.h. */
#include "bench/bench_audit_pg.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchutil.h"
#include "bench/pgpeer.h"
#include "bench/workload.h"

#define MAX_CONC 64
#define MAX_ROUNDS 9

static const char SCHEMA[] =
    "CREATE TABLE obs (id text PRIMARY KEY, patient text NOT NULL, body jsonb NOT NULL);"
    "CREATE TABLE events (seq bigserial PRIMARY KEY, stream text NOT NULL, body text NOT NULL);"
    "CREATE INDEX events_stream ON events (stream, seq);"
    "CREATE TABLE audit (id bigserial PRIMARY KEY, recorded timestamptz NOT NULL DEFAULT now(),"
    " principal text NOT NULL, roles text NOT NULL, action text NOT NULL, subtype text NOT NULL,"
    " entity text NOT NULL, patient text, outcome text NOT NULL, method text NOT NULL,"
    " transport text NOT NULL, client_address text NOT NULL, request_id text NOT NULL);"
    "CREATE INDEX audit_patient ON audit (patient, recorded);"
    "CREATE INDEX audit_principal ON audit (principal, recorded);"
    "CREATE INDEX audit_recorded ON audit (recorded);";

/* The Observations, built by the server: ~500 bytes of JSON each, a
 * patient per 2 of them. %zu: rows. */
static const char LOAD[] =
    "INSERT INTO obs SELECT 'obs-' || i, 'pat-' || (i / 2), jsonb_build_object("
    "'resourceType', 'Observation', 'id', 'obs-' || i, 'status', 'final',"
    "'category', jsonb_build_array(jsonb_build_object('coding', jsonb_build_array("
    "jsonb_build_object('system', 'http://terminology.hl7.org/CodeSystem/observation-category',"
    "'code', 'vital-signs')))),"
    "'code', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object("
    "'system', 'http://loinc.org', 'code', '8867-4', 'display', 'Heart rate'))),"
    "'subject', jsonb_build_object('reference', 'Patient/pat-' || (i / 2)),"
    "'effectiveDateTime', '2024-05-01T10:00:00Z',"
    "'valueQuantity', jsonb_build_object('value', 60 + i %% 40, 'unit', 'beats/minute',"
    "'system', 'http://unitsofmeasure.org', 'code', '/min'))"
    " FROM generate_series(0, %zu - 1) AS i";

/* The audit row: what clinlog's AccessRecorded holds that a SQL user would
 * keep. $1.. follow the statement's own parameters. */
#define AUDIT_ROW(a, b, c)                                                                         \
  "INSERT INTO audit (principal, roles, action, subtype, entity, patient, outcome, method,"        \
  " transport, client_address, request_id) VALUES ('bench', 'clinician', '" a "', '" b "', " c     \
  ", $2, '0', '" b "', 'postgres', 'unix', $3)"

static const struct {
  const char *name, *sql;
  int nparams;
} STMT[2][2] = {
    [BENCH_APG_READ] = {{"rd", "SELECT body FROM obs WHERE id = $1", 1},
                        {"rda",
                         "WITH a AS (" AUDIT_ROW(
                             "R", "read",
                             "'Observation/' || $1") ") SELECT body FROM obs WHERE id = $1",
                         3}},
    [BENCH_APG_WRITE] = {{"wr", "INSERT INTO events (stream, body) VALUES ('pat-' || $2, $1)", 2},
                         {"wra",
                          "WITH a AS (" AUDIT_ROW(
                              "C", "create",
                              "'stream:pat-' || $2") ") INSERT INTO events (stream, body) VALUES "
                                                     "('pat-' || $2, $1)",
                          3}},
};

typedef struct worker {
  pthread_t t;
  PGconn *c;
  int kind, audit;
  size_t rows;
  unsigned seed;
  int64_t start_ns, end_ns;
  double *lat; /* ms */
  size_t n, cap;
  char err[256];
} worker;

static void *work(void *arg) {
  worker *w = arg;
  const char *name = STMT[w->kind][w->audit].name;
  int want = w->kind == BENCH_APG_READ ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
  char body[320], id[32], pat[32], rid[40];
  memset(body, 'x', sizeof body - 1);
  body[sizeof body - 1] = '\0';
  const char *p[3];
  while (bench_wall_ns() < w->start_ns)
    ;
  for (uint64_t k = 0;; k++) {
    int64_t t0 = bench_wall_ns();
    if (t0 >= w->end_ns)
      break;
    size_t i = (size_t)rand_r(&w->seed) % w->rows;
    snprintf(id, sizeof id, "obs-%zu", i);
    snprintf(pat, sizeof pat, "%zu", i / 2);
    snprintf(rid, sizeof rid, "%p-%llu", (void *)w, (unsigned long long)k);
    if (w->kind == BENCH_APG_READ) {
      p[0] = id;
      p[1] = pat;
    } else {
      p[0] = body;
      p[1] = pat;
    }
    p[2] = rid;
    PGresult *r = PQexecPrepared(w->c, name, STMT[w->kind][w->audit].nparams, p, NULL, NULL, 0);
    int ok = PQresultStatus(r) == (ExecStatusType)want &&
             (w->kind != BENCH_APG_READ || PQntuples(r) == 1);
    if (!ok)
      snprintf(w->err, sizeof w->err, "%s: %s", name, PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
      break;
    if (bench_lat_push(&w->lat, &w->n, &w->cap, (double)(bench_wall_ns() - t0) / 1e6)) {
      snprintf(w->err, sizeof w->err, "out of memory");
      break;
    }
  }
  return NULL;
}

typedef struct sample {
  double ops, p50, p99;
} sample;

/* One scenario in one mode over ws[0..conc). */
static int measure(worker *ws, int conc, int kind, int audit, size_t rows, double seconds,
                   sample *out, cl_err *err) {
  int64_t start = bench_wall_ns() + 50 * 1000000LL;
  for (int i = 0; i < conc; i++) {
    worker *w = &ws[i];
    w->kind = kind;
    w->audit = audit;
    w->rows = rows;
    w->n = 0;
    w->err[0] = '\0';
    w->start_ns = start;
    w->end_ns = start + (int64_t)(seconds * 1e9);
    if (pthread_create(&w->t, NULL, work, w) != 0)
      abort();
  }
  size_t total = 0;
  for (int i = 0; i < conc; i++) {
    pthread_join(ws[i].t, NULL);
    total += ws[i].n;
  }
  for (int i = 0; i < conc; i++)
    if (ws[i].err[0])
      return cl_err_set(err, CL_EIO, "postgres peer: %s", ws[i].err);
  double *all = malloc((total ? total : 1) * sizeof *all);
  if (!all)
    abort();
  size_t k = 0;
  for (int i = 0; i < conc; i++) {
    memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
    k += ws[i].n;
  }
  out->ops = (double)total / seconds;
  bench_percentiles(all, total, &out->p50, &out->p99);
  free(all);
  return 0;
}

static int prepare_all(PGconn *c, cl_err *err) {
  for (int k = 0; k < 2; k++)
    for (int a = 0; a < 2; a++) {
      PGresult *r = PQprepare(c, STMT[k][a].name, STMT[k][a].sql, STMT[k][a].nparams, NULL);
      int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      if (!ok)
        cl_err_set(err, CL_EIO, "postgres: preparing %s: %s", STMT[k][a].name,
                   PQresultErrorMessage(r));
      PQclear(r);
      if (!ok)
        return CL_EIO;
    }
  return 0;
}

int bench_apg_run(const bench_apg_args *a, bench_apg_scen *s, size_t n, cl_err *err) {
  const char *why = bench_pg_missing();
  if (why)
    return cl_err_set(err, CL_EUNAVAILABLE, "%s", why);
  int rounds = a->rounds < 1 ? 1 : a->rounds > MAX_ROUNDS ? MAX_ROUNDS : a->rounds;
  bench_pg g = {0};
  worker ws[MAX_CONC];
  memset(ws, 0, sizeof ws);
  char sql[2048];
  int64_t t0 = bench_wall_ns();
  int rc = bench_pg_start(&g, a->base, 1, err);
  if (!rc)
    rc = bench_pg_exec(g.c, SCHEMA, err);
  snprintf(sql, sizeof sql, LOAD, a->rows);
  if (!rc)
    rc = bench_pg_exec(g.c, sql, err);
  if (!rc)
    rc = bench_pg_exec(g.c, "VACUUM ANALYZE", err);
  for (int i = 0; i < MAX_CONC && !rc; i++) {
    ws[i].seed = 77u + (unsigned)i;
    if (!(ws[i].c = bench_pg_connect(&g, err)))
      rc = CL_EIO;
    else
      rc = prepare_all(ws[i].c, err);
  }
  if (!rc && a->verbose) {
    printf("\nPostgreSQL %d peer: a private durable cluster (fsync, synchronous_commit on) under "
           "%s,\n%zu Observations loaded in %.1f s; ABBA rounds as above\n",
           PQserverVersion(g.c) / 10000, a->base, a->rows, (double)(bench_wall_ns() - t0) / 1e9);
    fflush(stdout);
  }
  for (size_t i = 0; i < n && !rc; i++) {
    if (s[i].conc < 1 || s[i].conc > MAX_CONC) {
      rc = cl_err_set(err, CL_EINVAL, "postgres peer: concurrency %d", s[i].conc);
      break;
    }
    sample off[MAX_ROUNDS], on[MAX_ROUNDS];
    for (int r = 0; r < rounds && !rc; r++) {
      int first_on = r % 2;
      for (int k = 0; k < 2 && !rc; k++) {
        int audit = k == 0 ? first_on : !first_on;
        rc = measure(ws, s[i].conc, s[i].kind, audit, a->rows, a->seconds, audit ? &on[r] : &off[r],
                     err);
      }
    }
    if (rc)
      break;
    double v[6][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
      v[0][r] = off[r].ops;
      v[1][r] = on[r].ops;
      v[2][r] = off[r].ops > 0 ? on[r].ops / off[r].ops : 0;
      v[3][r] = off[r].p50;
      v[4][r] = off[r].p99;
      v[5][r] = on[r].p50;
    }
    double p99on[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
      p99on[r] = on[r].p99;
    s[i].off_ops = bench_median(v[0], (size_t)rounds);
    s[i].on_ops = bench_median(v[1], (size_t)rounds);
    s[i].ratio = bench_median(v[2], (size_t)rounds);
    s[i].off_p50 = bench_median(v[3], (size_t)rounds);
    s[i].off_p99 = bench_median(v[4], (size_t)rounds);
    s[i].on_p50 = bench_median(v[5], (size_t)rounds);
    s[i].on_p99 = bench_median(p99on, (size_t)rounds);
    if (a->verbose) {
      printf("  %-5s conc %-2d off %.0f on %.0f ops/s\n",
             s[i].kind == BENCH_APG_READ ? "read" : "write", s[i].conc, s[i].off_ops, s[i].on_ops);
      fflush(stdout);
    }
  }
  for (int i = 0; i < MAX_CONC; i++) {
    PQfinish(ws[i].c);
    free(ws[i].lat);
  }
  bench_pg_stop(&g);
  return rc;
}
