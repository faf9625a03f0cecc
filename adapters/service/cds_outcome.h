/* What a clinician did about a decision-support alert, recorded in the
 * patient's stream: an AlertAcknowledged or AlertOverridden naming the
 * alert (the IssueDetected's issue id and event id), the caller as
 * acknowledged_by / overridden_by and the reason. The node writes it
 * itself, signed by its log key (as sessions and audit records), through
 * the request layer's writer (forwarded to the leader from a follower);
 * the caller's right to report is the policy's, checked when its call was
 * admitted (Cds.Acknowledge / Cds.Override on gRPC, Cds.Feedback on CDS
 * Hooks).
 *
 * Idempotent: the event id is derived from the alert, the caller's
 * principal and the action (BLAKE2b-128 of "cds-outcome1", the alert's
 * event id, the action byte and the principal), so the same report made
 * again, from any node, appends nothing and answers the first one's seq.
 *
 * Used by adapters/grpc/svc_cds.c and adapters/http/http_cds.c. */
#ifndef CL_ADAPTERS_SERVICE_CDS_OUTCOME_H
#define CL_ADAPTERS_SERVICE_CDS_OUTCOME_H

#include <stdint.h>

#include "adapters/service/service.h"
#include "clinlog/v1/types.pb-c.h"

enum cl_cds_action {
  CL_CDS_ACKNOWLEDGE = 1, /* AlertAcknowledged */
  CL_CDS_OVERRIDE = 2     /* AlertOverridden */
};

/* The alert an outcome is about. Plain value. */
typedef struct cl_cds_alert_ref {
  uint8_t event_id[16]; /* the IssueDetected's event id (= its issue id's bytes) */
  char issue_id[33];    /* its issue_id (hex of event_id) */
  char stream[160];     /* its stream, "patient-<id>" */
  int in_log;           /* an IssueDetected in the log (not a draft's finding): the
                           outcome names it as issue_event_id and causation_id */
} cl_cds_alert_ref;

/* Fills *out for the finding `issue_id` (32 hex digits, borrowed) in
 * `stream` (borrowed, copied), without looking in the log (CDS Hooks
 * feedback: a draft's finding is never logged). 0, or -1 for an id that is
 * not 32 hex digits or a stream that does not fit. */
int cl_cds_alert_ref_init(cl_cds_alert_ref *out, const char *issue_id, const char *stream,
                          int in_log);

/* Finds the IssueDetected whose event id is `alert_id` (32 hex digits,
 * borrowed) in the log into *out. Errors: CL_EINVAL (not 32 hex digits:
 * err names `field`), CL_ENOTFOUND (no such event, or not an
 * IssueDetected, or erased), CL_EIO. */
CL_MUST_CHECK int cl_svc_cds_alert(cl_svc *s, const char *field, const char *alert_id,
                                   cl_cds_alert_ref *out, cl_err *err);

/* The result of recording an outcome. Plain value. */
typedef struct cl_cds_outcome {
  uint8_t event_id[16]; /* the derived event id */
  uint64_t seq;         /* its seq; 0 when the leader answered that it was
                           recorded already and this node has not applied it yet */
  int duplicate;        /* recorded before: nothing appended */
} cl_cds_outcome;

/* Appends `action` (enum cl_cds_action) on alert `a` (borrowed) by
 * caller->principal with `reason` (borrowed; may be NULL) into a's
 * stream, as the node (see above); `method` is the caller's method (for
 * the writer's own audit-free context). *out filled on success. Errors:
 * CL_EDENIED (no log key), CL_ENOTLEADER, CL_EUNAVAILABLE, CL_ETIMEDOUT,
 * CL_EERASED, and those of cl_svc_append. Thread-safe. */
CL_MUST_CHECK int cl_svc_cds_record(cl_svc *s, const cl_req_ctx *caller, int method,
                                    const cl_cds_alert_ref *a, int action,
                                    const Clinlog__V1__CodeableConcept *reason, cl_cds_outcome *out,
                                    cl_err *err);

#endif
