/* Handlers one svc_*.c file implements and another's method table names.
 * Private to adapters/grpc. */
#ifndef CL_ADAPTERS_GRPC_SVC_INT_H
#define CL_ADAPTERS_GRPC_SVC_INT_H

#include "adapters/grpc/server_int.h"

/* clinlog.v1.Log's proofs (svc_proof.c), in svc_log.c's table. */
void svc_get_checkpoint(srv_call *c, int ok);
void svc_prove_inclusion(srv_call *c, int ok);
void svc_prove_consistency(srv_call *c, int ok);

/* Projection reads (svc_query.c), for the handlers of other files: */
/* The call's state for svc_proj_ready (whether its Raft barrier was
 * taken). 0, or -1: the call is finished. */
int svc_proj_begin(srv_call *c);
/* The start of a projection read step: the call is still wanted, its
 * consistency is met (else it is parked to run `retry` again, or
 * finished), and the node runs projection `name` (else UNAVAILABLE). The
 * projection, or NULL: nothing more to do. */
cl_proj *svc_proj_ready(srv_call *c, const char *name, int ok, const Clinlog__V1__Consistency *cons,
                        step_fn retry);

#endif
