/* clinlog-bench fhir's PostgreSQL peer: see bench_fhir_pg.h.
 *
 * The cluster is private and throwaway: initdb into <base>/pg-XXXXXX (as
 * user postgres when we are root, since initdb refuses root), a unix
 * socket in that directory and no TCP, fsync, synchronous_commit and
 * full_page_writes off (clinlog's generator appends with sync off too),
 * jit off (it only adds compile time to short queries). It is stopped and
 * its directory removed on every path out of bench_fhir_pg_run.
 *
 * The schema is Aidbox's: a table per type, <type>(id, txid, ts, resource
 * jsonb) and <type>_history for older versions; txid is the log sequence
 * number of the event that made the version, ts its meta.lastUpdated, and
 * `version` (meta.versionId) is ours, so that vread is by version as in
 * clinlog. Rows go in by COPY FROM STDIN before any index exists; then the
 * primary keys, a GIN (jsonb_path_ops) on every resource column, a btree
 * on each type's patient reference (with the date or status the measured
 * searches filter on) and a GIN on the targets of Provenances.
 *
 * Equal work: every PostgreSQL query returns what the engine's does (the
 * page of resources as JSON text, sorted by lastUpdated, and the total),
 * and its counts are checked against the engine's on every input. */
#include "bench/bench_fhir_pg.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/pgpeer.h"
#include "bench/workload.h"
#include "query/fhir/fhir.h"

#define BIG_PATIENT "0" /* bench_fhir.c's patient with ten times the volume */

/* ------------------------------------------------------------ the record */

void bench_fhir_rec_pick(bench_fhir_rec *r, const char *pid) {
  if (r->npicks == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    char(*p)[16] = realloc(r->picks, cap * sizeof *p);
    if (p == NULL) {
      r->lost = 1;
      return;
    }
    r->picks = p;
    r->cap = cap;
  }
  snprintf(r->picks[r->npicks++], 16, "%s", pid);
}

void bench_fhir_rec_note(bench_fhir_rec *r, const char *name, const char *face, double *v, size_t n,
                         size_t entries) {
  if (r->nnotes == sizeof r->notes / sizeof r->notes[0]) {
    r->lost = 1;
    return;
  }
  bench_fhir_note *x = &r->notes[r->nnotes++];
  snprintf(x->name, sizeof x->name, "%s", name);
  snprintf(x->face, sizeof x->face, "%s", face);
  x->n = n;
  bench_percentiles(v, n, &x->p50, &x->p99);
  x->entries = entries;
  x->first = r->mark;
  x->npicks = r->npicks - r->mark;
  r->mark = r->npicks;
}

void bench_fhir_rec_free(bench_fhir_rec *r) {
  free(r->picks);
  r->picks = NULL;
  r->npicks = r->cap = r->mark = 0;
}

/* ------------------------------------------------------------ the schema */

/* The element naming a type's patient, as the engine's `patient` search
 * parameter has it (query/fhir); NULL: Patient, Appointment and Provenance (special
 * cases in everything_sql) and types with none. */
static const char *patient_path(const char *type) {
  /* clang-format off */
  static const char *const paths[][2] = {
      {"Encounter", "subject"}, {"Condition", "subject"}, {"AllergyIntolerance", "patient"},
      {"Observation", "subject"}, {"DiagnosticReport", "subject"}, {"Immunization", "patient"},
      {"ServiceRequest", "subject"}, {"MedicationRequest", "subject"},
      {"MedicationDispense", "subject"}, {"MedicationAdministration", "subject"},
      {"ImagingStudy", "subject"}, {"DocumentReference", "subject"}, {"Communication", "subject"},
      {"Task", "for"}, {"Device", "patient"}, {"Coverage", "beneficiary"},
      {"CoverageEligibilityRequest", "patient"}, {"CoverageEligibilityResponse", "patient"},
      {"ChargeItem", "subject"}, {"Claim", "patient"}, {"ClaimResponse", "patient"},
      {"DetectedIssue", "patient"}};
  /* clang-format on */
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    if (!strcmp(type, paths[i][0]))
      return paths[i][1];
  return NULL;
}

