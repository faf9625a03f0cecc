/* clinlog-bench cluster: its clinlogd processes (`clinlog init`, start,
 * stop) and the Cluster API calls it makes (bench_cluster_int.h). */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/grpc/client.h"
#include "bench/bench_cluster.h"
#include "bench/bench_cluster_int.h"
#include "bench/benchutil.h"
#include "bench/workload.h"
#include "store/keys.h"

/* ---------------------------------------------------------- nodes */

int bc_node_init(env *e, node *n, const char *name, uint64_t id, int join) {
  memset(n, 0, sizeof *n);
  int ports[2];
  if (bench_free_ports(ports, 2) != 0) {
    fprintf(stderr, "no free loopback ports\n");
    return -1;
  }
  snprintf(n->name, sizeof n->name, "%s", name);
  n->id = id;
  n->join = join;
  snprintf(n->api, sizeof n->api, "127.0.0.1:%d", ports[0]);
  snprintf(n->raft, sizeof n->raft, "127.0.0.1:%d", ports[1]);
  snprintf(n->dir, sizeof n->dir, "%s/%s", e->base, name);
  snprintf(n->log, sizeof n->log, "%s/%s.log", e->base, name);
  bench_rmrf(n->dir);
  unlink(n->log);
  cl_client_options o;
  cl_client_options_init(&o);
  o.target = n->api;
  o.plaintext = 1;
  o.timeout_ms = 30000;
  cl_err err;
  if (cl_client_open(&o, &n->c, &err) != 0) {
    fprintf(stderr, "client for %s: %s\n", n->api, err.msg);
    return -1;
  }
  return 0;
}

/* `clinlog init` of the node's directory: a new log (src NULL) or an empty
 * member store of the cluster whose store is src. */
int bc_node_create(env *e, node *n, const char *src) {
  char *fresh[] = {e->clinlog, "init", n->dir, "--admin", "admin", "--admin-key", e->keyfile, NULL};
  char *member[] = {e->clinlog, "init", n->dir, "--replica-of", (char *)src, NULL};
  int rc = bench_run(src ? member : fresh, e->initlog);
  if (rc != 0)
    fprintf(stderr, "clinlog init %s%s%s failed (exit %d); see %s\n", n->dir,
            src ? " --replica-of " : "", src ? src : "", rc, e->initlog);
  return rc ? -1 : 0;
}

int bc_node_start(env *e, node *n) {
  char id[24];
  snprintf(id, sizeof id, "%" PRIu64, n->id);
  char *argv[16];
  int k = 0;
  argv[k++] = e->clinlogd;
  argv[k++] = "--data", argv[k++] = n->dir;
  argv[k++] = "--dev";
  argv[k++] = "--listen", argv[k++] = n->api;
  argv[k++] = "--node-id", argv[k++] = id;
  argv[k++] = "--raft-listen", argv[k++] = n->raft;
  argv[k++] = "--audit",
  argv[k++] = "off"; /* replication's cost alone (bench audit: the trail's) */
  if (n->join)
    argv[k++] = "--join";
  if (e->runp)
    argv[k++] = "--run-projections", argv[k++] = (char *)e->runp;
  argv[k] = NULL;
  if (bench_proc_start(argv, n->log, &n->p) != 0) {
    e->failed = 1;
    return -1;
  }
  return 0;
}

/* Stops the processes of nodes[0..count) together (each drains ~1 s). */
void bc_nodes_stop(env *e, node *ns, int count) {
  for (int i = 0; i < count; i++)
    if (ns[i].p.pid > 0)
      kill(ns[i].p.pid, SIGTERM);
  for (int i = 0; i < count; i++)
    if (bench_proc_stop(&ns[i].p)) {
      fprintf(stderr, "%s did not stop within 20 s of SIGTERM (killed); see %s\n", ns[i].name,
              ns[i].log);
      e->hung++;
    }
}

