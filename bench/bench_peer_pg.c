/* clinlog-bench pg: PostgreSQL 15 as an event store, the peer that
 * clinlog's unary Append figures (clinlog-bench grpc) are compared with.
 *
 *   clinlog-bench pg [--dir D] [--quick] [--json] [--seconds S] [--standbys N]
 *
 * A private durable cluster (pgpeer.c: fsync and synchronous_commit on,
 * PostgreSQL's defaults, so a commit returns after its WAL is flushed, as
 * clinlog's Append returns after its RocksDB write is synced) holds
 *
 *   events(seq bigserial PRIMARY KEY, event_id bytea UNIQUE, stream text,
 *          version bigint, body bytea, UNIQUE (stream, version))
 *
 * the same constraints clinlog checks on apply: an event id is stored once,
 * a stream's versions are dense and unique. Scenarios: transactions of 1
 * event (one INSERT, autocommit) and of 64 events (one multi-row INSERT,
 * one transaction), at 1, 16 and 64 connections, each driven by its own
 * thread in a closed loop for S seconds (5; --quick 1) by the load
 * generator clinlog's own scenarios use (bench/loadgen.h; a transaction's
 * rows are made before its clock starts, as clinlog's batches are signed
 * before theirs). The body is a
 * serialized benchmark event (bench_make_event: the bytes clinlog's
 * benchmarks append, before clinlog's encryption and signature), the id 16
 * fresh random bytes; each connection writes its own streams (5000 in all,
 * as bench_make_event spreads events over 5000 patients), each the next
 * version, so no insert conflicts.
 *
 * Per scenario: events/s; latency p50/p90/p99/p99.9 of a transaction (one
 * INSERT round trip, ms); server CPU per event (µs: utime + stime of the
 * postmaster and its children from /proc, live and reaped, before and
 * after); client CPU per event (getrusage of this process, the libpq
 * threads being all it runs while measuring); WAL syncs per event
 * (pg_stat_wal.wal_sync; each backend's counters are flushed with
 * pg_stat_force_next_flush() before reading; the WAL writer's own syncs may
 * be reported late); the server's memory (sum of the processes' Pss after
 * the scenario, so shared buffers count once).
 *
 * --standbys N: the replicated peer a hospital runs beside a 3-node
 * cluster: the same primary with N streaming standbys (pgpeer.c:
 * pg_basebackup, each its own postmaster on this machine) of which a
 * commit waits for one (synchronous_standby_names = 'ANY 1 (s1, ...)',
 * synchronous_commit on: the WAL flushed on the primary and on a standby),
 * so a commit survives the loss of any one machine, as a 3-node Raft
 * cluster's does.
 *
 * clinlog's figures for the same scenarios come from clinlog-bench grpc
 * (one node) and clinlog-bench cluster (3 nodes); bench/run puts them side
 * by side. */
#include "bench/bench_peer_pg.h"

#include <libpq-fe.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/loadgen.h"
#include "bench/pgpeer.h"
#include "bench/workload.h"

#define MAX_CONC 64
#define MAX_BATCH 64
#define STREAMS 5000
#define BODIES 256 /* distinct bodies per connection, reused round robin */

static const char SCHEMA[] =
    "CREATE TABLE events (seq bigserial PRIMARY KEY, event_id bytea NOT NULL UNIQUE,"
    " stream text NOT NULL, version bigint NOT NULL, body bytea NOT NULL,"
    " UNIQUE (stream, version))";

typedef struct worker {
  PGconn *c;
  int id;            /* connection number */
  int scen;          /* scenario number: a prefix of the stream names */
  size_t bs;         /* events per transaction */
  int nstreams;      /* streams this connection writes */
  uint64_t *version; /* [nstreams]: the last version written */
  ProtobufCBinaryData body[BODIES];
  size_t b; /* the next body */
  unsigned seed;
  /* the next transaction's parameters (prep_insert) */
  const char *vals[4 * MAX_BATCH];
  int lens[4 * MAX_BATCH], fmts[4 * MAX_BATCH];
  uint8_t ids[MAX_BATCH][16];
  char streams[MAX_BATCH][48], versions[MAX_BATCH][24];
} worker;

/* The load generator's prep: the next transaction's rows (fresh ids, each
 * stream's next version), outside its latency. */
