/* Handlers one svc_*.c file implements and another's method table names.
 * Private to adapters/grpc. */
#ifndef CL_ADAPTERS_GRPC_SVC_INT_H
#define CL_ADAPTERS_GRPC_SVC_INT_H

#include "adapters/grpc/server_int.h"

/* clinlog.v1.Log's proofs (svc_proof.c), in svc_log.c's table. */
void svc_get_checkpoint(srv_call *c, int ok);
void svc_prove_inclusion(srv_call *c, int ok);
void svc_prove_consistency(srv_call *c, int ok);

#endif