static void table_of(const char *type, char out[64]) {
  size_t i = 0;
  for (; type[i] && i < 63; i++)
    out[i] = (char)(type[i] >= 'A' && type[i] <= 'Z' ? type[i] + 32 : type[i]);
  out[i] = '\0';
}

static int create_tables(PGconn *c, cl_err *err) {
  int rc =
      bench_pg_exec(c,
                    "CREATE FUNCTION fhir_targets(r jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE "
                    "PARALLEL SAFE AS $$ SELECT coalesce(array_agg(regexp_replace(t->>'reference', "
                    "'/_history/.*$', '')), '{}') FROM jsonb_array_elements(r->'target') t $$",
                    err);
  for (int t = 1; rc == 0 && t < CL_FHIR_Group; t++) { /* the stored types: a Group is derived */
    char tb[64], sql[512];
    table_of(cl_fhir_type_name(t), tb);
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (id text NOT NULL, version int NOT NULL, txid bigint NOT NULL, "
             "ts timestamptz NOT NULL, resource jsonb NOT NULL); "
             "CREATE TABLE %s_history (LIKE %s)",
             tb, tb, tb);
    rc = bench_pg_exec(c, sql, err);
  }
  return rc;
}

/* Indexes after the load, as a bulk load does; *n counts them. */
static int create_indexes(PGconn *c, int *n, cl_err *err) {
  int rc = 0;
  *n = 0;
  for (int t = 1; rc == 0 && t < CL_FHIR_Group; t++) {
    const char *type = cl_fhir_type_name(t), *path = patient_path(type);
    char tb[64], sql[1024], extra[256] = "";
    table_of(type, tb);
    if (t == CL_FHIR_Provenance)
      snprintf(extra, sizeof extra,
               "CREATE INDEX ON provenance USING gin (fhir_targets(resource))");
    else if (path != NULL)
      snprintf(extra, sizeof extra, "CREATE INDEX ON %s ((resource->'%s'->>'reference')%s)", tb,
               path,
               t == CL_FHIR_Observation         ? ", (resource->>'effectiveDateTime')"
               : t == CL_FHIR_MedicationRequest ? ", (resource->>'status')"
                                                : "");
    snprintf(sql, sizeof sql,
             "ALTER TABLE %s ADD PRIMARY KEY (id); ALTER TABLE %s_history ADD PRIMARY KEY (id, "
             "version); CREATE INDEX ON %s USING gin (resource jsonb_path_ops); %s",
             tb, tb, tb, extra);
    rc = bench_pg_exec(c, sql, err);
    *n += 3 + (extra[0] != '\0');
  }
  return rc;
}

/* ------------------------------------------------------------ the load */

typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + n)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
      return CL_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  return 0;
}

/* A row of COPY's text format: id, version, txid, ts, resource. */
static int sb_row(sbuf *b, const char *id, const cl_fhir_resource *r) {
  char head[192];
  time_t s = (time_t)(r->last_updated_ns / 1000000000);
  struct tm tm;
  gmtime_r(&s, &tm);
  int k =
      snprintf(head, sizeof head, "%s\t%u\t%llu\t%04d-%02d-%02d %02d:%02d:%02d.%06d+00\t", id,
               r->version, (unsigned long long)r->seq, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
               tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(r->last_updated_ns % 1000000000 / 1000));
  int rc = sb_put(b, head, (size_t)k);
  static const char special[] = "\\\n\r\t", *const esc[] = {"\\\\", "\\n", "\\r", "\\t"};
  size_t from = 0;
  for (size_t i = 0; rc == 0 && i < r->len; i++) {
    const char *hit = r->json[i] ? strchr(special, r->json[i]) : NULL;
    if (hit == NULL)
      continue;
    rc = sb_put(b, r->json + from, i - from);
    if (rc == 0)
      rc = sb_put(b, esc[hit - special], 2);
    from = i + 1;
  }
  if (rc == 0)
    rc = sb_put(b, r->json + from, r->len - from);
  return rc == 0 ? sb_put(b, "\n", 1) : rc;
}

