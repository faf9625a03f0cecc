/* The request layer's audit trail (see service.h, cl_svc_record): what a
 * call's AccessRecorded says, from its request context. Internal to
 * adapters/service. */
#ifndef CL_ADAPTERS_SERVICE_AUDIT_H
#define CL_ADAPTERS_SERVICE_AUDIT_H

#include "adapters/service/service.h"
#include "query/audit/recorder.h"
#include "store/logkey.h"

typedef struct audit_node {
  uint64_t node_id;
  char server_address[128];
} audit_node;

/* Sets rc's audit_what, audit_query and audit_patients from the request
 * (NULL for client-streaming methods: left empty): the entity asked for,
 * a search's parameters, the patients the request names (a Patient read,
 * patient=/subject= parameters, a patient-<id> stream, $everything). */
void audit_subject(cl_req_ctx *rc, const ProtobufCMessage *req);

/* Records rc's call, ended with code (0 or CL_E*) and detail, through a;
 * returns once committed: 0 or cl_audit_record's error. */
int audit_record(cl_audit *a, const audit_node *node, const cl_req_ctx *rc, int code,
                 const char *detail, cl_err *err);
/* As audit_record without waiting (cl_audit_record_async): 0 and done
 * runs once with the outcome, or an error and it never runs. */
int audit_record_async(cl_audit *a, const audit_node *node, const cl_req_ctx *rc, int code,
                       const char *detail, cl_audit_done_fn done, void *ctx, cl_err *err);

/* The AccessRecorded of rc's call, committed with the call's only batch
 * of n_events events in one store write (cl_repl_append_linked): outcome
 * success, preceding = count = n_events, resource "" (read as the seqs of
 * the events right before it: cl_audit_resource) or, with `named`, rc's
 * audit_what as audit_record would write it (a FHIR write's
 * "Observation/7"). Packed into "$audit" and signed by the log key as nb
 * (cl_log_node_batch; free it with cl_node_batch_free). Errors: those of
 * cl_log_node_batch, CL_ENOMEM. */
int audit_linked(cl_log *log, const audit_node *node, const cl_req_ctx *rc, int named,
                 size_t n_events, cl_node_batch *nb, cl_err *err);

#endif
