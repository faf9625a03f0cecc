/* A private PostgreSQL 15 cluster for the bench's peers; see pgpeer.h. */
#include "bench/pgpeer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/workload.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

/* Runs argv to completion (as postgres if need be), stdout and stderr
 * appended to <dir>/setup.log. Returns its exit status, or -1. */
static int run(const bench_pg *g, char *const argv[]) {
  char log[PATH_MAX + 16];
  snprintf(log, sizeof log, "%s/setup.log", g->dir);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    close_range(3, ~0U, 0); /* the postmaster must not inherit our files and sockets */
    if (g->as_postgres && (setgroups(0, NULL) != 0 || setgid(g->gid) != 0 || setuid(g->uid) != 0))
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The failure of step `what`, with the last lines of the cluster's logs. */
static int failed(const bench_pg *g, const char *what, cl_err *err) {
  char cmd[2 * PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "tail -n 5 '%s/setup.log' '%s/postgres.log' >&2 2>/dev/null", g->dir,
           g->dir);
  int ignored = system(cmd); /* a log that does not exist yet is no news */
  (void)ignored;
  return cl_err_set(err, CL_EIO, "%s failed (logs above, from %s)", what, g->dir);
}

const char *bench_pg_missing(void) {
  static const char *const bins[] = {PG_BIN "/initdb", PG_BIN "/pg_ctl", PG_BIN "/postgres"};
  for (size_t i = 0; i < 3; i++)
    if (access(bins[i], X_OK) != 0)
      return "PostgreSQL 15 is not installed (" PG_BIN "; scripts/install-deps.sh installs it)";
  if (geteuid() == 0 && getpwnam("postgres") == NULL)
    return "running as root and there is no user postgres to run initdb as";
  return NULL;
}

int bench_pg_start(bench_pg *g, const char *base, int durable, cl_err *err) {
  snprintf(g->dir, sizeof g->dir, "%s/pg-XXXXXX", base);
  if (strlen(g->dir) + sizeof "/.s.PGSQL.5432" > 107)
    return cl_err_set(err, CL_EINVAL, "%s: too long for a unix socket path", g->dir);
  if (mkdtemp(g->dir) == NULL) {
    g->dir[0] = '\0';
    return cl_err_set(err, CL_EIO, "mkdtemp under %s: %s", base, strerror(errno));
  }
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    struct stat st;
    if (pw == NULL)
      return cl_err_set(err, CL_EINVAL, "running as root and there is no user postgres");
    g->as_postgres = 1;
    g->uid = pw->pw_uid;
    g->gid = pw->pw_gid;
    /* postgres must reach the directory: make the bench's one traversable */
    if (chown(g->dir, g->uid, g->gid) != 0 ||
        (stat(base, &st) == 0 && !(st.st_mode & S_IXOTH) && chmod(base, st.st_mode | S_IXOTH)))
      return cl_err_set(err, CL_EIO, "giving %s to user postgres: %s", g->dir, strerror(errno));
  }
  char data[PATH_MAX + 8], conf[PATH_MAX + 32], plog[PATH_MAX + 16];
  snprintf(data, sizeof data, "%s/data", g->dir);
  snprintf(plog, sizeof plog, "%s/postgres.log", g->dir);
  char *initdb[] = {PG_BIN "/initdb", "-D",         data,        "-Uclinlog", "-Atrust",
                    "-EUTF8",         "--locale=C", "--no-sync", NULL};
  if (run(g, initdb) != 0)
    return failed(g, "initdb", err);
  snprintf(conf, sizeof conf, "%s/postgresql.conf", data);
  FILE *f = fopen(conf, "a");
  if (f == NULL)
    return cl_err_set(err, CL_EIO, "%s: %s", conf, strerror(errno));
  fprintf(f,
          "listen_addresses = ''\nunix_socket_directories = '%s'\nport = 5432\n"
          "shared_buffers = 256MB\nmaintenance_work_mem = 256MB\nmax_wal_size = 4GB\n"
          "jit = off\nmax_connections = 200\n%s",
          g->dir, durable ? "" : "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
  if (fclose(f) != 0)
    return cl_err_set(err, CL_EIO, "%s: %s", conf, strerror(errno));
  char *start[] = {PG_BIN "/pg_ctl", "-D", data, "-l", plog, "-w", "-t", "60", "start", NULL};
  if (run(g, start) != 0)
    return failed(g, "pg_ctl start", err);
  g->started = 1;
  g->c = bench_pg_connect(g, err);
  return g->c ? 0 : CL_EIO;
}

int bench_pg_add_standbys(bench_pg *g, int n, int quorum, cl_err *err) {
  if (n < 1 || n > BENCH_PG_MAX_STANDBYS || quorum < 1 || quorum > n)
    return cl_err_set(err, CL_EINVAL, "standbys: 1 to %d, quorum 1 to n", BENCH_PG_MAX_STANDBYS);
  char names[64] = "";
  for (int i = 1; i <= n; i++) {
    char sdir[PATH_MAX + 16], slog[PATH_MAX + 24], port[16], conf[PATH_MAX + 48];
    snprintf(sdir, sizeof sdir, "%s/s%d", g->dir, i);
    snprintf(slog, sizeof slog, "%s/s%d.log", g->dir, i);
    snprintf(port, sizeof port, "%d", 5432 + i);
    char *base[] = {PG_BIN "/pg_basebackup", "-h", g->dir, "-p", "5432", "-U", "clinlog", "-D",
                    sdir, "-R", "-X", "stream", "--no-sync", "-c", "fast", NULL};
    if (run(g, base) != 0)
      return failed(g, "pg_basebackup", err);
    /* its own port; its name in the primary's synchronous_standby_names */
    snprintf(conf, sizeof conf, "%s/postgresql.auto.conf", sdir);
    FILE *f = fopen(conf, "a");
    if (f == NULL)
      return cl_err_set(err, CL_EIO, "%s: %s", conf, strerror(errno));
    fprintf(f,
            "port = %s\nprimary_conninfo = 'host=%s port=5432 user=clinlog "
            "application_name=s%d'\n",
            port, g->dir, i);
    if (fclose(f) != 0)
      return cl_err_set(err, CL_EIO, "%s: %s", conf, strerror(errno));
    char *start[] = {PG_BIN "/pg_ctl", "-D", sdir, "-l", slog, "-w", "-t", "60", "start", NULL};
    if (run(g, start) != 0)
      return failed(g, "pg_ctl start of a standby", err);
    g->standbys = i;
    snprintf(names + strlen(names), sizeof names - strlen(names), "%ss%d", i > 1 ? ", " : "", i);
  }
  char sql[160];
  snprintf(sql, sizeof sql, "ALTER SYSTEM SET synchronous_standby_names = 'ANY %d (%s)'", quorum,
           names);
  if (bench_pg_exec(g->c, sql, err))
    return CL_EIO;
  PQclear(PQexec(g->c, "SELECT pg_reload_conf()")); /* returns a row, not a command status */
  for (int tries = 0; tries < 300; tries++) { /* up to 30 s for every standby to stream */
    PGresult *r = PQexec(g->c, "SELECT count(*) FROM pg_stat_replication WHERE state ="
                               " 'streaming' AND sync_state = 'quorum'");
    int have = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    if (have == n)
      return 0;
    bench_sleep_ms(100);
  }
  return failed(g, "waiting for the standbys to stream", err);
}

pid_t bench_pg_standby_pid(const bench_pg *g, int i) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/s%d/postmaster.pid", g->dir, i);
  FILE *f = fopen(path, "r");
  long pid = -1;
  if (f == NULL || fscanf(f, "%ld", &pid) != 1)
    pid = -1;
  if (f)
    fclose(f);
  return (pid_t)pid;
}