typedef struct loader {
  PGconn *c;
  cl_proj *p;
  const char *type;
  sbuf rows; /* COPY data not sent yet */
  sbuf hist; /* this type's older versions, sent after its COPY */
  size_t n, nhist;
  uint32_t current; /* of the resource whose history is being read; 0: none */
} loader;

/* The logical id: the writer puts resourceType and id first. */
static int id_of(const char *json, size_t len, char out[CL_FHIR_ID_MAX]) {
  const char *p = memmem(json, len < 256 ? len : 256, "\"id\":\"", 6);
  if (p == NULL)
    return -1;
  p += 6;
  size_t i = 0;
  while (p + i < json + len && p[i] != '"' && i + 1 < CL_FHIR_ID_MAX)
    i++;
  memcpy(out, p, i);
  out[i] = '\0';
  return p + i < json + len && p[i] == '"' ? 0 : -1;
}

static int copy_send(PGconn *c, sbuf *b, cl_err *err) {
  if (b->n > 0 && PQputCopyData(c, b->p, (int)b->n) != 1)
    return cl_err_set(err, CL_EIO, "postgres: COPY: %s", PQerrorMessage(c));
  b->n = 0;
  return 0;
}

static int copy_table(loader *l, const char *table, sbuf *b, cl_err *err) {
  char sql[128];
  snprintf(sql, sizeof sql, "COPY %s (id, version, txid, ts, resource) FROM STDIN", table);
  PGresult *r = PQexec(l->c, sql);
  int ok = PQresultStatus(r) == PGRES_COPY_IN;
  PQclear(r);
  if (!ok)
    return cl_err_set(err, CL_EIO, "postgres: %s: %s", sql, PQerrorMessage(l->c));
  return b == NULL ? 0 : copy_send(l->c, b, err);
}

static int copy_end(PGconn *c, cl_err *err) {
  if (PQputCopyEnd(c, NULL) != 1)
    return cl_err_set(err, CL_EIO, "postgres: COPY end: %s", PQerrorMessage(c));
  int rc = 0;
  for (PGresult *r; (r = PQgetResult(c)) != NULL; PQclear(r))
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
      rc = cl_err_set(err, CL_EIO, "postgres: COPY: %s", PQresultErrorMessage(r));
  return rc;
}

/* Scan and history callback: a current version goes to `rows` (and its
 * older ones, read from here, to `hist`). */
static int load_one(void *ctx, cl_fhir_resource *r, cl_err *err) {
  loader *l = ctx;
  char id[CL_FHIR_ID_MAX];
  int in_history = l->current != 0, rc = 0;
  uint32_t version = r->version;
  if (id_of(r->json, r->len, id) != 0)
    rc = cl_err_set(err, CL_ECORRUPT, "a %s without an id", l->type);
  else if (!in_history || version != l->current) { /* the current one is in the main table */
    if (sb_row(in_history ? &l->hist : &l->rows, id, r) != 0)
      rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else if (in_history)
      l->nhist++;
    else
      l->n++;
  }
  cl_fhir_resource_clear(r);
  if (rc == 0 && !in_history && version > 1) {
    l->current = version;
    rc = cl_fhir_history(l->p, l->type, id, 0, load_one, l, err);
    l->current = 0;
  }
  if (rc == 0 && !in_history && l->rows.n >= 1 << 20)
    rc = copy_send(l->c, &l->rows, err);
  return rc;
}

/* Every resource's current version into <type>, older ones into
 * <type>_history. */
