/* clinlog-bench audit's PostgreSQL peer (bench_audit_pg.c): fail-closed
 * auditing as a PostgreSQL 15 user would build it, measured in the same
 * run as clinlogd --audit off/on, so the two ratios can be set side by
 * side.
 *
 * A private durable cluster (fsync and synchronous_commit on, as clinlog
 * commits) holds `obs` (Observation JSONB by id), `events` (an append-only
 * event table) and `audit` (one row per access, indexed by patient, by
 * principal and by time, as clinlog's audit views are). Audit off: a
 * prepared SELECT of one Observation by id, or an INSERT of one event.
 * Audit on: the same statement with its audit row inserted in it
 * (`WITH a AS (INSERT INTO audit ...) SELECT ...`), so the row is
 * committed, and flushed, before the answer comes back: the read costs a
 * commit, the write's audit row shares its commit. One connection per
 * client thread, closed loop, over the unix socket. Not thread-safe. */
#ifndef CL_BENCH_BENCH_AUDIT_PG_H
#define CL_BENCH_BENCH_AUDIT_PG_H

#include <stddef.h>

#include "store/err.h"

enum { BENCH_APG_READ, BENCH_APG_WRITE };

typedef struct bench_apg_scen {
  int kind;                                /* BENCH_APG_READ or _WRITE */
  int conc;                                /* client threads (connections) */
  double off_ops, on_ops, ratio;           /* medians over the rounds; ratio: of per-pair on/off */
  double off_p50, off_p99, on_p50, on_p99; /* ms, medians over the rounds */
} bench_apg_scen;

typedef struct bench_apg_args {
  const char *base; /* the cluster goes under base/pg-XXXXXX */
  size_t rows;      /* Observations to load */
  double seconds;   /* per scenario and mode */
  int rounds;       /* off/on pairs, ABBA */
  int verbose;      /* progress lines on stdout */
} bench_apg_args;

/* Measures the scenarios s[0..n) (kind and conc set by the caller).
 * 0, CL_EUNAVAILABLE when PostgreSQL cannot run here (err says why), or
 * CL_EIO with err set. */
int bench_apg_run(const bench_apg_args *a, bench_apg_scen *s, size_t n, cl_err *err);

#endif