static int prep_insert(void *ctx, size_t *events, char *why, size_t whyn) {
  (void)events, (void)why, (void)whyn;
  worker *w = ctx;
  for (size_t i = 0; i < w->bs; i++) {
    int k = (int)((unsigned)rand_r(&w->seed) % (unsigned)w->nstreams);
    randombytes_buf(w->ids[i], 16);
    snprintf(w->streams[i], sizeof w->streams[i], "s%d-c%d-patient-%d", w->scen, w->id, k);
    snprintf(w->versions[i], sizeof w->versions[i], "%llu", (unsigned long long)++w->version[k]);
    const ProtobufCBinaryData *body = &w->body[w->b++ % BODIES];
    w->vals[4 * i] = (const char *)w->ids[i], w->lens[4 * i] = 16, w->fmts[4 * i] = 1;
    w->vals[4 * i + 1] = w->streams[i], w->lens[4 * i + 1] = 0, w->fmts[4 * i + 1] = 0;
    w->vals[4 * i + 2] = w->versions[i], w->lens[4 * i + 2] = 0, w->fmts[4 * i + 2] = 0;
    w->vals[4 * i + 3] = (const char *)body->data, w->lens[4 * i + 3] = (int)body->len;
    w->fmts[4 * i + 3] = 1;
  }
  return 0;
}

/* The call measured: one transaction (one INSERT round trip). */
static int insert(void *ctx, size_t *events, char *why, size_t whyn) {
  worker *w = ctx;
  const char *stmt = w->bs == 1 ? "ins1" : "ins64";
  PGresult *r = PQexecPrepared(w->c, stmt, (int)(4 * w->bs), w->vals, w->lens, w->fmts, 0);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    snprintf(why, whyn, "%s: %s", stmt, PQresultErrorMessage(r));
  PQclear(r);
  *events = w->bs;
  return ok ? 0 : -1;
}

typedef struct scen {
  size_t bs;
  int conc;
  bench_result r; /* events/s, latency of one transaction */
  double server_us, client_us, syncs_per_event, pss_mb;
} scen;

/* pg_stat_wal.wal_sync after every connection has flushed its counters;
 * -1 when it cannot be read. */
static double wal_syncs(PGconn *main, worker *ws, int conc) {
  for (int i = 0; i < conc; i++)
    PQclear(PQexec(ws[i].c, "SELECT pg_stat_force_next_flush()"));
  PQclear(PQexec(main, "SELECT pg_stat_force_next_flush()"));
  PGresult *r = PQexec(main, "SELECT wal_sync FROM pg_stat_wal");
  double v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                 ? strtod(PQgetvalue(r, 0, 0), NULL)
                 : -1;
  PQclear(r);
  return v;
}

/* CPU seconds of the postmasters pm[0..n) and their children (-1 if one
 * cannot be read). */
static double servers_cpu_s(const pid_t *pm, int n) {
  double sum = 0;
  for (int i = 0; i < n; i++) {
    double v = bench_proc_tree_cpu_s(pm[i]);
    if (v < 0)
      return -1;
    sum += v;
  }
  return sum;
}

/* pm[0]: the primary's postmaster; pm[1..npm): its standbys' (their CPU
 * and memory count as the server's: they are the replicated peer). */
static int measure(PGconn *main, const pid_t *pm, int npm, worker *ws, int scen_no, scen *s,
                   double seconds, cl_err *err) {
  double syncs0 = wal_syncs(main, ws, s->conc);
  double srv0 = servers_cpu_s(pm, npm), cli0 = bench_self_cpu_s();
  for (int i = 0; i < s->conc; i++) {
    worker *w = &ws[i];
    w->scen = scen_no;
    w->bs = s->bs;
    w->nstreams = STREAMS / s->conc;
    memset(w->version, 0, STREAMS * sizeof *w->version);
  }
  char why[320];
  int rc = bench_load_closed(s->conc, ws, sizeof *ws, prep_insert, insert, seconds, &s->r, why,
                             sizeof why);
  double srv1 = servers_cpu_s(pm, npm), cli1 = bench_self_cpu_s();
  if (rc)
    return cl_err_set(err, CL_EIO, "postgres peer: %s", why);
  double syncs1 = wal_syncs(main, ws, s->conc);
  double ev = s->r.events ? (double)s->r.events : 1;
  s->server_us = srv0 >= 0 && srv1 >= 0 ? (srv1 - srv0) * 1e6 / ev : -1;
  s->client_us = (cli1 - cli0) * 1e6 / ev;
  s->syncs_per_event = syncs0 >= 0 && syncs1 >= 0 ? (syncs1 - syncs0) / ev : -1;
  s->pss_mb = 0;
  for (int i = 0; i < npm && s->pss_mb >= 0; i++) {
    double v = bench_proc_tree_pss_mb(pm[i]);
    s->pss_mb = v < 0 ? -1 : s->pss_mb + v;
  }
  return 0;
}