static int load(PGconn *c, cl_proj *p, size_t *n, size_t *nhist, cl_err *err) {
  loader l = {.c = c, .p = p};
  int rc = 0;
  for (int t = 1; rc == 0 && t < CL_FHIR_Group; t++) {
    char tb[64], th[80];
    uint8_t next[32];
    l.type = cl_fhir_type_name(t);
    table_of(l.type, tb);
    snprintf(th, sizeof th, "%s_history", tb);
    rc = copy_table(&l, tb, NULL, err);
    if (rc == 0)
      rc = cl_fhir_scan_type(p, t, NULL, 0, load_one, &l, next, err);
    if (rc == 0)
      rc = copy_send(c, &l.rows, err);
    if (rc == 0)
      rc = copy_end(c, err);
    if (rc == 0 && l.hist.n > 0 && (rc = copy_table(&l, th, &l.hist, err)) == 0)
      rc = copy_end(c, err);
  }
  free(l.rows.p);
  free(l.hist.p);
  *n = l.n;
  *nhist = l.nhist;
  return rc;
}

/* ------------------------------------------------------------ the queries */

/* The queries of bench_fhir.c (by its names), as the engine is asked them
 * and in SQL: a page sorted as the engine sorts (lastUpdated, then type,
 * then id) and the total. In values, "$pid" is the sample's patient. */
typedef struct pgq {
  const char *name;
  int interaction; /* the engine's */
  const char *type;
  const char *kv[3][2]; /* the engine's parameters */
  const char *args[4];  /* the SQL's */
  const char *sql;      /* NULL: everything_sql() */
} pgq;

enum { Q_READ, Q_VREAD, Q_OBS, Q_MR, Q_COND, Q_EVERY, NQ };

#define SEARCH_SELECT "SELECT id, resource::text, count(*) OVER () FROM "
/* clang-format off */
static const pgq QUERIES[NQ] = {
    {"read Patient", CL_FHIR_READ, "Patient", {{NULL}}, {"$pid"},
     "SELECT resource::text FROM patient WHERE id = $1"},
    {"vread Patient/_history/1", CL_FHIR_VREAD, "Patient", {{NULL}}, {"$pid", "1"},
     "SELECT resource::text FROM patient WHERE id = $1 AND version = $2 UNION ALL "
     "SELECT resource::text FROM patient_history WHERE id = $1 AND version = $2"},
    {"Observation?patient&code&date", CL_FHIR_SEARCH, "Observation",
     {{"patient", "$pid"}, {"code", "http://loinc.org|8867-4"}, {"date", "ge2025-03-01"}},
     {"Patient/$pid",
      "{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]}}",
      "2025-03-01", "50"},
     SEARCH_SELECT "observation WHERE resource->'subject'->>'reference' = $1 AND "
     "resource @> $2 AND resource->>'effectiveDateTime' >= $3 ORDER BY ts, id LIMIT $4"},
    {"MedicationRequest?patient&status=active", CL_FHIR_SEARCH, "MedicationRequest",
     {{"patient", "$pid"}, {"status", "active"}}, {"Patient/$pid", "active", "50"},
     SEARCH_SELECT "medicationrequest WHERE resource->'subject'->>'reference' = $1 AND "
     "resource->>'status' = $2 ORDER BY ts, id LIMIT $3"},
    {"Condition?code (all patients)", CL_FHIR_SEARCH, "Condition",
     {{"code", "http://hl7.org/fhir/sid/icd-10-cm|N18.3"}, {"_count", "50"}},
     {"{\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\","
      "\"code\":\"N18.3\"}]}}", "50"},
     SEARCH_SELECT "condition WHERE resource @> $1 ORDER BY ts, id LIMIT $2"},
    {"Patient/$everything (the big patient)", CL_FHIR_EVERYTHING, "Patient",
     {{"_count", "1000"}}, {"Patient/$pid", "$pid", "1000"}, NULL}};
