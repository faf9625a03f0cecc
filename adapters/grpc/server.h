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
  int workers;                     /* default 64; at most 2 a CPU run at once, and a worker
                                      waiting in cl_svc_set_blocking's brackets (a forwarded
                                      write, a barrier) holds a thread without counting */
  int drain_ms;                    /* at shutdown: NOT_SERVING and UNAVAILABLE answers for this
                                      long before the listener closes; default 1000 */
  int shutdown_grace_ms;           /* then in-flight calls are cancelled; default 10000 */
} cl_server_config;

void cl_server_config_init(cl_server_config *c);

/* 1 if `listen` (HOST:PORT, borrowed) names a loopback address (127.0.0.0/8,
 * ::1, localhost): where --dev allows plaintext. */
int cl_server_is_loopback(const char *listen);

typedef struct cl_server cl_server;
typedef struct cl_grpc_method_def cl_grpc_method_def; /* server_int.h */

/* A gRPC service: its methods and, optionally, state of its own created
 * when the server starts and freed when it stops (handlers reach it with
 * srv_service_ctx). Method tables are static (adapters/grpc/services.h). */
typedef struct cl_grpc_service {
  const char *name;                    /* "clinlog.v1.Log" (also answers Health.Check) */
  const cl_grpc_method_def *methods;
  size_t nmethods;
  void *(*ctx_new)(void);              /* NULL: no state; returns NULL when out of memory */
  void (*ctx_free)(void *ctx);
} cl_grpc_service;

/* Serves `services` over the request layer `svc` (both borrowed; they must
 * outlive the server): every call is decoded, admitted by the layer's hooks
 * (cl_svc_admit) and then handed to its method's handler; the server names
 * no handler itself. On success *out is returned-owned (cl_server_stop) and
 * *port gets the bound port. Errors: CL_EINVAL (configuration, e.g.
 * plaintext on a non-loopback address without dev), CL_EIO (cannot bind,
 * cannot read TLS files), CL_ENOMEM. */
struct cl_svc;
int cl_server_start(const cl_server_config *c, struct cl_svc *svc,
                    const cl_grpc_service *services, size_t nservices, cl_server **out, int *port,
                    cl_err *err);

/* Graceful stop: health goes NOT_SERVING and new work is answered
 * UNAVAILABLE for drain_ms (so load balancers and clients move on), streams
 * end with UNAVAILABLE, idle client streams are cancelled, in-flight
 * appends finish; then the listener closes, and after the grace period
 * remaining calls are cancelled. Frees the server. */
void cl_server_stop(cl_server *s);

#endif