/* Prepares ins1 and ins64 on c. */
static int prepare(PGconn *c, cl_err *err) {
  char sql[8192];
  int n = snprintf(sql, sizeof sql, "INSERT INTO events (event_id, stream, version, body) VALUES ");
  for (int i = 0; i < MAX_BATCH; i++)
    n += snprintf(sql + n, sizeof sql - (size_t)n, "%s($%d, $%d, $%d, $%d)", i ? ", " : "",
                  4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4);
  const char *names[2] = {"ins1", "ins64"};
  const char *sqls[2] = {
      "INSERT INTO events (event_id, stream, version, body) VALUES ($1, $2, $3, $4)", sql};
  const int np[2] = {4, 4 * MAX_BATCH};
  for (int i = 0; i < 2; i++) {
    PGresult *r = PQprepare(c, names[i], sqls[i], np[i], NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
      cl_err_set(err, CL_EIO, "postgres: preparing %s: %s", names[i], PQresultErrorMessage(r));
    PQclear(r);
    if (!ok)
      return CL_EIO;
  }
  return 0;
}

/* The postmaster: the parent of the starter's backend. */
static pid_t postmaster(PGconn *c) { return bench_proc_ppid((pid_t)PQbackendPID(c)); }

/* ,"name":v with `prec` decimals, or null when v < 0 (could not be read). */
static void print_num(const char *name, double v, int prec) {
  if (v < 0)
    printf(",\"%s\":null", name);
  else
    printf(",\"%s\":%.*f", name, prec, v);
}

int bench_peer_pg_main(int argc, char **argv) {
  const char *base = "/tmp/clinlog-bench-pg";
  int quick = 0, json = 0, standbys = 0;
  double seconds = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      base = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc && atof(argv[i + 1]) > 0)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--standbys") && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
             atoi(argv[i + 1]) <= BENCH_PG_MAX_STANDBYS)
      standbys = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: clinlog-bench pg [--dir D] [--quick] [--json] [--seconds S] "
                      "[--standbys 1..%d]\n",
              BENCH_PG_MAX_STANDBYS);
      return 2;
    }
  }
  if (seconds <= 0)
    seconds = quick ? 1 : 5;
  const char *why = bench_pg_missing();
  if (why) {
    fprintf(stderr, "clinlog-bench pg: %s\n", why);
    return 3;
  }
  if (sodium_init() < 0)
    return 1;
  mkdir(base, 0700);
  cl_err err;
  bench_pg g = {0};
  worker *ws = calloc(MAX_CONC, sizeof *ws);
  if (!ws)
    abort();
  unsigned seed = 99;
  size_t body_bytes = 0;
  for (int i = 0; i < MAX_CONC; i++) {
    ws[i].id = i;
    ws[i].seed = 1000u + (unsigned)i;
    ws[i].version = calloc(STREAMS, sizeof *ws[i].version);
    if (!ws[i].version)
      abort();
    for (int k = 0; k < BODIES; k++) {
      bench_make_event(&ws[i].body[k], &seed);
      body_bytes += ws[i].body[k].len;
    }
  }
  int rc = bench_pg_start(&g, base, 1, &err);
  if (!rc && standbys)
    rc = bench_pg_add_standbys(&g, standbys, 1, &err);
  if (!rc)
    rc = bench_pg_exec(g.c, SCHEMA, &err);
  for (int i = 0; i < MAX_CONC && !rc; i++) {
    if (!(ws[i].c = bench_pg_connect(&g, &err)))
      rc = CL_EIO;
    else
      rc = prepare(ws[i].c, &err);
  }
  pid_t pm[1 + BENCH_PG_MAX_STANDBYS];
  int npm = 1 + standbys;
  pm[0] = rc ? -1 : postmaster(g.c);
  for (int i = 1; i < npm; i++)
    pm[i] = bench_pg_standby_pid(&g, i);
  char machine[128];
  bench_machine(machine, sizeof machine);
  const size_t bsizes[2] = {1, 64};
  const int concs[3] = {1, 16, 64};
  scen sc[6];
  int nsc = 0;
  if (!rc && !json)
    printf("clinlog-bench pg — %s; PostgreSQL %d, a private durable cluster (fsync,\n"
           "synchronous_commit on) over a unix socket%s; events(seq, event_id UNIQUE, stream,\n"
           "version, body, UNIQUE (stream, version)); body %zu bytes; %.0f s per scenario\n\n"
           "%-5s %-4s | %9s %8s %8s %8s %8s | %8s %8s %7s %7s\n",
           machine, PQserverVersion(g.c) / 10000,
           standbys ? ", each commit also flushed on 1 of its streaming standbys" : "",
           body_bytes / (MAX_CONC * BODIES), seconds,
           "batch", "conc", "events/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "srv µs/ev",
           "cli µs/ev", "syncs/e", "PSS MB");
  for (int bi = 0; bi < 2 && !rc; bi++)
    for (int ci = 0; ci < 3 && !rc; ci++) {
      scen *s = &sc[nsc];
      memset(s, 0, sizeof *s);
      s->bs = bsizes[bi];
      s->conc = concs[ci];
      rc = measure(g.c, pm, npm, ws, nsc, s, seconds, &err);
      if (rc)
        break;
      nsc++;
      if (!json) {
        printf("%-5zu %-4d | %9.0f %8.2f %8.2f %8.2f %8.2f | %8.1f %8.1f %7.3f %7.0f\n", s->bs,
               s->conc, s->r.eps, s->r.p50_ms, s->r.p90_ms, s->r.p99_ms, s->r.p999_ms, s->server_us,
               s->client_us, s->syncs_per_event, s->pss_mb);
        fflush(stdout);
      } else {
        fprintf(stderr, "  postgresql batch %2zu conc %2d: %8.0f ev/s p50 %7.2f ms p99 %7.2f ms\n",
                s->bs, s->conc, s->r.eps, s->r.p50_ms, s->r.p99_ms);
      }
    }
  if (json && nsc) {
    printf("{\"system\":\"postgresql\",\"server_version\":\"%s\",\"machine\":\"%s\","
           "\"quick\":%s,\"seconds_per_scenario\":%.1f,\"body_bytes\":%zu,"
           "\"durable\":true,\"standbys\":%d,\"synchronous_quorum\":%d,\"scenarios\":[",
           PQparameterStatus(g.c, "server_version"), machine, quick ? "true" : "false", seconds,
           body_bytes / (MAX_CONC * BODIES), standbys, standbys ? 1 : 0);
    for (int i = 0; i < nsc; i++) {
      const scen *s = &sc[i];
      printf("%s{\"batch\":%zu,\"concurrency\":%d,\"events\":%zu,\"events_per_s\":%.0f,"
             "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f",
             i ? "," : "", s->bs, s->conc, s->r.events, s->r.eps, s->r.p50_ms, s->r.p90_ms,
             s->r.p99_ms, s->r.p999_ms);
      print_num("server_cpu_us_per_event", s->server_us, 1);
      print_num("client_cpu_us_per_event", s->client_us, 1);
      print_num("fsyncs_per_event", s->syncs_per_event, 4);
      print_num("server_pss_mb", s->pss_mb, 1);
      bench_cdf_print(s->r.cdf_ms);
      printf("}");
    }
    printf("]}\n");
  }
  if (rc)
    fprintf(stderr, "clinlog-bench pg: %s\n", err.msg);
  for (int i = 0; i < MAX_CONC; i++) {
    PQfinish(ws[i].c);
    free(ws[i].version);
    for (int k = 0; k < BODIES; k++)
      free(ws[i].body[k].data);
  }
  free(ws);
  bench_pg_stop(&g);
  return rc ? 1 : 0;
}
