/* Internals of clinlog-bench cluster (bench_cluster.c: throughput, the
 * report and main; bench_cluster_node.c: the clinlogd processes and the
 * Cluster API; bench_cluster_fault.c: failover and join). */
#ifndef CL_BENCH_BENCH_CLUSTER_INT_H
#define CL_BENCH_BENCH_CLUSTER_INT_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "adapters/grpc/client.h"
#include "bench/benchutil.h"
#include "clinlog/v1/cluster.pb-c.h"
#include "store/keys.h"

#define mono bench_mono
#define APPEND_PATH "/clinlog.v1.Log/Append"
#define STATUS_PATH "/clinlog.v1.Cluster/Status"
#define ADD_PATH "/clinlog.v1.Cluster/AddNode"

typedef struct node {
  char name[16];
  uint64_t id;
  int join; /* started with --join (a member added later) */
  char api[32], raft[32], dir[4200], log[4300];
  bench_proc p;
  cl_client *c; /* kept across restarts: the channel reconnects */
} node;

typedef struct env {
  char clinlogd[PATH_MAX + 16], clinlog[PATH_MAX + 16];
  char base[4096], keyfile[4200], initlog[4200];
  int quick, failed;
  double seconds;       /* per throughput scenario (--seconds; 5, --quick 2) */
  int hung;             /* nodes that had to be SIGKILLed at a stop */
  uint64_t join_events; /* 0: the default */
  size_t join_batch;    /* events per AppendStream batch of the join load */
  const char *runp;     /* --run-projections for every clinlogd, NULL: its default */
  cl_signer admin;
} env;

#define TRIALS 5

typedef struct rss {
  double rss_mb, hwm_mb, anon_mb, file_mb; /* VmRSS, VmHWM, RssAnon, RssFile */
} rss;

#define FO_TICK 0.1 /* s: the failover timeline's resolution */

typedef struct fo_out {
  double t[TRIALS], rejoin[TRIALS];
  uint64_t killed[TRIALS];
  int n, trials; /* trials done, planned (TRIALS; --quick 2) */
  double max, median;
  unsigned long long ok, retries;
  /* the timeline: appends/s over each FO_TICK from the writers' start (tl,
   * tl_n entries, owned: free it), and per trial the kill and the first
   * append after it, in s on the same clock */
  double *tl, kill_at[TRIALS], ok_at[TRIALS];
  size_t tl_n;
  /* follower lag: Raft entries behind the leader's last index, as the
   * leader's Cluster.Status saw each live follower every 100 ms while no
   * node was down */
  double lag_p50, lag_p99, lag_max;
  size_t lag_n;
  int ran;
} fo_out;

typedef struct join_out {
  uint64_t events, source_size, raft_last_index; /* the source's, at the add */
  double load_eps, add_s, catchup_s;
  rss idle, at[4], final, source; /* source: the loaded node, before the add */
  double t_at[4], peak_rss_mb;
  int ran, done;
} join_out;

int bc_node_init(env *e, node *n, const char *name, uint64_t id, int join);

/* `clinlog init` of the node's directory: a new log (src NULL) or an empty
 * member store of the cluster whose store is src. */
int bc_node_create(env *e, node *n, const char *src);

int bc_node_start(env *e, node *n);

/* Stops the processes of nodes[0..count) together (each drains ~1 s). */
void bc_nodes_stop(env *e, node *ns, int count);

void bc_nodes_free(env *e, node *ns, int count);

Clinlog__V1__ClusterStatus *bc_status_of(node *n, int timeout_ms, cl_err *err);

void bc_status_free(Clinlog__V1__ClusterStatus *s);

/* Index in ns of the leader as the live nodes see it, waiting up to
 * `secs` for one; -1 if none. */
int bc_find_leader(node *ns, int count, double secs);

/* Cluster.AddNode on `leader`; returns once n votes (or with an error). */
int bc_add_node(node *leader, node *n, int timeout_ms);

/* Creates and starts a one-node cluster on ns[0] (a fresh `clinlog init`)
 * and adds ns[1..count) to it, each an empty `init --replica-of` store
 * started with --join. */
int bc_cluster_up(env *e, node *ns, int count, const char *prefix);

void bc_failover(env *e, node *ns, fo_out *f);

void bc_join(env *e, join_out *j);

#endif