void bc_nodes_free(env *e, node *ns, int count) {
  bc_nodes_stop(e, ns, count);
  for (int i = 0; i < count; i++) {
    cl_client_close(ns[i].c);
    ns[i].c = NULL;
    if (ns[i].dir[0])
      bench_rmrf(ns[i].dir);
  }
}

/* ---------------------------------------------------------- Cluster API */

Clinlog__V1__ClusterStatus *bc_status_of(node *n, int timeout_ms, cl_err *err) {
  Clinlog__V1__ClusterStatusRequest req = CLINLOG__V1__CLUSTER_STATUS_REQUEST__INIT;
  ProtobufCMessage *out;
  if (cl_client_unary_md(n->c, STATUS_PATH, &req.base, &clinlog__v1__cluster_status__descriptor,
                         timeout_ms, NULL, NULL, NULL, 0, &out, NULL, err) != 0)
    return NULL;
  return (Clinlog__V1__ClusterStatus *)out;
}

void bc_status_free(Clinlog__V1__ClusterStatus *s) {
  if (s)
    clinlog__v1__cluster_status__free_unpacked(s, NULL);
}

/* Index in ns of the leader as the live nodes see it, waiting up to
 * `secs` for one; -1 if none. */
int bc_find_leader(node *ns, int count, double secs) {
  double until = mono() + secs;
  do {
    for (int i = 0; i < count; i++) {
      if (ns[i].p.pid <= 0)
        continue;
      cl_err err;
      Clinlog__V1__ClusterStatus *s = bc_status_of(&ns[i], 1000, &err);
      uint64_t lid = s ? s->leader_id : 0;
      bc_status_free(s);
      for (int k = 0; lid && k < count; k++)
        if (ns[k].id == lid && ns[k].p.pid > 0)
          return k;
    }
    bench_sleep_ms(50);
  } while (mono() < until);
  return -1;
}

/* Cluster.AddNode on `leader`; returns once n votes (or with an error). */
int bc_add_node(node *leader, node *n, int timeout_ms) {
  Clinlog__V1__AddNodeRequest req = CLINLOG__V1__ADD_NODE_REQUEST__INIT;
  req.id = n->id;
  req.raft_address = n->raft;
  req.api_address = n->api;
  ProtobufCMessage *out;
  cl_err err;
  char hint[128];
  if (cl_client_unary_md(leader->c, ADD_PATH, &req.base, &clinlog__v1__cluster_status__descriptor,
                         timeout_ms, NULL, "clinlog-leader", hint, sizeof hint, &out, NULL,
                         &err) != 0) {
    fprintf(stderr, "AddNode %" PRIu64 " on %s: %s%s%s\n", n->id, leader->api, err.msg,
            hint[0] ? "; leader hint " : "", hint);
    return -1;
  }
  protobuf_c_message_free_unpacked(out, NULL);
  return 0;
}

/* Creates and starts a one-node cluster on ns[0] (a fresh `clinlog init`)
 * and adds ns[1..count) to it, each an empty `init --replica-of` store
 * started with --join. */
int bc_cluster_up(env *e, node *ns, int count, const char *prefix) {
  for (int i = 0; i < count; i++) {
    char name[16];
    snprintf(name, sizeof name, "%s%d", prefix, i + 1);
    if (bc_node_init(e, &ns[i], name, (uint64_t)i + 1, i > 0))
      return -1;
  }
  if (bc_node_create(e, &ns[0], NULL) || bc_node_start(e, &ns[0]))
    return -1;
  if (bc_find_leader(ns, 1, 20) != 0) {
    fprintf(stderr, "%s did not become leader; see %s\n", ns[0].name, ns[0].log);
    return -1;
  }
  for (int i = 1; i < count; i++) {
    if (bc_node_create(e, &ns[i], ns[0].dir) || bc_node_start(e, &ns[i]) ||
        bc_add_node(&ns[0], &ns[i], 120000))
      return -1;
  }
  return 0;
}