/* clang-format on */

/* $everything: whatever names the patient in every table ($1 "Patient/id",
 * $2 the id), and the Provenances of those resources (clinlog's compartment
 * is the patient's stream, which holds them). */
static void everything_sql(char *out, size_t n) {
  size_t k = (size_t)snprintf(out, n,
                              "WITH c AS (SELECT 1 AS t, 'Patient'::text AS type, id, "
                              "ts, resource FROM patient WHERE id = $2");
  for (int t = 2; t < CL_FHIR_Group && k < n; t++) {
    const char *type = cl_fhir_type_name(t), *path = patient_path(type);
    char tb[64];
    table_of(type, tb);
    if (path != NULL)
      k += (size_t)snprintf(out + k, n - k,
                            " UNION ALL SELECT %d, '%s', id, ts, resource FROM %s WHERE "
                            "resource->'%s'->>'reference' = $1",
                            t, type, tb, path);
    else if (t == CL_FHIR_Appointment)
      k += (size_t)snprintf(
          out + k, n - k,
          " UNION ALL SELECT %d, '%s', id, ts, resource FROM %s WHERE resource @> "
          "jsonb_build_object('participant', jsonb_build_array("
          "jsonb_build_object('actor', jsonb_build_object('reference', $1::text))))",
          t, type, tb);
  }
  if (k < n)
    snprintf(out + k, n - k,
             "), a AS (SELECT * FROM c UNION ALL SELECT %d, 'Provenance', id, ts, resource FROM "
             "provenance WHERE fhir_targets(resource) && (SELECT array_agg(type || '/' || id) "
             "FROM c)) SELECT type, id, resource::text, count(*) OVER () FROM a "
             "ORDER BY ts, t, id LIMIT $3",
             CL_FHIR_Provenance);
}

/* `tmpl` with "$pid" replaced by pid. */
static const char *subst(const char *tmpl, const char *pid, char out[256]) {
  const char *at = strstr(tmpl, "$pid");
  if (at == NULL)
    return tmpl;
  snprintf(out, 256, "%.*s%s%s", (int)(at - tmpl), tmpl, pid, at + 4);
  return out;
}

/* What the engine answers to query q on `pid`: resources given and total. */
static void engine_counts(cl_fhir_engine *e, const pgq *q, const char *pid, size_t *entries,
                          size_t *total) {
  char vals[3][256];
  cl_fhir_kv kv[3];
  size_t nkv = 0;
  for (; nkv < 3 && q->kv[nkv][0] != NULL; nkv++)
    kv[nkv] = (cl_fhir_kv){q->kv[nkv][0], subst(q->kv[nkv][1], pid, vals[nkv])};
  int search = q->interaction == CL_FHIR_SEARCH;
  cl_fhir_req rq = {.interaction = q->interaction,
                    .type = q->type,
                    .id = search ? NULL : pid,
                    .version = 1,
                    .params = kv,
                    .nparams = nkv,
                    .base = "http://bench/fhir/R4"};
  cl_fhir_resp rs;
  cl_fhir_handle(e, &rq, &rs);
  *entries = *total = rs.status == 200;
  if (rs.status == 200 && (search || q->interaction == CL_FHIR_EVERYTHING)) {
    json_t *b = json_loadb(rs.body, rs.len, 0, NULL);
    *entries = json_array_size(json_object_get(b, "entry"));
    *total = (size_t)json_integer_value(json_object_get(b, "total"));
    json_decref(b);
  }
  cl_fhir_resp_clear(&rs);
}

static const bench_fhir_note *find_note(const bench_fhir_rec *rec, const char *name,
                                        const char *face) {
  for (size_t i = 0; i < rec->nnotes; i++)
    if (!strcmp(rec->notes[i].name, name) && !strcmp(rec->notes[i].face, face))
      return &rec->notes[i];
  return NULL;
}