PGconn *bench_pg_connect(const bench_pg *g, cl_err *err) {
  char ci[PATH_MAX + 64];
  snprintf(ci, sizeof ci, "host=%s port=5432 dbname=postgres user=clinlog", g->dir);
  PGconn *c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    cl_err_set(err, CL_EIO, "connecting to %s: %s", g->dir, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

PGconn *bench_pg_connect_prepared(const bench_pg *g, const char *name, const char *sql,
                                  int nparams, cl_err *err) {
  PGconn *c = bench_pg_connect(g, err);
  if (c == NULL || bench_pg_exec(c, "SET synchronous_commit = on", err)) {
    PQfinish(c);
    return NULL;
  }
  PGresult *r = PQprepare(c, name, sql, nparams, NULL);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    cl_err_set(err, CL_EIO, "postgres: preparing %s: %s", name, PQresultErrorMessage(r));
  PQclear(r);
  if (!ok) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

void bench_pg_stop(bench_pg *g) {
  PQfinish(g->c);
  g->c = NULL;
  for (int i = g->standbys; i >= 1; i--) {
    char sdir[PATH_MAX + 16];
    snprintf(sdir, sizeof sdir, "%s/s%d", g->dir, i);
    char *stop[] = {PG_BIN "/pg_ctl", "-D", sdir, "-m", "fast", "-w", "stop", NULL};
    if (run(g, stop) != 0)
      fprintf(stderr, "warning: pg_ctl stop of standby %d failed (%s)\n", i, g->dir);
  }
  g->standbys = 0;
  if (g->started) {
    char data[PATH_MAX + 8];
    snprintf(data, sizeof data, "%s/data", g->dir);
    char *stop[] = {PG_BIN "/pg_ctl", "-D", data, "-m", "fast", "-w", "stop", NULL};
    if (run(g, stop) != 0)
      fprintf(stderr, "warning: pg_ctl stop failed (%s)\n", g->dir);
    g->started = 0;
  }
  if (g->dir[0])
    bench_rmrf(g->dir);
}

int bench_pg_exec(PGconn *c, const char *sql, cl_err *err) {
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    cl_err_set(err, CL_EIO, "postgres: %.80s...: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : CL_EIO;
}
