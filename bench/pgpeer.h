/* A private PostgreSQL 15 cluster for the bench's peers (bench_fhir_pg.c,
 * bench_audit_pg.c): initdb'd under a fresh directory, reached over a unix
 * socket only, stopped and removed afterwards.
 *
 *   bench_pg g = {0};
 *   if (bench_pg_missing()) ...skip the peer...
 *   if (bench_pg_start(&g, base, durable, &err) == 0) { ...g.c... }
 *   bench_pg_stop(&g);            always, also after a failed start
 *
 * Running as root, the server binaries run as user postgres. Not
 * thread-safe: one thread starts and stops; other threads may open their
 * own connections with bench_pg_connect. */
#ifndef CL_BENCH_PGPEER_H
#define CL_BENCH_PGPEER_H

#include <libpq-fe.h>
#include <limits.h>
#include <sys/types.h>

#include "store/err.h"

#define BENCH_PG_MAX_STANDBYS 4

typedef struct bench_pg {
  char dir[PATH_MAX]; /* <base>/pg-XXXXXX: data/, the socket, the logs */
  int as_postgres;    /* we are root: run the binaries as user postgres */
  uid_t uid;
  gid_t gid;
  int started;
  int standbys; /* started standbys: data s1/, s2/..., ports 5433... */
  PGconn *c;    /* the starter's connection, to database postgres as user clinlog */
} bench_pg;

/* NULL when PostgreSQL 15 can run here, else why not (static text). */
const char *bench_pg_missing(void);

/* initdb and start under base. durable 0: fsync, synchronous_commit and
 * full_page_writes off (a read peer: loading is fast, reads are the same);
 * 1: PostgreSQL's defaults (every commit is flushed before it returns, as
 * clinlog's are). 0 or CL_EIO/CL_EINVAL with err set; the last lines of the
 * server's logs go to stderr. */
int bench_pg_start(bench_pg *g, const char *base, int durable, cl_err *err);

/* After bench_pg_start: n (1..4) streaming standbys of the primary (each
 * pg_basebackup'd, on its own port of the same socket directory, as
 * application s1, s2, ...), and the primary made to wait for `quorum` of
 * them at each commit (synchronous_standby_names = 'ANY quorum (s1, ...)',
 * synchronous_commit on: a commit returns once its WAL is flushed on the
 * primary and on that many standbys). Returns once every standby streams
 * and the quorum is in place; 0 or CL_EIO with err set. */
int bench_pg_add_standbys(bench_pg *g, int n, int quorum, cl_err *err);

/* The postmaster of standby i (1-based), from its postmaster.pid; -1 if
 * it cannot be read. */
pid_t bench_pg_standby_pid(const bench_pg *g, int i);

/* Stops the cluster (standbys included) and removes its directory,
 * whatever state it is in. */
void bench_pg_stop(bench_pg *g);

/* A new connection to the cluster (the caller PQfinish-es it), or NULL
 * with err set. */
PGconn *bench_pg_connect(const bench_pg *g, cl_err *err);

/* A new connection with synchronous_commit on (each commit flushed) and
 * the statement `sql` prepared as `name` (nparams parameters), or NULL
 * with err set. */
PGconn *bench_pg_connect_prepared(const bench_pg *g, const char *name, const char *sql,
                                  int nparams, cl_err *err);

/* Runs SQL that returns no rows: 0 or CL_EIO with err naming it. */
int bench_pg_exec(PGconn *c, const char *sql, cl_err *err);

#endif
