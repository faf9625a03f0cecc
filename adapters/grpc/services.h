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

/* cl_svc_forward_fn over gRPC: Log.Append on the leader, with the
 * "clinlog-forwarded" metadata (one hop) and the caller's deadline (at
 * most 30 s). ctx: the cl_server_config whose TLS settings node-to-node
 * calls use (borrowed for the process's life). One channel, to the current
 * leader, is shared by every forwarding thread. */
int cl_grpc_forward(void *ctx, const char *leader_api, const cl_req_ctx *rc,
                    const Clinlog__V1__AppendBatch *b, cl_append_result *r, cl_err *err);
/* Closes the forwarding channel (at exit). */
void cl_grpc_forward_close(void);

/* Catch-up transport for replication (cl_repl_options.fetch): streams
 * Cluster.FetchRecords from the node at `api` into `log`. ctx as for
 * cl_grpc_forward. */
int cl_grpc_catchup(void *ctx, cl_log *log, const char *api, uint64_t size, const uint8_t root[32],
                    cl_err *err);

#endif