/* A warning line: the comparison is not of equal work. */
static void warn(int json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(int json, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  printf(json ? "{\"warning\":\"%s\"}\n" : "  WARNING %s\n", msg);
}

/* Runs query q on the inputs of note `nt`, prints it and the ratios of the
 * clinlog faces, and checks its counts against the engine's. */
static int measure(PGconn *c, int q, const bench_fhir_note *nt, const bench_fhir_pg_args *a,
                   cl_err *err) {
  const pgq *qq = &QUERIES[q];
  size_t n = nt->n, bad = 0, first_bad = 0, ee = 0, et = 0;
  double *v = malloc(n * sizeof *v), p50, p99;
  size_t *got = malloc(2 * n * sizeof *got); /* entries, total per sample */
  if (v == NULL || got == NULL) {
    free(v);
    free(got);
    return cl_err_set(err, CL_ENOMEM, "out of memory");
  }
  char stmt[16];
  snprintf(stmt, sizeof stmt, "q%d", q);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *pid = nt->npicks ? a->rec->picks[nt->first + i] : BIG_PATIENT, *args[4];
    char vals[4][256];
    int nargs = 0;
    for (; nargs < 4 && qq->args[nargs] != NULL; nargs++)
      args[nargs] = subst(qq->args[nargs], pid, vals[nargs]);
    double s = bench_mono();
    PGresult *r = PQexecPrepared(c, stmt, nargs, args, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK, rows = ok ? PQntuples(r) : 0;
    got[2 * i] = (size_t)rows; /* the total is the last column of a search's rows */
    got[2 * i + 1] = q <= Q_VREAD || rows == 0
                         ? (size_t)rows
                         : strtoull(PQgetvalue(r, 0, PQnfields(r) - 1), NULL, 10);
    if (!ok)
      rc = cl_err_set(err, CL_EIO, "postgres: %s: %s", qq->name, PQresultErrorMessage(r));
    PQclear(r);
    v[i] = bench_mono() - s;
  }
  bench_percentiles(v, n, &p50, &p99);
  for (size_t i = 0; rc == 0 && i < n; i++) { /* equal work: the engine's counts, same input */
    size_t e, t;
    engine_counts(a->engine, qq, nt->npicks ? a->rec->picks[nt->first + i] : BIG_PATIENT, &e, &t);
    if ((e != got[2 * i] || t != got[2 * i + 1]) && bad++ == 0)
      first_bad = i, ee = e, et = t;
  }
  if (rc == 0 && a->json)
    printf("{\"query\":\"%s\",\"face\":\"pg\",\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"entries\":%zu,\"total\":%zu,\"counts_match_engine\":%s}\n",
           qq->name, n, p50 * 1e3, p99 * 1e3, got[2 * n - 2], got[2 * n - 1],
           bad ? "false" : "true");
  else if (rc == 0)
    printf("  %-44s %-6s %7.3f %9.3f   %6zu\n", qq->name, "pg", p50 * 1e3, p99 * 1e3,
           got[2 * n - 2]);
  static const char *const faces[] = {"engine", "REST", "gRPC"};
  for (size_t f = 0; rc == 0 && f < sizeof faces / sizeof *faces; f++) {
    const bench_fhir_note *x = find_note(a->rec, qq->name, faces[f]);
    if (x == NULL || p50 <= 0 || p99 <= 0)
      continue;
    if (a->json)
      printf("{\"query\":\"%s\",\"compare\":\"%s/pg\",\"p50_ratio\":%.3f,\"p99_ratio\":%.3f}\n",
             qq->name, x->face, x->p50 / p50, x->p99 / p99);
    else
      printf("  %-44s %-6s %7.3f %9.3f   %6s  clinlog/PG: p50 %.2fx, p99 %.2fx\n", "", x->face,
             x->p50 * 1e3, x->p99 * 1e3, "", x->p50 / p50, x->p99 / p99);
  }
  if (rc == 0 && bad > 0)
    warn(a->json,
         "%s: PostgreSQL and the engine differ on %zu of %zu inputs (first: patient %s: pg %zu "
         "entries, %zu in all; engine %zu, %zu): not equal work",
         qq->name, bad, n, nt->npicks ? a->rec->picks[nt->first + first_bad] : BIG_PATIENT,
         got[2 * first_bad], got[2 * first_bad + 1], ee, et);
  if (rc == 0 && qq->interaction != CL_FHIR_READ && qq->interaction != CL_FHIR_VREAD &&
      nt->entries != got[2 * n - 2])
    warn(a->json, "%s: bench_fhir.c's query gave %zu entries, this file's %zu: they differ",
         qq->name, nt->entries, got[2 * n - 2]);
  free(v);
  free(got);
  return rc;
}

static int queries(PGconn *c, const bench_fhir_pg_args *a, cl_err *err) {
  char every[8192];
  everything_sql(every, sizeof every);
  int rc = 0;
  for (int q = 0; rc == 0 && q < NQ; q++) {
    char stmt[16];
    snprintf(stmt, sizeof stmt, "q%d", q);
    PGresult *r = PQprepare(c, stmt, QUERIES[q].sql ? QUERIES[q].sql : every, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = cl_err_set(err, CL_EIO, "postgres: preparing %s: %s", QUERIES[q].name,
                      PQresultErrorMessage(r));
    PQclear(r);
  }
  for (int q = 0; rc == 0 && q < NQ; q++) {
    const bench_fhir_note *nt = find_note(a->rec, QUERIES[q].name, "engine");
    int needs_picks = q <= Q_MR;
    if (nt == NULL || nt->n == 0 || (needs_picks && nt->npicks != nt->n))
      fprintf(stderr,
              "PostgreSQL peer: %s was not measured on the engine (or its inputs were not "
              "recorded): skipped\n",
              QUERIES[q].name);
    else
      rc = measure(c, q, nt, a, err);
  }
  return rc;
}

/* ------------------------------------------------------------ the run */

/* The bulk export a PostgreSQL store would do: every current resource as
 * one line of JSON text (COPY (SELECT resource ...) TO STDOUT, over the
 * socket), table after table. */
static int export_rate(PGconn *c, const bench_fhir_pg_args *a, cl_err *err) {
  uint64_t rows = 0, bytes = 0;
  double t0 = bench_mono();
  for (int t = 1; t < CL_FHIR_Group; t++) {
    char tb[64], sql[256];
    table_of(cl_fhir_type_name(t), tb);
    snprintf(sql, sizeof sql, "COPY (SELECT resource FROM %s) TO STDOUT", tb);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    if (!ok)
      return cl_err_set(err, CL_EIO, "%s: %s", sql, PQerrorMessage(c));
    char *line;
    int n;
    while ((n = PQgetCopyData(c, &line, 0)) > 0) {
      rows++;
      bytes += (uint64_t)n;
      PQfreemem(line);
    }
    while ((r = PQgetResult(c)) != NULL)
      PQclear(r);
    if (n == -2)
      return cl_err_set(err, CL_EIO, "%s: %s", sql, PQerrorMessage(c));
  }
  double s = bench_mono() - t0;
  if (a->json)
    printf("{\"pg\":\"export\",\"resources\":%llu,\"bytes\":%llu,\"s\":%.3f,"
           "\"resources_per_s\":%.0f,\"clinlog_over_pg\":%.2f}\n",
           (unsigned long long)rows, (unsigned long long)bytes, s, rows / s,
           a->export_rps / (rows / s));
  else
    printf("\n  bulk export: COPY (SELECT resource FROM <type>) TO STDOUT, every table: %llu "
           "resources, %.1f MB in %.2f s = %.0f res/s\n"
           "                                               clinlog export / PG: %.2fx\n",
           (unsigned long long)rows, bytes / 1e6, s, rows / s, a->export_rps / (rows / s));
  return 0;
}

int bench_fhir_pg_run(const bench_fhir_pg_args *a) {
  const char *why = bench_pg_missing();
  if (why != NULL) {
    fprintf(stderr, "PostgreSQL peer skipped: %s\n", why);
    if (a->json)
      printf("{\"pg\":\"skipped\",\"reason\":\"%s\"}\n", why);
    return 0;
  }
  if (a->rec->lost)
    fprintf(stderr, "PostgreSQL peer: the record of the engine's queries is incomplete\n");
  bench_pg g = {0};
  cl_err err;
  cl_err_clear(&err);
  size_t n = 0, nhist = 0;
  int nidx = 0;
  double t0 = bench_mono();
  int rc = bench_pg_start(&g, a->base, 0, &err);
  double t_start = bench_mono() - t0;
  if (rc == 0)
    rc = create_tables(g.c, &err);
  t0 = bench_mono();
  if (rc == 0)
    rc = load(g.c, a->proj, &n, &nhist, &err);
  double t_load = bench_mono() - t0;
  t0 = bench_mono();
  if (rc == 0)
    rc = create_indexes(g.c, &nidx, &err);
  double t_index = bench_mono() - t0;
  t0 = bench_mono();
  if (rc == 0)
    rc = bench_pg_exec(g.c, "VACUUM ANALYZE", &err);
  double t_vacuum = bench_mono() - t0;
  if (rc == 0 && a->json)
    printf("{\"pg\":\"PostgreSQL %d\",\"layout\":\"table per type, jsonb\",\"start_s\":%.1f,"
           "\"resources\":%zu,\"older_versions\":%zu,\"load_s\":%.2f,\"load_rps\":%.0f,"
           "\"indexes\":%d,\"index_s\":%.2f,\"vacuum_analyze_s\":%.2f,\"fsync\":false,"
           "\"synchronous_commit\":false,\"full_page_writes\":false,\"jit\":false,"
           "\"socket\":\"unix\"}\n",
           PQserverVersion(g.c) / 10000, t_start, n, nhist, t_load, (double)(n + nhist) / t_load,
           nidx, t_index, t_vacuum);
  else if (rc == 0)
    printf("\nPostgreSQL %d peer (bench_fhir_pg.c): a private cluster initdb'd under %s, started "
           "in %.1f s;\n"
           "  libpq over its unix socket (no TCP); fsync, synchronous_commit, full_page_writes off "
           "for the bulk load\n"
           "  (clinlog's generator appends with sync off too); shared_buffers 256MB, jit off.\n"
           "  Aidbox's layout: a table per type (id, txid, ts, resource jsonb; + version) and "
           "<type>_history (vread).\n"
           "  load, COPY FROM STDIN (reading clinlog's views included): %zu current resources + "
           "%zu older\n"
           "  versions in %.1f s: %.0f resource versions/s\n"
           "  %d indexes (primary keys; GIN jsonb_path_ops on every table; btrees on the patient "
           "reference,\n"
           "  with date or status; GIN on Provenance targets) in %.1f s; VACUUM ANALYZE %.1f s\n"
           "  Same samples and patients as the engine rows above (REST rows drew their own); "
           "ratio = clinlog / PG.\n\n"
           "  %-44s %-6s %7s %9s   %6s\n",
           PQserverVersion(g.c) / 10000, a->base, t_start, n, nhist, t_load,
           (double)(n + nhist) / t_load, nidx, t_index, t_vacuum, "query", "face", "p50 ms",
           "p99 ms", "entries");
  if (rc == 0)
    rc = queries(g.c, a, &err);
  if (rc == 0)
    rc = export_rate(g.c, a, &err);
  if (rc != 0)
    fprintf(stderr, "PostgreSQL peer: %s\n", err.msg);
  bench_pg_stop(&g);
  return rc ? -1 : 0;
}
