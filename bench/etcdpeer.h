/* etcd 3.4 as a benchmark peer: start 1 to 3 members (Debian's etcd-server)
 * on free loopback ports, wait until they serve, and stop them. Shared by
 * clinlog-bench etcd (3 members, KV.Put: bench_peer_etcd.c) and clinlog-bench
 * etcd-watch (1 member, Watch fan-out: bench_peer_etcd_watch.c).
 *
 * The members talk plain http on loopback, keep their data and logs under a
 * base directory, and form a new cluster. etcd's durability is its default,
 * which 3.4 cannot turn down: a write is answered once its Raft entry is
 * fsynced by a majority. Calls go through the clinlog C client (the gRPC C
 * core) with the messages of bench/etcd/rpc.proto. */
#ifndef CL_BENCH_ETCDPEER_H
#define CL_BENCH_ETCDPEER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "adapters/grpc/client.h"

#define BENCH_ETCD_MAX_MEMBERS 3

typedef struct bench_etcd_member {
  pid_t pid;                  /* 0 when not running */
  int client_port, peer_port; /* loopback */
  char name[16];              /* e1, e2, e3 */
  char dir[4200], log[4200];  /* under the base directory */
  char target[64];            /* 127.0.0.1:client_port */
  uint64_t id;                /* etcd's member id, from Status */
} bench_etcd_member;

/* A running etcd cluster; plain value, filled by bench_etcd_up. */
typedef struct bench_etcd {
  int n; /* members */
  bench_etcd_member ms[BENCH_ETCD_MAX_MEMBERS];
  int leader;       /* index into ms; -1 until up */
  char version[32]; /* the servers' version, e.g. "3.4.23" */
  cl_client *lead;  /* a channel to the leader (owned) */
} bench_etcd;

/* The etcd to run: `opt` (borrowed, may be NULL), or the first "etcd" on
 * PATH, into out[n]. 0, or -1 when there is none. */
int bench_etcd_find(const char *opt, char *out, size_t n);

/* Parses the options of an etcd bench command (argv[1] is the command):
 * --dir D into *base, --etcd PATH into *etcd, --quick, --json, and
 * --seconds S (S > 0) when `seconds` is not NULL. Values are views into
 * argv. 0, or -1 on anything else (the caller prints its usage). */
int bench_etcd_args(int argc, char **argv, const char **base, const char **etcd, int *quick,
                    int *json, double *seconds);

/* What a bench command does before it starts etcd: finds it (`opt` or
 * PATH, into etcd[n]), initializes libsodium and creates `base`. 0; 3 when
 * there is no etcd ("CMD: skipped: ..." printed, the bench's exit status
 * for a skip); 1 on another error (printed). */
int bench_etcd_prepare(const char *cmd, const char *opt, const char *base, char *etcd, size_t n);

/* A client for `target` (borrowed): plaintext, `timeout_ms` per unary call;
 * returned-owned (cl_client_close), or NULL after printing why. */
cl_client *bench_etcd_client(const char *target, int timeout_ms);

/* Starts n (1..3) members of `etcd` under `base` (both borrowed; members'
 * old data there is removed first), waits (up to 30 s) until each one's
 * /health says true, all name one leader and a first Put through the leader
 * is applied, and opens e->lead. `cmd` names the bench command in progress
 * lines (stderr; none when quiet). 0, or -1 with why[wn] set; on -1 call
 * bench_etcd_down all the same (it stops what started). */
int bench_etcd_up(bench_etcd *e, const char *etcd, const char *base, int n, const char *cmd,
                  int quiet, char *why, size_t wn);

/* Closes e->lead, stops every member (SIGTERM, SIGKILL after 10 s) and
 * removes their data directories, and their logs unless `keep_logs`.
 * Returns how many members had to be killed. */
int bench_etcd_down(bench_etcd *e, int keep_logs);

/* One KV.Put of key/value (borrowed) with a deadline (<= 0: the client's).
 * 0, or a CL_E* code with err set (also when the answer has no revision). */
int bench_etcd_put(cl_client *c, const uint8_t *key, size_t kn, const uint8_t *val, size_t vn,
                   int timeout_ms, cl_err *err);

/* WAL fsyncs of all members together (etcd_disk_wal_fsync_duration_seconds_
 * count from each /metrics), or -1 when one cannot be read. */
double bench_etcd_wal_fsyncs(const bench_etcd *e);

/* utime + stime of all members in seconds (/proc), or -1. */
double bench_etcd_cpu_s(const bench_etcd *e);

#endif
