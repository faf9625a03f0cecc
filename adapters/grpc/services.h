/* clinlogd's gRPC services (the method handlers in svc_*.c, handed to
 * cl_server_start by clinlogd), and the node-to-node transports built on
 * the C client that the request layer and replication plug in. */
#ifndef CL_ADAPTERS_GRPC_SERVICES_H
#define CL_ADAPTERS_GRPC_SERVICES_H

#include "adapters/grpc/server.h"
#include "adapters/service/service.h"
#include "store/log.h"

extern const cl_grpc_service cl_grpc_log_service;         /* clinlog.v1.Log */
extern const cl_grpc_service cl_grpc_health_service;      /* grpc.health.v1.Health */
extern const cl_grpc_service cl_grpc_cluster_service;     /* clinlog.v1.Cluster */
extern const cl_grpc_service cl_grpc_streams_service;     /* clinlog.v1.Streams */
extern const cl_grpc_service cl_grpc_projections_service; /* clinlog.v1.Projections */
extern const cl_grpc_service cl_grpc_fhir_service;        /* clinlog.v1.Fhir */
extern const cl_grpc_service cl_grpc_auth_service;        /* clinlog.v1.Auth */
extern const cl_grpc_service cl_grpc_audit_service;       /* clinlog.v1.Audit */
extern const cl_grpc_service cl_grpc_cds_service;         /* clinlog.v1.Cds */
extern const cl_grpc_service cl_grpc_devices_service;     /* clinlog.v1.Devices */

/* How this node calls the other nodes' APIs (write forwarding, catch-up):
 * over TLS unless the API itself serves plaintext (--dev on loopback), with
 * this node's certificate as the client certificate, so the other node
 * authenticates it like any system (a certificate bound to a principal with
 * role `node`, docs/security.md). Plain value; its strings are borrowed for
 * the process's life. */
typedef struct cl_grpc_peer_config {
  int plaintext;    /* 1: no TLS (every node's API is plaintext, --dev) */
  const char *ca;   /* PEM: CA the other nodes' API certificates chain to; NULL:
                       the system's roots */
  const char *cert; /* PEM: this node's client certificate chain; NULL: none */
  const char *key;  /* PEM: its private key (with cert) */
} cl_grpc_peer_config;

/* cl_svc_forward_fn over gRPC: Log.Append on the leader, with the
 * "clinlog-forwarded" metadata (one hop) and the caller's deadline (at
 * most 30 s). ctx: the cl_grpc_peer_config node-to-node calls use
 * (borrowed for the process's life). One channel, to the current leader,
 * is shared by every forwarding thread. */
int cl_grpc_forward(void *ctx, const char *leader_api, const cl_req_ctx *rc,
                    const Clinlog__V1__AppendBatch *b, cl_append_result *r, cl_err *err);
/* The peer configuration Cluster.RotateLogKey asks the other members with
 * (LogKeyStatus); borrowed for the process's life. Set before serving. */
void cl_grpc_set_peer_config(const cl_grpc_peer_config *cfg);

/* Closes the forwarding channel (at exit). */
void cl_grpc_forward_close(void);

/* Catch-up transport for replication (cl_repl_options.fetch): streams
 * Cluster.FetchRecords from the node at `api` into `log`. ctx as for
 * cl_grpc_forward: the serving node refuses a caller whose certificate is
 * not bound to a `node` principal when it runs --auth required. */
int cl_grpc_catchup(void *ctx, cl_log *log, const char *api, uint64_t size, const uint8_t root[32],
                    cl_err *err);

#endif
