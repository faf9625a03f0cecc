/* clinlogd's gRPC server on the gRPC C core: registered methods, completion
 * queues polled by a few threads, a worker pool for everything that may
 * block (appends fsync, reads hit RocksDB), and one small state machine per
 * call. See docs/api.md for the API and docs/operations.md for running it.
 *
 * Threads and ownership:
 *  - CQ threads only translate completions into work items; they never
 *    touch the store.
 *  - Workers run a call's next step; a call has at most one batch of
 *    operations in flight (plus its RECV_CLOSE_ON_SERVER), so its steps
 *    never run concurrently and need no lock of their own.
 *  - Every call sends initial metadata exactly once, also with an error
 *    status. */
#ifndef CL_ADAPTERS_GRPC_SERVER_H
#define CL_ADAPTERS_GRPC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"
#include "store/log.h"

typedef struct cl_server_config {
  const char *listen;              /* "127.0.0.1:7525" */
  int dev;                         /* allow plaintext (loopback only) */
  const char *tls_cert, *tls_key;  /* PEM files */
  const char *client_ca;           /* PEM: verify client certificates against it */
  int require_client_cert;         /* mutual TLS: refuse clients without one */
  size_t max_message_bytes;        /* largest request message; default 16 MiB */
  int keepalive_time_ms;           /* server pings idle connections; default 60000 */
  int keepalive_timeout_ms;        /* default 20000 */
  int min_client_ping_ms;          /* fastest client keepalive tolerated; default 10000 */
  int cq_threads;                  /* default 2 */
  int workers;                     /* default 64: appends block on their commit */
  int drain_ms;                    /* at shutdown: NOT_SERVING and UNAVAILABLE answers for this
                                      long before the listener closes; default 1000 */
  int shutdown_grace_ms;           /* then in-flight calls are cancelled; default 10000 */
  struct cl_repl *repl;            /* cluster node (replication/node.h): writes go through Raft */
  int no_forward;                  /* followers answer UNAVAILABLE + "clinlog-leader" instead of
                                      forwarding appends to the leader */
} cl_server_config;

void cl_server_config_init(cl_server_config *c);

typedef struct cl_server cl_server;

/* Starts serving `log` (borrowed; must outlive the server). On success
 * *out is returned-owned (cl_server_stop). *port gets the bound port.
 * Errors: CL_EINVAL (configuration, e.g. plaintext on a non-loopback
 * address without dev), CL_EIO (cannot bind, cannot read TLS files). */
int cl_server_start(const cl_server_config *c, cl_log *log, cl_server **out, int *port,
                    cl_err *err);

/* Graceful stop: health goes NOT_SERVING and new work is answered
 * UNAVAILABLE for drain_ms (so load balancers and clients move on), streams
 * end with UNAVAILABLE, idle client streams are cancelled, in-flight
 * appends finish; then the listener closes, and after the grace period
 * remaining calls are cancelled. Frees the server. */
void cl_server_stop(cl_server *s);

/* Catch-up transport for replication (cl_repl_options.fetch): streams
 * Cluster.FetchRecords from the node at `api` into `log`. ctx is the
 * cl_server_config whose TLS settings are used for node-to-node calls. */
int cl_server_catchup(void *ctx, cl_log *log, const char *api, uint64_t size,
                      const uint8_t root[32], cl_err *err);

#endif
