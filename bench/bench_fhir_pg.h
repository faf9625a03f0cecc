/* clinlog-bench fhir's PostgreSQL peer (bench_fhir_pg.c): the resources
 * clinlog's FHIR views serve, loaded into a private PostgreSQL 15 as JSONB
 * (a table per type, as Aidbox stores them) with GIN and expression
 * indexes, asked the same reads and searches through libpq, and compared
 * with what bench_fhir.c measured in the same run.
 *
 * bench_fhir.c records in a bench_fhir_rec the patient each query drew and
 * each query's latencies (bench_fhir_rec_pick, bench_fhir_rec_note), then
 * hands the record to bench_fhir_pg_run. Nothing here is thread-safe: the
 * bench is single-threaded. */
#ifndef CL_BENCH_BENCH_FHIR_PG_H
#define CL_BENCH_BENCH_FHIR_PG_H

#include <stddef.h>

#include "query/fhir/engine.h"
#include "query/runner.h"

/* One query bench_fhir.c measured. */
typedef struct bench_fhir_note {
  char name[64];   /* as report() printed it: "read Patient", ... */
  char face[16];   /* "engine", "REST" */
  size_t n;        /* samples */
  double p50, p99; /* seconds */
  size_t entries;  /* the Bundle entries of its last sample, as report() printed them */
  size_t first;    /* the patient ids its samples drew: picks[first .. first + npicks) */
  size_t npicks;
} bench_fhir_note;

typedef struct bench_fhir_rec {
  char (*picks)[16]; /* owned: bench_fhir_rec_free */
  size_t npicks, cap;
  bench_fhir_note notes[32];
  size_t nnotes;
  size_t mark; /* picks before it belong to a note */
  int lost;    /* out of memory or of notes: the record is incomplete */
} bench_fhir_rec;

/* Records the patient id (borrowed) the next sample of the current query
 * drew. On out of memory the record is marked incomplete. */
void bench_fhir_rec_pick(bench_fhir_rec *r, const char *pid);
/* Records a finished query: `v` (n samples in seconds, borrowed; sorted in
 * place) and the picks made since the previous note. */
void bench_fhir_rec_note(bench_fhir_rec *r, const char *name, const char *face, double *v, size_t n,
                         size_t entries);
/* Frees what the record holds (not `r` itself). */
void bench_fhir_rec_free(bench_fhir_rec *r);

typedef struct bench_fhir_pg_args {
  const char *base;       /* the bench's --dir: the cluster lives in <base>/pg-XXXXXX */
  cl_proj *proj;          /* the caught-up fhir projection (borrowed) */
  cl_fhir_engine *engine; /* over `proj` (borrowed): the result-count check */
  const bench_fhir_rec *rec;
  int json;          /* one JSON object a line instead of text */
  double export_rps; /* clinlog's bulk export rate in the same run (0: not measured) */
} bench_fhir_pg_args;

/* Starts a throwaway PostgreSQL 15 cluster, loads the current version of
 * every resource of `proj` (and the older versions, for vread), builds the
 * indexes, runs the queries of a->rec's engine notes on the same inputs,
 * prints them with the ratio clinlog / PostgreSQL, then stops the cluster
 * and removes its directory (on every path). Returns 0, also when
 * PostgreSQL is not installed (the comparison is skipped with a message on
 * stderr), or -1 after printing the failure on stderr. */
int bench_fhir_pg_run(const bench_fhir_pg_args *a);

#endif
